"""What the service returns for people to see: a job (:class:`JobView`) and a run's output
(:class:`LogEntry`).

A job's definition is its file; what it is doing is in the store. :func:`job_view` joins the
two: the state follows the file where the store lags behind (a job whose file says disabled
shows ``disabled`` at once, before a daemon reloaded it), except while it runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from datetime import datetime
from typing import Any

from jobfsm.audit import mask_env
from jobfsm.clock import iso
from jobfsm.config.jobfiles import JobFile
from jobfsm.config.loader import FileReport, validate_document
from jobfsm.errors import JobfsmError
from jobfsm.model import JobConfig, JobState
from jobfsm.problems import Problem
from jobfsm.service.output import OutputSource
from jobfsm.store.abc import RunRecord
from jobfsm.store.control import Pause

__all__ = ["INVALID_STATE", "JobView", "LogEntry", "job_view", "shown_state"]

INVALID_STATE = "invalid"
"""The state shown for a job whose file does not load. It is no lifecycle state: a running
daemon keeps the job's last good version (and its state) until the file is fixed."""


def shown_state(state: JobState | None, *, loaded: bool) -> str:
    """The state people see: :data:`INVALID_STATE` when the file did not load (``loaded``
    false), else the lifecycle state (a job with none yet is idle)."""
    if not loaded:
        return INVALID_STATE
    return (state or JobState.IDLE).value


@dataclass(frozen=True)
class JobView:
    """A job as people see it: its file, its validity, its live state. Secrets are masked."""

    name: str
    config: JobConfig | None
    """The validated config, ``env`` values with secret-looking keys masked; None when invalid."""
    file: str
    version: str | None
    """SHA-256 of the file's bytes; pass it back to edit the job."""
    state: JobState | None
    enabled: bool | None
    last_run: RunRecord | None
    next_run: datetime | None
    problems: list[Problem] = field(default_factory=list)
    """Errors (the file is invalid) and warnings (a missing working directory)."""
    pause: Pause | None = None
    """The job's pause, when it holds now (``jobfsm pause``; kept in the store)."""

    @property
    def valid(self) -> bool:
        return self.config is not None and not any(p.is_error for p in self.problems)

    @property
    def shown_state(self) -> str:
        """The state column of ``jobfsm status`` and the admin page (:func:`shown_state`)."""
        return shown_state(self.state, loaded=self.config is not None)

    def to_dict(self) -> dict[str, Any]:
        """The ``status --format json`` shape, plus the file, version, description and problems."""
        config = self.config
        return {
            "name": self.name,
            "state": self.state.value if self.state else None,
            "enabled": self.enabled,
            "schedule": config.schedule if config else None,
            "timezone": config.timezone if config else None,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "last_run": self.last_run.to_dict() if self.last_run else None,
            "description": config.description if config else None,
            "command": (
                list(config.command) if config and isinstance(config.command, tuple)
                else (config.command if config else None)
            ),
            "file": self.file,
            "version": self.version,
            "valid": self.valid,
            "problems": [p.to_dict() for p in self.problems],
            "paused": self.pause is not None,
            "paused_until": iso(self.pause.until) if self.pause else None,
            "pause_reason": self.pause.reason if self.pause else None,
            "paused_by": self.pause.user if self.pause else None,
        }


@dataclass(frozen=True)
class LogEntry:
    """The output of one run: whole (bounded, :data:`jobfsm.service.logs.LOG_READ_LIMIT`), or
    only the lines that matched a search."""

    run: RunRecord
    stdout: str
    stderr: str
    source: OutputSource = OutputSource.FILE
    """The output files read here, or the stored head and tail (the files are elsewhere)."""
    note: str = ""
    """Where the full output is when it was not read here (names the node and the path)."""


def job_view(
    jf: JobFile, stored: JobState | None, now: datetime, last_run: RunRecord | None, pause: Pause | None = None,
    *, report: FileReport | None = None,
) -> JobView:
    """The view of one job file, its state in the store (``stored``) and its newest run;
    ``report``: the file's validation, when the caller already has it."""
    problems: list[Problem] = []
    config: JobConfig | None = None
    if jf.problem is not None:
        problems.append(jf.problem)
    else:
        report = report or validate_document(jf.document, str(jf.path), stem=jf.name)
        problems = list(report.problems)
        config = report.config
    state: JobState | None = stored
    next_run = None
    if config is not None:
        if state is not JobState.RUNNING:
            if not config.enabled:
                state = JobState.DISABLED
            elif state in (None, JobState.DISABLED):
                state = JobState.IDLE
        if config.enabled:
            from jobfsm.cron import next_fire

            with contextlib.suppress(JobfsmError):
                next_run = next_fire(config.schedule, config.timezone, now)
        config = dc_replace(config, env=mask_env(config.env))
    return JobView(
        name=jf.name,
        config=config,
        file=str(jf.path),
        version=jf.version,
        state=state,
        enabled=config.enabled if config else None,
        last_run=last_run,
        next_run=next_run,
        problems=problems,
        pause=pause,
    )
