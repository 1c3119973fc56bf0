"""The store interface and the records it holds.

All datetimes going in and out are timezone-aware UTC. Every implementation passes the same
test suite (``tests/test_store.py``, parametrized over every backend by one fixture).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobfsm.clock import iso
from jobfsm.model import JobState, Outcome, RunStatus, Trigger
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS
from jobfsm.store.control import KillRequest, Pause


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
            "scheduled_for": iso(self.scheduled_for),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
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
    """A run to record (:meth:`Store.claim_run`, :meth:`Store.claim_runs`): a fire, a retry, a
    skipped fire, or a manual run."""

    job: str
    trigger: Trigger
    node: str
    started_at: datetime
    scheduled_for: datetime | None = None
    """The fire it serves; with ``job`` and ``attempt`` the unique key. None for a manual run,
    which never conflicts."""
    attempt: int = 0
    status: RunStatus = RunStatus.RUNNING
    """``RUNNING``, or ``SKIPPED`` for a fire recorded with its reason in ``message``."""
    message: str = ""
    user: str | None = None
    """Who asked for a manual run."""
    exclusive: bool = False
    """The job's overlap is ``skip`` or ``queue``: see :meth:`Store.claim_run`."""


@dataclass(frozen=True, slots=True)
class Finish:
    """How a running run ended (:meth:`Store.finish_run`, :meth:`Store.finish_runs`)."""

    run_id: int
    outcome: Outcome
    """The run's status becomes ``outcome.run_status``."""
    ended_at: datetime
    exit_code: int | None
    duration_seconds: float | None
    signal: int | None = None
    message: str = ""
    """Empty keeps the message recorded at claim time."""
    stdout_tail: str = ""
    stderr_tail: str = ""
    stdout_path: str | None = None
    stderr_path: str | None = None


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


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as the store sees it (``jobfsm nodes``); ages by the database's clock."""

    node: str
    host: str
    pid: int
    started_at: datetime
    last_heartbeat: datetime
    alive: bool
    """Seen within ``dead_after`` seconds by the database's clock, and not declared dead since."""
    running: tuple[int, ...] = ()
    """Ids of its ``running`` runs."""
    declared_dead_by: str | None = None
    declared_dead_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node, "host": self.host, "pid": self.pid,
            "started_at": iso(self.started_at), "last_heartbeat": iso(self.last_heartbeat),
            "alive": self.alive, "running": list(self.running),
            "declared_dead_by": self.declared_dead_by, "declared_dead_at": iso(self.declared_dead_at),
        }


@dataclass(frozen=True, slots=True)
class Beat:
    """What a heartbeat (:meth:`Store.beat`) learnt."""

    at: datetime
    """The database's time of the beat: the node compares it with its own clock."""
    declared_dead_by: str | None = None
    """Set when another node had declared this one dead (its runs were marked lost) since its
    last beat; the beat has registered it again."""
    declared_dead_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeadNode:
    """A node :meth:`Store.declare_dead` found dead, and the runs it had going, now ``lost``."""

    node: str
    last_seen: datetime | None
    """Its last heartbeat (None: it never had one, or removed it)."""
    at: datetime
    """When it was declared dead, by the database's clock."""
    lost: tuple[RunRecord, ...]


def lost_message(node: str, *, last_seen: datetime | None, now: datetime, by: str, found: str, note: str) -> str:
    """The message of a run whose node died: which node, last seen when, found how and by whom."""
    seen = (f"last seen {last_seen.isoformat()} ({(now - last_seen).total_seconds():.1f} s before)"
            if last_seen is not None else "with no heartbeat in the store")
    return (f"node {node} stopped while the run was going ({seen}); declared dead "
            f"{found or 'by housekeeping'} at {now.isoformat()} by {by} (database clock){note}")


@dataclass
class Heartbeat:
    node: str
    pid: int
    host: str
    started_at: datetime
    last_seen: datetime


class Changes:
    """Whether a store may have changed since the last :meth:`look`, by its change mark
    (:meth:`Store.change_mark`); safe from any thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._seen: Hashable | None = None
        self.blind = True
        """The store had no mark at the last look: it cannot tell (then every look says changed)."""

    def look(self) -> bool:
        """False only when certainly nothing was committed since the previous look. Take it
        before reading the store: a write after it moves the mark for the next look."""
        with self._lock:
            mark = self._store.change_mark()
            self.blind = mark is None
            changed = mark is None or mark != self._seen
            self._seen = mark
            return changed

    def forget(self) -> None:
        """The next look says changed (what was read must be read again)."""
        with self._lock:
            self._seen = None


class Store(ABC):
    """What every backend provides. Methods are safe to call from several threads."""

    url: str = "memory://"
    """Where the store lives, with any password masked: safe for messages and logs."""
    spans_hosts: bool = False
    """Whether daemons on several hosts may share it (a database server). A store on one host
    (a SQLite file, memory) tells a dead node of its own host by its process, not by its beats."""

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
    def claim_run(self, claim: Claim) -> RunRecord | None:
        """Record a new run; ``None`` when (job, scheduled_for, attempt) is already claimed.

        The unique key is what keeps two daemons on one store from running the same fire
        twice. Runs with ``scheduled_for=None`` (manual) never conflict. A skipped fire is
        claimed too, with ``status=SKIPPED`` and the reason in ``message``.

        ``exclusive`` (a job with ``overlap: skip`` or ``queue``): a ``running`` claim also
        returns ``None`` while another exclusive run of the job is ``running``, on any node;
        :meth:`running_exclusive` then names it. The database enforces it (a partial unique
        index on the SQL store), so two nodes can never both start the job.
        """

    def claim_runs(self, claims: Sequence[Claim]) -> list[RunRecord | None]:
        """:meth:`claim_run` for each claim, in order: element ``i`` is the new run of
        ``claims[i]``, or ``None`` when its (job, scheduled_for, attempt) was already claimed,
        by anyone or by an earlier claim of the same call (the first one wins).

        A backend may record them all in one statement; this default makes one call each.
        """
        return [self.claim_run(c) for c in claims]

    @abstractmethod
    def start_queued_run(self, run_id: int, *, started_at: datetime) -> RunRecord | None:
        """A fire recorded as ``skipped`` while it waited (``overlap: queue``) starts now:
        it becomes ``running`` with ``started_at`` and an empty message. ``None`` when the run
        is not a waiting one (already started, or pruned), or when it was claimed
        ``exclusive`` and another exclusive run of its job is running (it stays waiting)."""

    @abstractmethod
    def finish_run(self, finish: Finish) -> RunRecord:
        """Close a running run; its status becomes ``finish.outcome.run_status``. A run that
        was not ``running`` (lost, finished already) is logged as a warning and overwritten with
        the real result; an unknown id raises :class:`jobfsm.errors.RunNotFoundError`."""

    def finish_runs(self, finishes: Sequence[Finish]) -> None:
        """:meth:`finish_run` for each finish, in order.

        Logs the same warning as :meth:`finish_run` for each run that was not ``running``
        (a run finished twice in one call warns the second time). An unknown id raises
        :class:`jobfsm.errors.RunNotFoundError` before anything is written.

        A backend may record them all in one or two statements; this default looks every id
        up first, then makes one :meth:`finish_run` call each.
        """
        for run_id in dict.fromkeys(f.run_id for f in finishes):
            self.get_run(run_id)
        for finish in finishes:
            self.finish_run(finish)

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

    # -- operational control: pauses and kill requests (docs/operations-control.md) --------
    @abstractmethod
    def set_pause(self, pause: Pause) -> None:
        """Pause a job (replacing any pause it had); rings the trigger bell."""

    @abstractmethod
    def clear_pause(self, job: str, *, until: datetime | None = None, only_expired: bool = False) -> Pause | None:
        """Remove the job's pause and return it (None: it had none). ``only_expired``: only
        when its ``until`` is the given one (a pause that ended by itself, not a newer one)."""

    @abstractmethod
    def list_pauses(self) -> list[Pause]:
        """Every job's pause, by job name (ended ones too, until someone clears them)."""

    @abstractmethod
    def request_kill(self, job: str, *, run_id: int, node: str, user: str, at: datetime) -> KillRequest:
        """Ask ``node`` to kill run ``run_id``; rings the trigger bell."""

    @abstractmethod
    def claim_kill_requests(self, *, node: str, at: datetime) -> list[KillRequest]:
        """Atomically take the unclaimed kill requests addressed to ``node``, oldest first."""

    @abstractmethod
    def resolve_kill_request(self, request_id: int, result: str) -> None: ...

    @abstractmethod
    def get_kill_request(self, request_id: int) -> KillRequest:
        """Raises :class:`LookupError` (:class:`jobfsm.errors.JobfsmError`) for an unknown id."""

    # -- several hosts (docs/cluster.md) --------------------------------------------------
    @abstractmethod
    def running_exclusive(self, job: str) -> RunRecord | None:
        """The ``running`` exclusive run of ``job`` (on whichever node), if any."""

    @abstractmethod
    def fire_claimed(self, job: str, scheduled_for: datetime, attempt: int = 0) -> RunRecord | None:
        """The run recorded for (job, scheduled_for, attempt), if any."""

    def claimed_fires(self, fires: Sequence[tuple[str, datetime, int]]) -> set[tuple[str, datetime, int]]:
        """Which of these (job, scheduled_for, attempt) are recorded already (scheduled_for in
        UTC in the answer): a node whose batch of claims came back partly empty learns at once
        which fires another node took. A backend may answer in one query; this asks one by one."""
        out = set()
        for job, at, attempt in fires:
            run = self.fire_claimed(job, at, attempt)
            if run is not None and run.scheduled_for is not None:
                out.add((job, run.scheduled_for, attempt))
        return out

    @abstractmethod
    def database_now(self, at: datetime | None = None) -> datetime:
        """The database's clock: PostgreSQL's. A store with no clock of its own (a SQLite file,
        on one host; memory) takes ``at``, the caller's clock (or this host's when None): there
        is only one clock there. The same holds for ``at`` of the calls below."""

    @abstractmethod
    def beat(self, node: str, *, pid: int, host: str, at: datetime | None = None) -> Beat:
        """A heartbeat stamped with the database's clock, never the node's. A node that had
        been declared dead is registered again, and the :class:`Beat` says by whom."""

    @abstractmethod
    def nodes(
        self, *, seen_within: float, dead_after: float = DEFAULT_DEAD_AFTER_SECONDS, at: datetime | None = None,
    ) -> list[NodeInfo]:
        """Every node whose last heartbeat is at most ``seen_within`` seconds old by the
        database's clock, by name; ``alive`` by ``dead_after``."""

    @abstractmethod
    def declare_dead(
        self, node: str, *, by: str, dead_after: float | None, found: str = "", note: str = "",
        at: datetime | None = None,
    ) -> DeadNode | None:
        """In one transaction: if ``node``'s last heartbeat is older than ``dead_after`` seconds
        by the database's clock (``None``: dead regardless, e.g. its process is known gone), or it
        has none, mark it dead and turn its ``running`` runs ``lost`` with a message naming the
        node, when it was last seen, ``found`` (how) and ``by`` whom, then ``note``. ``None``
        when it is alive after all (a beat came in meanwhile). Each run is returned to one
        caller only: two nodes finding the same dead node do not both retry its runs."""

    def change_mark(self) -> Hashable | None:
        """A value that differs once something was committed to the store by another process
        or by this one's other calls (a daemon's own heartbeats may not count), so that an idle
        look can be skipped; ``None`` when the store cannot tell cheaply: then look."""
        return None

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
