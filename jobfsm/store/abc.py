"""The store interface and the records it holds.

All datetimes going in and out are timezone-aware UTC. Every implementation passes the same
test suite (``tests/test_store.py``, parametrized over every backend by one fixture).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobfsm.model import JobState, Outcome, RunStatus, Trigger


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


@dataclass
class RunRecord:
    """One run of a job (or one skipped fire)."""

    id: int
    job: str
    status: RunStatus
    trigger: Trigger
    node: str
    scheduled_for: datetime | None = None
    """The fire this run serves (None for a manual run)."""
    attempt: int = 0
    """0 for the first try of a fire, 1.. for its retries."""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    signal: int | None = None
    duration_seconds: float | None = None
    outcome: Outcome | None = None
    message: str = ""
    """Why it was skipped, lost, could not start, was killed; empty when there is nothing to say."""
    stdout_tail: str = ""
    stderr_tail: str = ""
    stdout_path: str | None = None
    stderr_path: str | None = None
    user: str | None = None
    """Who asked for a manual run."""

    def to_dict(self) -> dict[str, Any]:
        """The run as ``--format json`` and the admin page show it."""
        return {
            "id": self.id,
            "job": self.job,
            "status": self.status.value,
            "trigger": self.trigger.value,
            "scheduled_for": _iso(self.scheduled_for),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "exit_code": self.exit_code,
            "signal": self.signal,
            "duration_seconds": self.duration_seconds,
            "node": self.node,
            "attempt": self.attempt,
            "outcome": self.outcome.value if self.outcome else None,
            "message": self.message,
            "user": self.user,
            "stdout_path": self.stdout_path,
            "stderr_path": self.stderr_path,
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """One fire to claim with :meth:`Store.claim_runs`: the arguments of :meth:`Store.claim_run`."""

    job: str
    trigger: Trigger
    node: str
    started_at: datetime
    scheduled_for: datetime
    """Required: only keyed fires are claimed in batches (a manual run has no key to match)."""
    attempt: int = 0
    status: RunStatus = RunStatus.RUNNING
    message: str = ""
    user: str | None = None

    def __post_init__(self) -> None:
        if self.scheduled_for is None:
            raise ValueError(f"a claim of job {self.job!r} needs scheduled_for; use claim_run for a manual run")


@dataclass
class AuditEntry:
    """Who did what, when, and how it ended (``allowed``, ``denied`` or ``failed``)."""

    time: datetime
    user: str
    action: str
    job: str | None
    outcome: str
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["time"] = self.time.isoformat()
        return out


@dataclass
class TriggerRequest:
    """A person's request to run a job now, waiting for a daemon to pick it up."""

    id: int
    job: str
    user: str
    requested_at: datetime
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    run_id: int | None = None
    """The run that serves it, once a daemon started it (or recorded it as skipped)."""


HEARTBEAT_MAX_AGE_SECONDS = 15.0
"""A node whose last heartbeat is older than this is taken for dead (daemons beat every 5 s)."""

WARM_UP_JOB = "jobfsm-warm-up"
WARM_UP_AT = datetime(2000, 1, 1, tzinfo=UTC)
"""The job and the fire a store's :meth:`Store.warm_up` rehearses (and rolls back)."""

DEFAULT_KEEP_RUNS = 1000
DEFAULT_KEEP_DAYS = 30.0
"""Retention (``jobfsm start --keep-runs/--keep-days``): a finished run is deleted once it is both
beyond the newest ``DEFAULT_KEEP_RUNS`` of its job and older than ``DEFAULT_KEEP_DAYS``, so a job
that fires every minute keeps 30 days and one that fires monthly keeps its last thousand."""


@dataclass
class Heartbeat:
    node: str
    pid: int
    host: str
    started_at: datetime
    last_seen: datetime


class Store(ABC):
    """What every backend provides. Methods are safe to call from several threads."""

    url: str = "memory://"
    """Where the store lives, with any password masked: safe for messages and logs."""

    # -- job states ------------------------------------------------------------
    @abstractmethod
    def get_state(self, job: str) -> JobState | None: ...

    @abstractmethod
    def set_state(self, job: str, state: JobState, at: datetime) -> None: ...

    @abstractmethod
    def set_states(self, states: dict[str, JobState], at: datetime) -> None:
        """Several :meth:`set_state` in one transaction (the daemon's start-up with many jobs)."""

    @abstractmethod
    def all_states(self) -> dict[str, JobState]: ...

    @abstractmethod
    def delete_state(self, job: str) -> None: ...

    # -- runs ------------------------------------------------------------------
    @abstractmethod
    def claim_run(
        self,
        job: str,
        *,
        trigger: Trigger,
        node: str,
        started_at: datetime,
        scheduled_for: datetime | None = None,
        attempt: int = 0,
        status: RunStatus = RunStatus.RUNNING,
        message: str = "",
        user: str | None = None,
    ) -> RunRecord | None:
        """Record a new run; ``None`` when (job, scheduled_for, attempt) is already claimed.

        The unique key is what keeps two daemons on one store from running the same fire
        twice. Runs with ``scheduled_for=None`` (manual) never conflict. A skipped fire is
        claimed too, with ``status=SKIPPED`` and the reason in ``message``.
        """

    def claim_runs(self, claims: Sequence[Claim]) -> list[RunRecord | None]:
        """:meth:`claim_run` for each claim, in order: element ``i`` is the new run of
        ``claims[i]``, or ``None`` when its (job, scheduled_for, attempt) was already claimed,
        by anyone or by an earlier claim of the same call (the first one wins).

        A backend may record them all in one statement; this default makes one call each.
        """
        return [
            self.claim_run(
                c.job, trigger=c.trigger, node=c.node, started_at=c.started_at,
                scheduled_for=c.scheduled_for, attempt=c.attempt, status=c.status,
                message=c.message, user=c.user,
            )
            for c in claims
        ]

    @abstractmethod
    def start_queued_run(self, run_id: int, *, started_at: datetime) -> RunRecord | None:
        """A fire recorded as ``skipped`` while it waited (``overlap: queue``) starts now:
        it becomes ``running`` with ``started_at`` and an empty message. ``None`` when the run
        is not a waiting one (already started, or pruned)."""

    @abstractmethod
    def finish_run(
        self,
        run_id: int,
        *,
        outcome: Outcome,
        ended_at: datetime,
        exit_code: int | None,
        duration_seconds: float | None,
        signal: int | None = None,
        message: str = "",
        stdout_tail: str = "",
        stderr_tail: str = "",
        stdout_path: str | None = None,
        stderr_path: str | None = None,
    ) -> RunRecord:
        """Close a running run; its status becomes ``outcome.run_status``."""

    def finish_runs(self, finishes: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """:meth:`finish_run` ``(run_id, **fields)`` for each pair, in order; ``fields`` are
        exactly its keyword arguments (:meth:`jobfsm.runs.executor.JobResult.finish_fields`).

        Logs the same warning as :meth:`finish_run` for each run that was not ``running``
        (a run finished twice in one call warns the second time). An unknown id raises
        :class:`jobfsm.errors.RunNotFoundError` before anything is written.

        A backend may record them all in one or two statements; this default looks every id
        up first, then makes one :meth:`finish_run` call each.
        """
        for run_id in dict.fromkeys(run_id for run_id, _ in finishes):
            self.get_run(run_id)
        for run_id, fields in finishes:
            self.finish_run(run_id, **fields)

    @abstractmethod
    def get_run(self, run_id: int) -> RunRecord:
        """Raises :class:`jobfsm.errors.RunNotFoundError`."""

    @abstractmethod
    def list_runs(
        self,
        job: str | None = None,
        *,
        status: RunStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Newest first (by ``started_at``, then id). ``since``/``until`` bound ``started_at``
        inclusively."""

    def latest_runs(self) -> dict[str, RunRecord]:
        """Each job's newest run (``list_runs(job, limit=1)`` of every job), in one query: what
        ``jobfsm status`` and the dashboard show beside every job."""
        latest: dict[str, RunRecord] = {}
        for run in self.list_runs():
            latest.setdefault(run.job, run)
        return latest

    @abstractmethod
    def last_fire(self, job: str) -> datetime | None:
        """The latest ``scheduled_for`` of a scheduled or caught-up run (any status)."""

    @abstractmethod
    def last_fires(self) -> dict[str, datetime]:
        """:meth:`last_fire` of every job that has one, in one query (the daemon's start-up)."""

    @abstractmethod
    def mark_lost(self, *, at: datetime, node: str | None = None, message: str) -> list[RunRecord]:
        """Turn every ``running`` run (of ``node``, or of every node) into ``lost``."""

    @abstractmethod
    def prune_runs(self, *, now: datetime, keep_last: int, keep_days: float) -> list[RunRecord]:
        """Delete finished runs beyond the newest ``keep_last`` per job *and* older than
        ``keep_days``; returns what was deleted (so their output files can go too)."""

    # -- manual trigger requests ---------------------------------------------------
    @abstractmethod
    def request_trigger(self, job: str, *, user: str, at: datetime) -> TriggerRequest: ...

    @abstractmethod
    def claim_trigger_requests(self, *, node: str, at: datetime) -> list[TriggerRequest]:
        """Atomically take every unclaimed request (each goes to exactly one node)."""

    @abstractmethod
    def resolve_trigger_request(self, request_id: int, run_id: int) -> None: ...

    @abstractmethod
    def get_trigger_request(self, request_id: int) -> TriggerRequest: ...

    # -- audit ---------------------------------------------------------------------
    @abstractmethod
    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        """Store it and return it with its id."""

    @abstractmethod
    def list_audit(
        self,
        *,
        user: str | None = None,
        job: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Newest first."""

    # -- node heartbeats -----------------------------------------------------------
    @abstractmethod
    def heartbeat(self, node: str, *, pid: int, host: str, at: datetime) -> None: ...

    @abstractmethod
    def remove_node(self, node: str) -> None:
        """Forget a node (a clean shutdown), so nobody waits for it."""

    @abstractmethod
    def live_nodes(self, *, now: datetime, max_age_seconds: float) -> list[Heartbeat]: ...

    def batch(self) -> AbstractContextManager[None]:
        """Store calls made inside (on this thread) may share one transaction; a backend
        without transactions runs them one by one."""
        return nullcontext()

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Prepare the calls on a fire's path (claim, state, finish) so that the first fire
        after start-up costs no more than any other; leaves no trace in the store (a backend
        that rehearses a fire uses :data:`WARM_UP_JOB` and :data:`WARM_UP_AT`)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
