"""Runs started with no daemon alive (``jobfsm run``, the admin page on a host without one).

They go through the daemon's own scheduler (one that fires nothing by itself), so a local run
follows the same overlap, queue and retry rules as a scheduled one, is recorded and logged the
same way, and one thread, this module's, owns every transition: callers hand it work and wait
for the answer (see docs/architecture.md, "One run path").
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from jobfsm.clock import Clock
from jobfsm.daemon.scheduler import Scheduler
from jobfsm.joblog import JobLogger
from jobfsm.lifecycle import Announcer
from jobfsm.runs.executor import JobExecutor
from jobfsm.store import Store

T = TypeVar("T")

IDLE_WAIT_SECONDS = 0.5
"""How often the thread looks again with nothing to do but wait for another process's run."""


class LocalRuns:
    """A scheduler that runs only what it is asked to, on a thread of its own."""

    def __init__(
        self, jobs_dir: Path, logs_dir: Path, store: Store, *, clock: Clock, node: str, events: Announcer,
    ) -> None:
        self._logger = JobLogger(logs_dir)
        self.scheduler = Scheduler(
            jobs_dir, store, self._logger, clock=clock, node=node, events=events, fires=False,
            executor=JobExecutor(logs_dir, clock=clock),
        )
        self._clock = clock
        self._calls: queue.SimpleQueue[tuple[Callable[[Scheduler], object], Future[object]]] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobfsm-local-runs", daemon=True)
        self._thread.start()

    def call(self, work: Callable[[Scheduler], T]) -> T:
        """Run ``work(scheduler)`` on the thread that owns the transitions; its result."""
        done: Future[object] = Future()
        self._calls.put((work, done))
        self.scheduler.wake.set()
        return done.result()  # type: ignore[return-value]

    def close(self) -> None:
        """Wait for the runs started here to end (retries not yet due and starts still waiting
        are given up, as at a daemon's shutdown), then release everything."""
        self._closing.set()
        self.scheduler.wake.set()
        self._thread.join()
        self._logger.close()

    def _loop(self) -> None:
        scheduler = self.scheduler
        while True:
            self._answer_calls()
            scheduler.apply_results()
            if self._closing.is_set():
                scheduler.stopping = True
                if not scheduler.in_flight:
                    break
            else:
                scheduler.dispatch_due()  # retries: this scheduler fires nothing by itself
                scheduler.reconcile()
            if scheduler.busy():  # no daemon hears for us: kills of runs started here, new pauses
                scheduler.guarded(scheduler.control.poll)
            scheduler.wake.wait(self._timeout())
            scheduler.wake.clear()
        scheduler.shutdown(grace_seconds=0)

    def _answer_calls(self) -> None:
        while True:
            try:
                work, done = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                done.set_result(work(self.scheduler))
            except BaseException as exc:  # the caller's thread raises it
                done.set_exception(exc)

    def _timeout(self) -> float:
        due = self.scheduler.next_due()
        if due is None:
            return IDLE_WAIT_SECONDS
        return max(min((due - self._clock.now()) / timedelta(seconds=1), IDLE_WAIT_SECONDS), 0.0)
