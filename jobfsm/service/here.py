"""The service's work when no daemon is alive: triggers and enable/disable transitions through
the local runs' scheduler (:class:`~jobfsm.service.local.LocalRuns`), started on first use.

That scheduler is the daemon's own (same overlap, queue and retry rules), and its thread owns
every transition; a request's transitions there are audited as that request's
(:meth:`~jobfsm.service.auditing.Auditor.lent`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from jobfsm.clock import Clock
from jobfsm.model import JobConfig, RunStatus
from jobfsm.service.auditing import AuditContext, Auditor
from jobfsm.store.abc import RunRecord, Store

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler
    from jobfsm.service.local import LocalRuns

T = TypeVar("T")

__all__ = ["RunsHere"]


class RunsHere:
    """The local runs of one service; nothing is started (no thread, no scheduler) until asked."""

    def __init__(
        self, jobs_directory: Path, log_directory: Path, store: Store, *, clock: Clock, node: str, auditor: Auditor,
    ) -> None:
        self._jobs_directory = jobs_directory
        self._log_directory = log_directory
        self._store = store
        self._clock = clock
        self._node = node
        self._auditor = auditor
        self._lock = threading.RLock()
        self._runs: LocalRuns | None = None

    @property
    def started(self) -> bool:
        return self._runs is not None

    def call(self, work: Callable[[Scheduler], T]) -> T:
        """Do ``work`` on the local runs' thread, its transitions audited as this request's."""
        with self._lock:
            if self._runs is None:
                from jobfsm.lifecycle import Announcer
                from jobfsm.service.local import LocalRuns

                events = Announcer()
                events.subscribe(self._auditor.on_transition)
                self._runs = LocalRuns(
                    self._jobs_directory, self._log_directory, self._store, clock=self._clock,
                    node=self._node, events=events,
                )
            with self._auditor.lent():
                return self._runs.call(work)

    def call_if_started(self, work: Callable[[Scheduler], object]) -> bool:
        """Do ``work`` there if local runs were started (they follow a change at once); whether
        they were."""
        if self._runs is None:
            return False
        self.call(work)
        return True

    def trigger(self, config: JobConfig, user: str, ctx: AuditContext) -> int:
        """Run the job here, as the daemon would; the run's id (of a ``skipped`` run when the
        overlap policy skipped it)."""
        ctx.details["via"] = "local"

        def trigger(scheduler: Scheduler) -> RunRecord | None:
            scheduler.add_job(config)
            return scheduler.trigger(config.name, user=user)

        run = self.call(trigger)
        assert run is not None  # a manual start is never a fire someone else claimed
        ctx.details["run_id"] = run.id
        if run.status is RunStatus.SKIPPED:
            ctx.details["skipped"] = run.message
        return run.id

    def close(self) -> None:
        """Wait for the runs started here to end, then release them."""
        if self._runs is not None:
            self._runs.close()
