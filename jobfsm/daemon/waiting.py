"""Starts that wait for their job: a queued fire (``overlap: queue`` keeps at most one waiting
schedule fire; the policy skips more, saying why), and catch-up runs, retries and manual
triggers of a job that is busy, so that catch-up runs of one job run one after another, oldest
first. They wait in the job's entry, each already recorded in the store as a ``skipped`` run
that says so, and start when the policy lets them (:func:`jobfsm.daemon.policy.may_start_waiting`):
at once when a run here ends, and from housekeeping (:meth:`Waiting.retry_blocked`) when they
wait for a run on another node."""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING

from jobfsm.daemon import policy
from jobfsm.daemon.jobset import JobEntry
from jobfsm.daemon.policy import Start
from jobfsm.model import JobState

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler


class Waiting:
    """The waiting starts of one scheduler's jobs. Loop thread only."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._tx = scheduler.transactions
        self._blocked: set[str] = set()
        """Jobs whose waiting starts wait for a run on another node (looked at by :meth:`retry_blocked`)."""

    def append(self, entry: JobEntry, start: Start, run_id: int) -> None:
        """``start``, recorded as run ``run_id``, waits last in line."""
        if entry.waiting is None:
            entry.waiting = deque()
        waiting = entry.waiting
        waiting.append(replace(start, run_id=run_id))
        self._tx.on_rollback(waiting.pop)

    def block(self, name: str) -> None:
        """Job ``name``'s waiting starts wait for a run on another node."""
        self._blocked.add(name)

    def still_waiting(self, entry: JobEntry, start: Start) -> bool:
        """A waiting start could not begin: is that because its job runs on another node? Then
        it waits again, first in line, and :meth:`retry_blocked` tries it later."""
        met = self._scheduler.store.running_exclusive(entry.config.name)
        if met is None or met.id == start.run_id:
            return False
        if entry.waiting is None:
            entry.waiting = deque()
        waiting = entry.waiting
        waiting.appendleft(start)
        self._tx.on_rollback(waiting.popleft)
        self._blocked.add(entry.config.name)
        return True

    def release(self, entry: JobEntry) -> None:
        """Start what waits for the job, as far as its overlap policy lets it now."""
        model = entry.model
        scheduler = self._scheduler
        paused = scheduler.control.paused(entry.config.name) is not None
        while entry.waiting and policy.may_start_waiting(entry.config, running=model.active_runs, paused=paused):
            if model.job_state is JobState.DISABLED:
                waiting = list(entry.waiting)
                entry.waiting.clear()
                self._tx.on_rollback(functools.partial(entry.waiting.extend, waiting))
                break
            start = entry.waiting.popleft()
            self._tx.on_rollback(functools.partial(entry.waiting.appendleft, start))
            scheduler.claims.start(entry, start)
            if entry.waiting and entry.waiting[0] is start:
                break  # it waits for a run on another node

    def release_named(self, name: str) -> None:
        """Start what waits for job ``name`` if it may start now (its pause ended)."""
        entry = self._scheduler.jobs.get(name)
        if entry is not None and entry.waiting:
            with self._tx.batched():
                self.release(entry)

    def retry_blocked(self) -> int:
        """Start what waits for a run on another node, once the store says it ended (the
        housekeeping's; a run here ending starts its job's waiting ones at once); how many."""
        started = 0
        for name in sorted(self._blocked):
            entry = self._scheduler.jobs.get(name)
            if entry is None or not entry.waiting:
                self._blocked.discard(name)
                continue
            before = len(entry.waiting)
            with self._tx.batched():
                self.release(entry)
            started += before - len(entry.waiting)
            if not entry.waiting or entry.waiting[0].run_id is None:
                self._blocked.discard(name)
        return started
