"""The job model: closed sets as Enums and the validated, frozen :class:`JobConfig`.

``JobConfig`` is what a job file means once it has passed the schema and the checks a
schema cannot express (see :mod:`jobfsm.config.loader`). ``from_dict`` does not validate: build
configs from untrusted input through the loader or :func:`jobfsm.config.loader.validate_document`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cache
from sys import intern
from typing import Any

DEFAULT_TIMEZONE = "UTC"
DEFAULT_TIMEOUT_SECONDS = 3600
DEFAULT_RETRY_DELAY_SECONDS = 60


class JobState(StrEnum):
    """Where a job is in its lifecycle (the README's "Lifecycle")."""

    DISABLED = "disabled"
    """The file says ``"enabled": false``: the job never fires and cannot be triggered."""
    IDLE = "idle"
    """Enabled and waiting for its next fire; it has not run since it was (re)enabled."""
    RUNNING = "running"
    """At least one run is in progress."""
    SUCCEEDED = "succeeded"
    """Enabled and waiting; its last run exited 0."""
    FAILED = "failed"
    """Enabled and waiting; its last run failed (non-zero exit, timeout, could not start, lost)."""


class Overlap(StrEnum):
    """What a fire does while the previous run of the same job is still going."""

    SKIP = "skip"
    """Do not start; the fire is recorded as a ``skipped`` run with the reason."""
    QUEUE = "queue"
    """Start it right after the running one ends (at most one waits)."""
    ALLOW = "allow"
    """Start it at once, concurrently with the running one."""


class CatchUp(StrEnum):
    """What happens at daemon start-up to fires missed while it was down."""

    NONE = "none"
    """Forget them; wait for the next fire."""
    LATEST = "latest"
    """Run once, for the most recent missed fire."""
    ALL = "all"
    """Run each missed fire, oldest first (bounded, see ``MAX_CATCH_UP``)."""


class RunStatus(StrEnum):
    """The status of one run as the store and ``jobfsm history`` show it."""

    RUNNING = "running"
    """Started and not finished yet."""
    SUCCEEDED = "succeeded"
    """Exited 0."""
    FAILED = "failed"
    """Non-zero exit, timeout, could not start, or killed at shutdown (see ``outcome``)."""
    SKIPPED = "skipped"
    """Not started because of the job's overlap policy (the reason is recorded)."""
    LOST = "lost"
    """Was running when its daemon died; found at the next start-up."""


class Outcome(StrEnum):
    """How a run that was started ended, in more detail than :class:`RunStatus`."""

    SUCCEEDED = "succeeded"
    """The command exited with status 0."""
    FAILED = "failed"
    """The command exited with a non-zero status or was ended by a signal."""
    TIMED_OUT = "timed_out"
    """It ran past ``timeout_seconds``; its process group was terminated."""
    NOT_STARTED = "not_started"
    """It could not start: missing working directory, command not found, permission denied."""
    KILLED = "killed"
    """The daemon shut down and the grace period ran out; its process group was killed."""

    @property
    def run_status(self) -> RunStatus:
        return RunStatus.SUCCEEDED if self is Outcome.SUCCEEDED else RunStatus.FAILED


class Trigger(StrEnum):
    """Why a run was started."""

    SCHEDULE = "schedule"
    """A cron fire."""
    MANUAL = "manual"
    """A person asked (``jobfsm run``, the admin page)."""
    CATCH_UP = "catch_up"
    """A fire missed while the daemon was down, run at start-up per ``catch_up``."""
    RETRY = "retry"
    """A retry of a failed run, per ``retries`` and ``retry_delay_seconds``."""


Command = str | tuple[str, ...]


class NotifyEvent(StrEnum):
    """What a job's ``notify`` may tell of."""

    FAILURE = "failure"
    """A run failed: non-zero exit, timeout, could not start, killed (once per failing streak)."""
    RECOVERY = "recovery"
    """The first success after a failure."""
    MISSED = "missed"
    """Fires that should have run and did not (the daemon was down, the overlap policy skipped
    them); once per streak, naming how many and when."""
    LOST = "lost"
    """A run's node died while it ran."""
    LONG_RUNNING = "long_running"
    """A run still going after ``long_running_seconds``."""


DEFAULT_NOTIFY_ON = (NotifyEvent.FAILURE, NotifyEvent.RECOVERY, NotifyEvent.MISSED, NotifyEvent.LOST)


@dataclass(frozen=True, slots=True)
class Notify:
    """A job's ``notify``: who is told of which events (the daemon's defaults fill what is missing)."""

    on: tuple[NotifyEvent, ...] = DEFAULT_NOTIFY_ON
    webhook: str | None = None
    email: tuple[str, ...] = ()
    long_running_seconds: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notify:
        return cls(
            on=tuple(NotifyEvent(e) for e in data.get("on", [e.value for e in DEFAULT_NOTIFY_ON])),
            webhook=data.get("webhook"),
            email=tuple(data.get("email", ())),
            long_running_seconds=data.get("long_running_seconds"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.on != DEFAULT_NOTIFY_ON:
            out["on"] = [e.value for e in self.on]
        if self.webhook is not None:
            out["webhook"] = self.webhook
        if self.email:
            out["email"] = list(self.email)
        if self.long_running_seconds is not None:
            out["long_running_seconds"] = self.long_running_seconds
        return out


def document_value(value: Any) -> Any:
    """A config attribute as a job file writes it (lists, plain strings, plain objects)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Notify):
        return value.to_dict()
    return value


@dataclass(frozen=True, slots=True)
class JobConfig:
    """One job file, validated. Field order is the canonical key order of a job file."""

    name: str
    schedule: str
    command: Command
    working_directory: str
    enabled: bool
    description: str = ""
    timezone: str = DEFAULT_TIMEZONE
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    env: Mapping[str, str] = field(default_factory=dict)
    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.NONE
    retries: int = 0
    retry_delay_seconds: int = DEFAULT_RETRY_DELAY_SECONDS
    notify: Notify = Notify()
    """Left out: the default events, told to the daemon's ``--notify-webhook`` and ``--notify-email``."""
    schema_ref: str | None = None
    """The file's ``$schema`` key, kept so that writing the job back preserves it."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobConfig:
        """Build from a (schema-valid) job document; absent keys take their defaults.

        Strings are interned: an estate of thousands of jobs repeats the same schedules, zones,
        folders and programs, and a daemon keeps every config for its lifetime (measured with
        10,000 job files: 3.5 MB less)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            key = document_key(f.name)
            if key in data:
                value = data[key]
                kwargs[f.name] = intern(value) if type(value) is str else value
        command = kwargs.get("command")
        if isinstance(command, list):
            kwargs["command"] = tuple(intern(c) if type(c) is str else c for c in command)
        if "env" in kwargs:
            kwargs["env"] = {intern(k): intern(v) if type(v) is str else v for k, v in kwargs["env"].items()}
        if "overlap" in kwargs:
            kwargs["overlap"] = Overlap(kwargs["overlap"])
        if "catch_up" in kwargs:
            kwargs["catch_up"] = CatchUp(kwargs["catch_up"])
        if "notify" in kwargs:
            kwargs["notify"] = Notify.from_dict(kwargs["notify"])
        return cls(**kwargs)

    def to_dict(self, *, full: bool = True) -> dict[str, Any]:
        """The job as a JSON-ready document.

        ``full=True`` writes every field (defaults included); ``full=False`` leaves out
        optional fields that equal their default, as a hand-written file would.
        """
        out: dict[str, Any] = {}
        if self.schema_ref is not None:
            out["$schema"] = self.schema_ref
        for f in fields(self):
            if f.name == "schema_ref":
                continue
            value = getattr(self, f.name)
            if not full and f.name in _OPTIONAL and value == _defaults()[f.name]:
                continue
            out[f.name] = document_value(value)
        return out

    @property
    def command_text(self) -> str:
        """The command as one line, for display."""
        if isinstance(self.command, str):
            return self.command
        import shlex

        return shlex.join(self.command)


def document_key(attribute: str) -> str:
    """The job file's key for a :class:`JobConfig` attribute (``schema_ref`` is ``$schema``)."""
    return "$schema" if attribute == "schema_ref" else attribute


REQUIRED_FIELDS = ("name", "schedule", "command", "working_directory", "enabled")
_OPTIONAL = frozenset(f.name for f in fields(JobConfig)) - set(REQUIRED_FIELDS) - {"schema_ref"}


@cache
def _defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(JobConfig):
        if f.name in _OPTIONAL:
            out[f.name] = f.default_factory() if callable(f.default_factory) else f.default
    return out
