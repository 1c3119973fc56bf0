"""``jobfsm check``: what an external monitor (or a systemd ``OnFailure=``) asks, since a daemon
that is down cannot alert: is a daemon alive, did a job miss fires, is a job failing now.

Read from the store and the job files only; nothing here needs the daemon. A job missed fires
when its newest record is a missed fire (:mod:`jobfsm.notify.misses`: the daemon was down, the
loop was late, the overlap policy skipped it), or when a fire due more than ``slack_seconds``
ago has no record at all (no daemon ran it). It is failing when its state is ``failed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from jobfsm import cron
from jobfsm.model import JobState, RunStatus
from jobfsm.notify.misses import miss_of

if TYPE_CHECKING:
    from jobfsm.service.service import JobManagementService
    from jobfsm.service.views import JobView
    from jobfsm.store.abc import RunRecord

DEFAULT_SLACK_SECONDS = 60.0
"""A fire is overdue when it has no record this long after its time (a busy daemon is late)."""


class CheckKind(StrEnum):
    NO_DAEMON = "no_daemon"
    """No daemon heartbeated recently: nothing runs, and nothing can alert."""
    MISSED = "missed"
    """A job's fires did not run."""
    FAILING = "failing"
    """A job's last run failed (or was lost)."""


@dataclass(frozen=True, slots=True)
class Finding:
    kind: CheckKind
    job: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "job": self.job, "message": self.message}


def health_check(service: JobManagementService, *, slack_seconds: float = DEFAULT_SLACK_SECONDS) -> list[Finding]:
    """Every problem found, daemon first, then by job name."""
    now = service.clock.now()
    findings: list[Finding] = []
    if not service.daemon_alive():
        findings.append(Finding(CheckKind.NO_DAEMON, None,
                                f"no daemon alive: none heartbeated in the last {service.heartbeat_max_age:g} s "
                                "(start one: jobfsm start)"))
    last_fires = service.store.last_fires()
    for view in service.list_jobs():
        config = view.config
        if config is None or not view.valid or not config.enabled:
            continue
        missed = _missed(view, last_fires.get(view.name), now, slack_seconds)
        if missed:
            findings.append(Finding(CheckKind.MISSED, view.name, missed))
        if view.state is JobState.FAILED:
            findings.append(Finding(CheckKind.FAILING, view.name, _failing(view)))
    return findings


def _missed(view: JobView, last_fire: datetime | None, now: datetime, slack: float) -> str | None:
    config = view.config
    assert config is not None
    last = view.last_run
    if last is not None and last.status is RunStatus.SKIPPED and miss_of(last.message, last.trigger):
        return f"job {view.name!r} missed fires: {last.message}"
    since = last_fire
    if since is None:  # never fired: count from when its file was written
        try:
            since = datetime.fromtimestamp(os.stat(view.file).st_mtime, tz=UTC)
        except OSError:
            return None
    try:
        due = cron.next_fire(config.schedule, config.timezone, since)
    except Exception:  # a schedule that validated but cannot be computed: validate says why
        return None
    if due <= now - timedelta(seconds=slack):
        return (f"job {view.name!r} missed fires: the fire of {due.isoformat()} has no run "
                f"(last recorded fire: {last_fire.isoformat() if last_fire else 'none'})")
    return None


def _failing(view: JobView) -> str:
    run: RunRecord | None = view.last_run
    if run is None or run.status not in (RunStatus.FAILED, RunStatus.LOST):
        return f"job {view.name!r} is failing (its last run failed)"
    how = run.outcome.value.replace("_", " ") if run.outcome else run.status.value
    if run.exit_code is not None:
        how = f"exit {run.exit_code}"
    when = run.ended_at or run.started_at
    said = f": {run.message}" if run.message else ""
    return f"job {view.name!r} is failing: run {run.id} {how} at {when.isoformat() if when else '?'}{said}"
