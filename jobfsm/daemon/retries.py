"""Retries: a failed run, or a run lost with its node, is retried when the policy says so
(:func:`jobfsm.daemon.policy.retry_due`), as the next attempt of its fire (trigger ``retry``).
Retries wait in a heap by due time; when the job is busy they wait in its queue like any start."""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Callable, Iterator
from datetime import datetime

from jobfsm.clock import Clock
from jobfsm.daemon import policy
from jobfsm.daemon.jobset import JobEntry
from jobfsm.daemon.policy import Start
from jobfsm.joblog import JobLogger
from jobfsm.model import Trigger
from jobfsm.runs.executor import JobResult
from jobfsm.runs.runner import Ticket
from jobfsm.store import DeadNode


class Retries:
    """The retries due, for one scheduler."""

    def __init__(self, jobs: dict[str, JobEntry], logger: JobLogger, *, clock: Clock,
                 later: Callable[[Callable[[], None]], None]) -> None:
        self._jobs = jobs
        self._logger = logger
        self._clock = clock
        self._later = later
        self._heap: list[tuple[float, int, str, Start]] = []
        self._seq = itertools.count(1)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def after_finish(self, entry: JobEntry, ticket: Ticket, result: JobResult) -> None:
        """The run ended: retry it when the policy says so, once the finish commits."""
        due = policy.retry_due(entry.config, attempt=ticket.attempt, succeeded=result.success,
                               enabled=entry.config.enabled, now=self._clock.now())
        if due is not None:
            retry = Start(Trigger.RETRY, scheduled_for=ticket.scheduled_for, attempt=ticket.attempt + 1)
            self._later(functools.partial(self.push, due.timestamp(), entry.config.name, retry))

    def after_lost(self, dead: DeadNode, now: datetime) -> None:
        """A lost run is retried like a failed one (trigger ``retry``, the next attempt of its
        fire), due ``retry_delay_seconds`` after its node was last seen: detecting the death
        counts towards the delay. Each lost run came back to this node alone, so once."""
        for run in dead.lost:
            entry = self._jobs.get(run.job)
            if entry is None:
                continue
            since = dead.last_seen or now
            due = policy.retry_due(entry.config, attempt=run.attempt, succeeded=False,
                                   enabled=entry.config.enabled, now=since)
            if due is None:
                continue
            self._logger.info(
                f"run {run.id} of job {run.job!r} was lost with node {dead.node}; retrying it here "
                f"(attempt {run.attempt + 1} of {entry.config.retries})", component="cluster")
            retry = Start(Trigger.RETRY, scheduled_for=run.scheduled_for, attempt=run.attempt + 1, user=run.user)
            self.push(max(due, now).timestamp(), run.job, retry)

    def push(self, due: float, name: str, retry: Start) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), name, retry))

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def due(self, stamp: float) -> bool:
        return bool(self._heap and self._heap[0][0] <= stamp)

    def pop_due(self, stamp: float) -> Iterator[tuple[JobEntry, Start]]:
        """The retries due by ``stamp`` of jobs still loaded and enabled."""
        while self._heap and self._heap[0][0] <= stamp:
            _, _, name, retry = heapq.heappop(self._heap)
            entry = self._jobs.get(name)
            if entry is not None and entry.config.enabled:
                yield entry, retry

    def put_back(self, retries: list[tuple[JobEntry, Start]]) -> None:
        """Retries the store did not record are due again at once."""
        now = self._clock.now().timestamp()
        for entry, retry in retries:
            self.push(now, entry.config.name, retry)

    def shift(self, step: float) -> None:
        """The wall clock stepped by ``step`` seconds: retries keep their delay (a duration, not a time)."""
        self._heap = [(due + step, seq, name, start) for due, seq, name, start in self._heap]
        heapq.heapify(self._heap)
