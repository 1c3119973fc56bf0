"""The heap of next fires: one entry per enabled job, keyed by when this node claims its next
fire (the fire time plus its claim delay, :func:`jobfsm.daemon.cluster.claim_delay`). No scan
of every job, ever. A job whose schedule changes gets a new *generation*; stale heap entries
are dropped when they surface."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from jobfsm import cron
from jobfsm.daemon import cluster
from jobfsm.daemon.jobset import JobEntry
from jobfsm.joblog import JobLogger


class Agenda:
    """When each job fires next, for one node."""

    def __init__(self, jobs: dict[str, JobEntry], logger: JobLogger, *, node: str,
                 live_nodes: Callable[[], Sequence[str]], fires: bool) -> None:
        self._jobs = jobs
        self._logger = logger
        self._node = node
        self._live_nodes = live_nodes
        self._fires = fires
        self._heap: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count(1)

    def reschedule(self, entry: JobEntry, after: datetime) -> None:
        """The job's next fire after ``after`` (none when it is disabled or cannot be computed)."""
        entry.generation = next(self._seq)  # unique across entries: a re-created job never revives old heap items
        entry.next_fire = None
        if not entry.config.enabled or not self._fires:
            return
        try:
            fire = cron.next_fire(entry.config.schedule, entry.config.timezone, after)
        except Exception as exc:  # a schedule that validated but cannot be computed
            self._logger.schedule_error(entry.config.name, str(exc))
            return
        entry.next_fire = fire
        entry.delay = cluster.claim_delay(self._node, self._live_nodes(), entry.config.name, fire)
        self._push(entry, fire)

    def forget(self, entry: JobEntry) -> None:
        """The job is gone: its heap entries are dropped when they surface."""
        entry.generation = -1

    def next_time(self) -> float | None:
        """The timestamp of the next claim (None: no fire is scheduled)."""
        heap = self._heap
        while heap:
            _, _, name, generation = heap[0]
            entry = self._jobs.get(name)
            if entry is not None and entry.generation == generation:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def due(self, stamp: float) -> bool:
        return bool(self._heap and self._heap[0][0] <= stamp)

    def pop_due(self, stamp: float) -> Iterator[tuple[JobEntry, datetime]]:
        """The jobs whose fire is due by ``stamp``, with that fire, each taken from the heap as
        it is asked for."""
        heap = self._heap
        while heap and heap[0][0] <= stamp:
            _, _, name, generation = heapq.heappop(heap)
            entry = self._jobs.get(name)
            if entry is None or entry.generation != generation or entry.next_fire is None:
                continue
            yield entry, entry.next_fire

    def put_back(self, entries: Sequence[JobEntry]) -> None:
        """Fires the store did not record become due again, as they were."""
        for entry in entries:
            if entry.next_fire is not None:
                self._push(entry, entry.next_fire)

    def _push(self, entry: JobEntry, fire: datetime) -> None:
        heapq.heappush(self._heap, (fire.timestamp() + entry.delay, next(self._seq), entry.config.name, entry.generation))
