"""Operational control on the scheduler's side: pauses and kill requests from the store.

People pause, resume and kill through the service (``jobfsm pause``, ``jobfsm kill``, the admin
page), which writes to the store and rings the trigger bell (:mod:`jobfsm.store.bell`); the
scheduler's loop then calls :meth:`Control.poll`, as it takes trigger requests. Everything here
runs on the loop thread (the one that owns the transitions).

- **Pauses** are read from the store into :attr:`Control.pauses` at start-up and whenever the
  bell rings (and at least every minute). Whether a start is skipped because of one is the
  policy's answer (:func:`jobfsm.daemon.policy.pause_reason`), asked with the clock's now, so a
  pause ends by itself at its ``until`` without anyone clearing it. The loop also wakes at the
  end of a pause (:meth:`Control.next_end`) to clear it in the store, write a log line and an
  audit entry (by ``jobfsm``, exactly one across nodes: whoever deletes the row), and start
  what waited for the job.
- **Kill requests** name the run and the node that runs it; a node takes only its own. The run
  is ended through the runner, by the executor's one path for ending a run (SIGTERM to its
  process group, the grace period, SIGKILL: the same as a timeout or a shutdown), on a thread of
  its own so the loop never waits; its result comes back like any other (``failed``, outcome
  ``killed``, the user in its message). A process running jobs without a daemon (``jobfsm run``)
  takes the kill requests for its runs the same way (:class:`jobfsm.service.local.LocalRuns`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jobfsm.audit import AuditLog
from jobfsm.daemon import policy
from jobfsm.errors import JobfsmError
from jobfsm.store.abc import AuditEntry
from jobfsm.store.control import KILL_SIGNALLED, Pause

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler

SYSTEM_USER = "jobfsm"
"""Who the audit trail names for what the daemon does by itself (a pause that ended)."""


def kill_reason(user: str, how: str = "") -> str:
    """The message of a killed run: who killed it (and through what)."""
    return f"killed by {user}" + (f" ({how})" if how else "")


class Control:
    """Pauses and kill requests for one scheduler. Loop thread only."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self.pauses: dict[str, Pause] = {}
        """Every job's pause as the store had it at the last :meth:`refresh`."""
        self._audit: AuditLog | None = None

    # -- pauses ------------------------------------------------------------------------------
    def paused(self, name: str) -> str | None:
        """Why starts of job ``name`` are skipped now (None: it is not paused)."""
        pause = self.pauses.get(name)
        if pause is None:
            return None
        return policy.pause_reason(pause, self._scheduler.clock.now())

    def refresh(self) -> None:
        """Read the pauses from the store; start what waited for a job whose pause is gone."""
        before = self.pauses
        self.pauses = {p.job: p for p in self._scheduler.store.list_pauses()}
        now = self._scheduler.clock.now()
        for name, pause in before.items():
            after = self.pauses.get(name)
            if pause.active(now) and (after is None or not after.active(now)):
                self._scheduler.start_waiting(name)

    def next_end(self) -> datetime | None:
        """When the next pause ends by itself (the loop wakes then to clear it)."""
        ends = [p.until for p in self.pauses.values() if p.until is not None]
        return min(ends) if ends else None

    def expire(self, now: datetime) -> int:
        """Clear the pauses that ended by ``now``: a log line, an audit entry, waiting starts
        begin. How many this node cleared."""
        cleared = 0
        for name, pause in list(self.pauses.items()):
            if pause.until is None or pause.until > now:
                continue
            del self.pauses[name]
            scheduler = self._scheduler
            if scheduler.store.clear_pause(name, until=pause.until, only_expired=True) is not None:
                cleared += 1
                scheduler.logger.info(
                    f"job {name!r}: pause ended by itself at {pause.until.isoformat()} "
                    f"(paused by {pause.user}{': ' + pause.reason if pause.reason else ''})",
                    component="scheduler",
                )
                self._record(AuditEntry(now, SYSTEM_USER, "resume", name, "allowed", {
                    "why": "the pause ended by itself", "paused_by": pause.user,
                    "until": pause.until.isoformat(), "reason": pause.reason, "node": scheduler.node,
                }))
            scheduler.start_waiting(name)
        return cleared

    def _record(self, entry: AuditEntry) -> None:
        if self._audit is None:
            self._audit = AuditLog(Path(self._scheduler.logger.log_dir), self._scheduler.store)
        try:
            self._audit.record(entry)
        except JobfsmError as exc:  # an unwritable audit log must not stop the schedule
            self._scheduler.logger.error(f"cannot audit the end of a pause: {exc}")

    # -- kill requests -------------------------------------------------------------------------
    def take_kill_requests(self) -> int:
        """End the runs this node was asked to kill; how many requests were taken."""
        scheduler = self._scheduler
        requests = scheduler.store.claim_kill_requests(node=scheduler.node, at=scheduler.clock.now())
        for request in requests:
            running = request.run_id in scheduler.in_flight
            reason = kill_reason(request.user, f"kill request {request.id}")
            if running and scheduler.runner.terminate(request.run_id, reason=reason):
                scheduler.logger.info(
                    f"run {request.run_id} of job {request.job!r}: {reason}; ending its process group "
                    "(SIGTERM, then SIGKILL after the grace period)", component="scheduler",
                )
                result = KILL_SIGNALLED
            else:
                result = f"not running here: run {request.run_id} had already ended on {scheduler.node}"
            scheduler.store.resolve_kill_request(request.id, result)
        return len(requests)

    def poll(self) -> None:
        """What the bell may have rung for: changed pauses, kill requests."""
        self.refresh()
        self.take_kill_requests()
