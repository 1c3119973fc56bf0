"""Outage mode: when the store fails (:class:`jobfsm.errors.StoreError`), the scheduler claims
nothing, lets running jobs finish and keeps their results in memory, and tries the store again
with back-off; once it works, the results are recorded and the fires that came due meanwhile
run late or follow their ``catch_up``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobfsm.daemon import policy
from jobfsm.daemon.policy import Start
from jobfsm.errors import StoreError
from jobfsm.model import Outcome, RunStatus
from jobfsm.store import Finish

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler

PROBE_FIRST_SECONDS = 0.25
PROBE_MAX_SECONDS = 5.0
"""A failed store is tried again after 0.25 s, then twice as long each time, at most 5 s apart."""


@dataclass(slots=True)
class Outage:
    """The store failed: since when, why, and when to try it again."""

    since: datetime
    reason: str
    next_probe: float
    """``clock.monotonic()`` of the next attempt."""
    attempts: int = 1


class OutageMode:
    """Whether one scheduler's store is failing, and trying it again."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self.store = scheduler.store
        self.clock = scheduler.clock
        self.logger = scheduler.logger
        self.current: Outage | None = None
        """Set while the store is failing: no fires are claimed, results wait in memory."""

    def failed(self, exc: StoreError) -> None:
        """The store failed: claim nothing until it is back, try it again with back-off. The
        outage is logged once, when it starts, and once when it ends."""
        mono = self.clock.monotonic()
        if self.current is not None:
            self.current.attempts += 1
            self.current.next_probe = mono + min(PROBE_FIRST_SECONDS * 2 ** self.current.attempts, PROBE_MAX_SECONDS)
            return
        self.current = Outage(since=self.clock.now(), reason=str(exc), next_probe=mono + PROBE_FIRST_SECONDS)
        self.logger.error(
            f"store unavailable: {exc}; claiming no fires until it is back (trying again every "
            f"{PROBE_FIRST_SECONDS:g}-{PROBE_MAX_SECONDS:g} s); {len(self._scheduler.in_flight)} run(s) in progress go on "
            "and their results are recorded when it is back",
            component="store",
        )

    def guarded(self, step: Callable[[], object]) -> None:
        """Run a housekeeping step unless the store is failing; a store error starts an outage."""
        if self.current is not None:
            return
        try:
            step()
        except StoreError as exc:
            self.failed(exc)

    def probe_seconds(self) -> float | None:
        """Seconds until the store should be tried again (None: it is not failing)."""
        if self.current is None:
            return None
        return max(self.current.next_probe - self.clock.monotonic(), 0.0)

    def probe(self, *, force: bool = False) -> bool:
        """While the store is failing, try it when it is time (a heartbeat: a write, as claims
        are); True once it works. Then the results kept meanwhile are recorded, runs whose
        claim committed while the daemon saw an error are started, and the fires that came due
        meanwhile run late or follow their ``catch_up`` (see :meth:`Dispatch.late_fires`)."""
        outage = self.current
        if outage is None:
            return True
        if not force and self.clock.monotonic() < outage.next_probe:
            return False
        scheduler = self._scheduler
        try:
            scheduler.heartbeat()
            self._adopt_orphans()
        except StoreError as exc:
            self.failed(exc)
            return False
        now = self.clock.now()
        self.current = None
        scheduler.dispatch.late_reason = f"the store was unavailable from {outage.since.isoformat()} to {now.isoformat()}"
        self.logger.info(
            f"store available again after {(now - outage.since).total_seconds():.1f} s "
            f"({outage.attempts} failed attempt(s)); recording {scheduler.results.pending()} "
            "result(s) kept meanwhile; fires that came due meanwhile run late, older ones follow catch_up",
            component="store",
        )
        return True

    def _adopt_orphans(self) -> None:
        """Runs this node claimed in a transaction that committed although the daemon saw an
        error (a connection lost at commit) exist in the store but not here: start them now,
        or close them when their job is gone."""
        scheduler = self._scheduler
        for run in self.store.list_runs(status=RunStatus.RUNNING):
            if run.node != scheduler.node or run.id in scheduler.in_flight:
                continue
            entry = scheduler.jobs.get(run.job)
            start = Start(run.trigger, scheduled_for=run.scheduled_for, attempt=run.attempt, user=run.user)
            model = entry.model if entry is not None else None
            free = model is not None and entry is not None and model.enabled and policy.may_start_waiting(
                entry.config, running=model.active_runs)
            if free and entry is not None:
                self.logger.info(f"run {run.id} of job {run.job!r} was claimed as the store failed; starting it now",
                                 component="store")
                with scheduler.transactions.batched():
                    scheduler.claims.begin(entry, start, run)
            else:
                self.store.finish_run(Finish(
                    run.id, outcome=Outcome.NOT_STARTED, ended_at=self.clock.now(), exit_code=None,
                    duration_seconds=0.0,
                    message="not started: the store failed as the run was claimed, and the job could not start it then",
                ))
