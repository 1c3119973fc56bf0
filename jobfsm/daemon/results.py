"""Finished runs, from the runner back to the store: the runner posts each result (any thread)
and wakes the loop; the loop thread records them, a chunk per store transaction, and applies
what each finish changes (the job's state, a retry, what waited for the run). While the store
is failing they are kept in memory (their log lines written at once), and at shutdown in the
logs folder (:mod:`jobfsm.daemon.spool`). A result holding a text the store refuses (which
it would refuse again: no outage) is recorded without its texts."""

from __future__ import annotations

import functools
import queue
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from jobfsm.daemon import spool
from jobfsm.daemon.finish import REFUSED_NOTE, finish_of, without_texts
from jobfsm.daemon.unit import DISPATCH_CHUNK
from jobfsm.errors import StoreError, StoreValueError
from jobfsm.lifecycle import RunFinished
from jobfsm.runs.executor import JobResult
from jobfsm.runs.runner import Ticket
from jobfsm.store import Finish

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler

Item = tuple[Ticket, JobResult, bool]
"""A result to record: its run's ticket, the result, whether its log line is written."""


class Results:
    """The results of one scheduler's runs."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self.store = scheduler.store
        self.logger = scheduler.logger
        self.events = scheduler.events
        self._queue: queue.SimpleQueue[tuple[Ticket, JobResult]] = queue.SimpleQueue()
        self._unrecorded: deque[Item] = deque()
        """Results not yet recorded (the store failed), with whether their log line is written.
        Bounded by the runs in flight: no run starts while the store is failing."""
        self._declared_lost: dict[int, str] = {}
        """Runs of this node that another declared lost while they went on: by whom."""

    def post(self, ticket: Ticket, result: JobResult) -> None:
        """Called by the runner (any thread): hand a result to the loop, and wake it unless the
        runner is busy starting runs (it wakes the loop when it is done)."""
        self._queue.put((ticket, result))
        if self._scheduler.burst.wake_for_result():
            self._scheduler.wake.set()

    def pending(self) -> int:
        """Results back but not recorded yet."""
        return len(self._unrecorded) + self._queue.qsize()

    def declared_lost(self, by: str) -> None:
        """Another node declared this one dead: the runs in flight now go on, and say so when they end."""
        for run_id in self._scheduler.in_flight:
            self._declared_lost[run_id] = by

    def apply(self) -> int:
        """Record every finished run (loop thread only); returns how many.

        Not while the runner is starting runs, for a bounded time
        (:meth:`jobfsm.daemon.burst.Burst.hold_results`). At shutdown everything is recorded.
        While the store is failing, results are kept in memory (their log lines are written at
        once) and recorded when it is back."""
        scheduler = self._scheduler
        if scheduler.outage is not None:
            self._drain()
            return 0
        if scheduler.burst.hold_results(stopping=scheduler.stopping):
            return 0
        count = 0
        while True:
            items = self._take(DISPATCH_CHUNK)
            if not items:
                return count
            try:
                self._record(items)
            except StoreValueError:
                recorded = self._record_one_by_one(items)
                count += recorded
                if recorded < len(items):
                    return count
                continue
            except StoreError as exc:
                self._unrecorded.extendleft(reversed(items))
                scheduler.store_failed(exc)
                return count
            count += len(items)

    def _record(self, items: list[Item], finishes: list[Finish] | None = None) -> None:
        """Record ``items`` (as ``finishes``, by default as they ended) in one store
        transaction, and apply what their finishes change; a store error rolls it all back."""
        scheduler = self._scheduler
        with scheduler.transactions.batched():
            self.store.finish_runs(finishes if finishes is not None else [finish_of(r) for _, r, _ in items])
            for ticket, result, logged in items:
                self._complete(ticket, result, logged=logged)
            if self._declared_lost:
                scheduler.transactions.later(functools.partial(self._note_declared_lost, [t for t, _, _ in items]))

    def _record_one_by_one(self, items: list[Item]) -> int:
        """The store refused a value in one of ``items`` (:class:`StoreValueError`: it would
        refuse it again, so this is no outage): record them one at a time, and a refused one
        without its texts, said once in the main log. Returns how many were recorded; another
        store error keeps the rest and starts an outage."""
        for i, item in enumerate(items):
            ticket, result, _ = item
            try:
                try:
                    self._record([item])
                except StoreValueError as exc:
                    self.logger.error(f"run {ticket.run_id} of job {ticket.job.name!r}: {exc}; {REFUSED_NOTE}",
                                      component="store")
                    self._record([item], [without_texts(finish_of(result))])
            except StoreError as exc:
                self._unrecorded.extendleft(reversed(items[i:]))
                self._scheduler.store_failed(exc)
                return i
        return len(items)

    def _note_declared_lost(self, tickets: list[Ticket]) -> None:
        for ticket in tickets:
            by = self._declared_lost.pop(ticket.run_id, None)
            if by is not None:
                self.logger.info(
                    f"run {ticket.run_id} of job {ticket.job.name!r} ended after {by} had declared it lost; "
                    "its result is recorded on that run (a retry elsewhere, if any, is a run of its own)",
                    component="cluster")

    def _take(self, limit: int) -> list[Item]:
        items: list[Item] = []
        while self._unrecorded and len(items) < limit:
            items.append(self._unrecorded.popleft())
        while len(items) < limit:
            try:
                ticket, result = self._queue.get_nowait()
            except queue.Empty:
                break
            items.append((ticket, result, False))
        return items

    def _drain(self) -> None:
        """Keep every result that came back for later, writing its log line now."""
        while True:
            try:
                ticket, result = self._queue.get_nowait()
            except queue.Empty:
                return
            self.events.announce(RunFinished(result, ticket.trigger))
            self._unrecorded.append((ticket, result, True))

    def _complete(self, ticket: Ticket, result: JobResult, *, logged: bool = False) -> None:
        """What a finished run changes (the run itself is recorded already)."""
        scheduler = self._scheduler
        if not logged:
            self.events.announce(RunFinished(result, ticket.trigger))
        item = scheduler.in_flight.pop(ticket.run_id)
        scheduler.transactions.on_rollback(functools.partial(scheduler.in_flight.__setitem__, ticket.run_id, item))
        model = item[1]
        scheduler.lifecycle.finish(model, result.status, run_id=ticket.run_id, reason=result.message)
        entry = scheduler.jobs.get(ticket.job.name)
        if entry is None:  # its file was deleted while it ran: leave no state behind
            self.store.delete_state(ticket.job.name)
            return
        if entry.model is not model:  # deleted and created again meanwhile: the new job's state wins
            self.store.set_state(ticket.job.name, entry.model.job_state, scheduler.clock.now())
            return
        if scheduler.stopping:
            return
        scheduler.retries.after_finish(entry, ticket, result)
        scheduler.waiting.release(entry)

    def running(self) -> int:
        """Runs whose process has not ended yet (in flight, their result not back)."""
        return len(self._scheduler.in_flight) - len(self._unrecorded) - self._queue.qsize()

    def spool(self) -> None:
        """The daemon stops with results the store could not take: keep them in the logs folder."""
        self._drain()
        if self._unrecorded:
            spool.write(Path(self.logger.log_dir) / spool.SPOOL_FILE, [(t.run_id, r) for t, r, _ in self._unrecorded],
                        self.logger)
            self._unrecorded.clear()
