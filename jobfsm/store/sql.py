"""The SQL store: SQLAlchemy Core over SQLite (one file, the default) or PostgreSQL (several hosts).

Design decisions:

- **One code path for both backends.** Tables are SQLAlchemy Core ``Table`` objects, queries
  are Core statements; the few backend differences live in :meth:`SqlStore._make_engine`
  (connection set-up) and :func:`_upsert` (``INSERT … ON CONFLICT`` comes from the dialect).
- **SQLite is used by several processes at once** (two daemons, the CLI, the admin page), so a
  writer must wait, never fail with "database is locked". Every connection runs in WAL mode
  (readers never block the writer) with a ``busy_timeout``; sqlite3's own implicit ``BEGIN``
  is switched off and the store emits its own: ``BEGIN IMMEDIATE`` for writes (the write lock
  is taken up front, where the busy handler can wait for it, instead of on the first write of
  a read transaction, where SQLite gives up at once with ``SQLITE_BUSY``) and a plain
  ``BEGIN`` for reads (one consistent snapshot per call). Writers of one process are also
  serialized by a ``threading.Lock`` so threads queue in Python rather than in SQLite's
  busy-sleep loop.
- **Claims are atomic across processes.** ``claim_run`` is an ``INSERT`` guarded by
  ``UNIQUE (job, scheduled_for, attempt)`` (see "Claims never fail" below): another node got
  that fire first when it inserts nothing, and the claim returns ``None``. Manual runs have ``scheduled_for`` NULL, and both backends
  treat NULLs in a unique key as distinct, so they never conflict. ``claim_trigger_requests``
  is one ``UPDATE … WHERE claimed_by IS NULL … RETURNING`` over ``SELECT … FOR UPDATE SKIP
  LOCKED`` on PostgreSQL; SQLite ignores the locking clause and its write lock serializes it.
- **Times are aware UTC everywhere.** :class:`UTCDateTime` stores naive UTC on SQLite (which
  has no time zone type; the fixed-width text SQLAlchemy writes sorts chronologically) and
  ``timestamptz`` on PostgreSQL, and always returns aware UTC datetimes.
- **Versioned schema.** ``meta`` holds the schema version; :data:`MIGRATIONS` is a list of
  functions where ``MIGRATIONS[v]`` moves a store from version ``v`` to ``v + 1`` (version 0 is
  an empty database, version 1 the first schema). Opening a store runs the missing steps in one
  write transaction (under an advisory lock on PostgreSQL, so two daemons starting together do
  not race), then creates any missing table. A store written by a newer jobfsm is refused. A
  future migration must not use the live table definitions below for the tables it changes.
- **Errors name the store.** Failing to open (bad URL, unreachable server, unwritable path) or
  to use the database raises :class:`jobfsm.errors.StoreError` with the URL (password masked)
  and what to check.
- **Claims never fail.** A claim is ``INSERT … ON CONFLICT (job, scheduled_for, attempt) DO
  NOTHING RETURNING``: a fire someone else claimed returns no row, raises nothing, and so can
  share a transaction with other calls (:meth:`SqlStore.batch`; PostgreSQL would abort the whole
  transaction on a unique-key error).
- **Statements on a fire's path are built once** (the claim, ``_FINISH``, the ``set_state``
  upsert, ...) and executed with parameters: SQLAlchemy then reuses their cache key and compiled
  form instead of rebuilding both on every call (about three times quicker; docs/benchmarks.md).
- **A burst is recorded a chunk at a time.** ``claim_runs`` is one executemany of the claim,
  which SQLAlchemy's "insertmanyvalues" sends as one multi-row ``INSERT … ON CONFLICT DO
  NOTHING RETURNING`` per 1000 rows on both backends; the rows that come back (in no promised
  order, none for a fire already taken) are matched to the claims by (job, scheduled_for in
  UTC, attempt). ``finish_runs`` looks every run up first (finish_run's warnings, and an
  unknown id raises before anything is written), then updates them in one executemany; its
  rowcount, the sum over the rows on sqlite3 and psycopg 3, is checked (``bench/bench_store.py``).
- **Pooling.** A ``QueuePool`` on both backends (``pool_pre_ping`` on PostgreSQL, since the
  daemon outlives server restarts); the daemon touches the store from its loop thread only, the
  admin page from several threads. ``sqlite://`` (in memory) uses one shared connection and
  serializes every call.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    any_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.pool import StaticPool

from jobfsm.clock import Clock, utc
from jobfsm.errors import (
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
    TriggerRequestNotFoundError,
)
from jobfsm.model import JobState, Outcome, RunStatus, Trigger
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS
from jobfsm.store.abc import (
    WARM_UP_AT,
    WARM_UP_JOB,
    AuditEntry,
    Beat,
    Claim,
    DeadNode,
    Finish,
    Heartbeat,
    NodeInfo,
    RunRecord,
    Store,
    TriggerRequest,
    lost_message,
)
from jobfsm.store.control import KILL_PENDING, KillRequest, KillRequestNotFoundError, Pause

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite writer waits for another process's write transaction before giving up."""
PG_CONNECT_TIMEOUT_SECONDS = 10
_PG_MIGRATION_LOCK = 0x6A6F6266  # "jobf": the advisory lock key that serializes migrations
_DELETE_CHUNK = 500
_ID_CHUNK = 500
"""Ids per ``IN (…)`` list: under SQLite's old limit of 999 parameters per statement."""
_FIRE_TRIGGERS = (Trigger.SCHEDULE.value, Trigger.CATCH_UP.value)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime column that takes aware (or naive-UTC) datetimes and returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return utc(value) if value is not None else None


METADATA = MetaData()

meta = Table(
    "meta",
    METADATA,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

job_states = Table(
    "job_states",
    METADATA,
    Column("job", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

runs = Table(
    "runs",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("node", String(255), nullable=False),
    Column("scheduled_for", UTCDateTime, nullable=True),
    Column("attempt", Integer, nullable=False, default=0),
    Column("started_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("signal", Integer, nullable=True),
    Column("duration_seconds", Float, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("stdout_tail", Text, nullable=False, default=""),
    Column("stderr_tail", Text, nullable=False, default=""),
    Column("stdout_path", Text, nullable=True),
    Column("stderr_path", Text, nullable=True),
    Column("user", String(255), nullable=True),
    Column("exclusive", Boolean, nullable=False, default=False, server_default="0"),
    UniqueConstraint("job", "scheduled_for", "attempt", name="uq_runs_fire"),
    Index("ix_runs_job_started", "job", "started_at"),
    Index("ix_runs_status", "status"),
)
_ONE_RUNNING_WHERE = "status = 'running' AND exclusive"
# Overlap across nodes (``overlap: skip``/``queue``): at most one running exclusive run per job,
# enforced by this partial unique index, not by a read-then-write. A row lock on a per-job row
# would do too, but it needs a table of jobs kept in step with the files, a lock held for the
# whole batch, and a second statement; the index costs nothing on the claim (the same INSERT, whose
# ON CONFLICT DO NOTHING covers it) and also holds for writers that forget to take a lock.
Index(
    "uq_runs_one_running", runs.c.job, unique=True,
    postgresql_where=text(_ONE_RUNNING_WHERE), sqlite_where=text(_ONE_RUNNING_WHERE),
)

trigger_requests = Table(
    "trigger_requests",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("user", String(255), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(255), nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    Index("ix_trigger_requests_claimed_by", "claimed_by"),
)

audit = Table(
    "audit",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", UTCDateTime, nullable=False),
    Column("user", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("job", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("details", Text, nullable=False, default="{}"),
    Index("ix_audit_time", "time"),
)

heartbeats = Table(
    "heartbeats",
    METADATA,
    Column("node", String(255), primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("declared_dead_by", String(255), nullable=True),
    Column("declared_dead_at", UTCDateTime, nullable=True),
)

# Operational control (docs/operations-control.md). New tables need no migration step: opening
# a store creates every missing table after the migrations ran.
job_pauses = Table(
    "job_pauses",
    METADATA,
    Column("job", String(64), primary_key=True),
    Column("user", String(255), nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("until", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=False, default=""),
)

kill_requests = Table(
    "kill_requests",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("run_id", Integer, nullable=False),
    Column("node", String(255), nullable=False),
    Column("user", String(255), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("result", Text, nullable=False, default=""),
    Index("ix_kill_requests_node", "node", "claimed_at"),
)

_V1_TABLES = (job_states, runs, trigger_requests, audit, heartbeats)


def _migrate_0_to_1(conn: Connection) -> None:
    """The first schema: every table."""
    METADATA.create_all(conn, tables=list(_V1_TABLES), checkfirst=True)


def _migrate_cluster(conn: Connection) -> None:
    """Several hosts (DESIGN.md §4): ``runs.exclusive`` and the partial unique index on the
    running exclusive run of a job; who declared a node dead, and when. Idempotent (a store
    created at version 0 got the columns from the current tables already), written as plain
    DDL: it must not follow later changes of the table definitions above."""
    columns = {c["name"] for c in inspect(conn).get_columns("runs")}
    if "exclusive" not in columns:
        false = "false" if conn.dialect.name == "postgresql" else "0"
        conn.execute(text(f"ALTER TABLE runs ADD COLUMN exclusive BOOLEAN NOT NULL DEFAULT {false}"))
    conn.execute(text(f"CREATE UNIQUE INDEX IF NOT EXISTS uq_runs_one_running ON runs (job) WHERE {_ONE_RUNNING_WHERE}"))
    columns = {c["name"] for c in inspect(conn).get_columns("heartbeats")}
    stamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    for name, kind in (("declared_dead_by", "VARCHAR(255)"), ("declared_dead_at", stamp)):
        if name not in columns:
            conn.execute(text(f"ALTER TABLE heartbeats ADD COLUMN {name} {kind}"))


Migration = Callable[[Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_migrate_0_to_1, _migrate_cluster)
"""``MIGRATIONS[v]`` moves a store from schema version ``v`` to ``v + 1``."""
SCHEMA_VERSION_KEY = "schema_version"


# -- URLs and errors -------------------------------------------------------------------------

def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; everything else is left alone."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (also for URLs SQLAlchemy cannot parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _reason(exc: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's SQL dump and help link."""
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


class _Rehearsal(Exception):
    """Raised inside :meth:`SqlStore.warm_up`'s batch so that its transaction is rolled back."""


def _insert_for(dialect: str) -> Any:
    """The dialect's ``INSERT`` (with ``ON CONFLICT``). PostgreSQL's is imported only when used:
    with the asyncio and asyncpg modules it pulls in, it cost a SQLite daemon ~40 ms of start-up."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert
    return sqlite_insert


def _upsert(conn: Connection, table: Table, values: dict[str, Any], keys: Sequence[str]) -> None:
    """``INSERT … ON CONFLICT (keys) DO UPDATE`` every non-key column: atomic on both backends."""
    dialect_insert = _insert_for(conn.dialect.name)
    stmt: Any = dialect_insert(table).values(**values)
    set_ = {k: stmt.excluded[k] for k in values if k not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=set_))


# -- rows to records ---------------------------------------------------------------------------

def _run(row: Any) -> RunRecord:
    m = row._mapping
    return RunRecord(
        id=m["id"],
        job=m["job"],
        status=RunStatus(m["status"]),
        trigger=Trigger(m["trigger"]),
        node=m["node"],
        scheduled_for=m["scheduled_for"],
        attempt=m["attempt"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        exit_code=m["exit_code"],
        signal=m["signal"],
        duration_seconds=m["duration_seconds"],
        outcome=Outcome(m["outcome"]) if m["outcome"] else None,
        message=m["message"] or "",
        stdout_tail=m["stdout_tail"] or "",
        stderr_tail=m["stderr_tail"] or "",
        stdout_path=m["stdout_path"],
        stderr_path=m["stderr_path"],
        user=m["user"],
    )


def _request(row: Any) -> TriggerRequest:
    m = row._mapping
    return TriggerRequest(
        id=m["id"], job=m["job"], user=m["user"], requested_at=m["requested_at"],
        claimed_by=m["claimed_by"], claimed_at=m["claimed_at"], run_id=m["run_id"],
    )


def _audit(row: Any) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=m["id"], time=m["time"], user=m["user"], action=m["action"], job=m["job"],
        outcome=m["outcome"], details=json.loads(m["details"] or "{}"),
    )


def _heartbeat(row: Any) -> Heartbeat:
    m = row._mapping
    return Heartbeat(node=m["node"], pid=m["pid"], host=m["host"], started_at=m["started_at"],
                     last_seen=m["last_seen"])


_RUN_ORDER = (runs.c.started_at.desc().nulls_last(), runs.c.id.desc())
_newest = select(runs, func.row_number().over(partition_by=runs.c.job, order_by=_RUN_ORDER).label("rank")).subquery()
_LATEST_RUNS = select(*[_newest.c[c.name] for c in runs.c]).where(_newest.c.rank == 1)
_GET_STATE = select(job_states.c.state).where(job_states.c.job == bindparam("job_name"))
_FINISH_BEFORE = select(runs.c.status, runs.c.job).where(runs.c.id == bindparam("run_id"))
_LIVE_NODES = select(heartbeats).where(heartbeats.c.last_seen >= bindparam("oldest")).order_by(heartbeats.c.node)
_FINISH = update(runs).where(runs.c.id == bindparam("run_id")).returning(*runs.c)
"""The ``SET`` clause comes from the parameters' keys (every one but ``run_id``)."""
_FINISH_MANY = update(runs).where(runs.c.id == bindparam("run_id"))
"""``_FINISH`` for an executemany (no ``RETURNING``: sqlite3 cannot return rows from one)."""


@functools.lru_cache(maxsize=32)
def _list_runs_statement(filters: frozenset[str]) -> Any:
    """``list_runs``' statement for one set of filters, built once (its compiled form is then
    reused: the daemon asks for the running runs every few seconds, idle or not)."""
    stmt = select(runs).order_by(*_RUN_ORDER)
    if "job" in filters:
        stmt = stmt.where(runs.c.job == bindparam("job"))
    if "status" in filters:
        stmt = stmt.where(runs.c.status == bindparam("status"))
    if "since" in filters:
        stmt = stmt.where(runs.c.started_at >= bindparam("since", type_=UTCDateTime))
    if "until" in filters:
        stmt = stmt.where(runs.c.started_at <= bindparam("until", type_=UTCDateTime))
    if "limit" in filters:
        stmt = stmt.limit(bindparam("limit", type_=Integer))
    return stmt


def _warn_not_running(run_id: int, job: str, outcome: str, was: str) -> None:
    logger.warning(
        "run %s of job %r finished as %s but was %s; recording the real result", run_id, job, outcome, was
    )


def _finish_values(finish: Finish) -> dict[str, Any]:
    """The columns :meth:`SqlStore.finish_run` sets; ``message`` only when non-empty."""
    outcome = Outcome(finish.outcome)
    values: dict[str, Any] = {
        "status": outcome.run_status.value, "outcome": outcome.value, "ended_at": finish.ended_at,
        "exit_code": finish.exit_code, "signal": finish.signal, "duration_seconds": finish.duration_seconds,
        "stdout_tail": finish.stdout_tail, "stderr_tail": finish.stderr_tail,
        "stdout_path": finish.stdout_path, "stderr_path": finish.stderr_path,
    }
    if finish.message:
        values["message"] = finish.message
    return values


def _claim_values(claim: Claim) -> dict[str, Any]:
    """The row :meth:`SqlStore.claim_run` inserts (``scheduled_for`` in UTC: claims are matched
    to the rows that come back by it)."""
    return {
        "job": claim.job, "status": RunStatus(claim.status).value, "trigger": Trigger(claim.trigger).value,
        "node": claim.node, "scheduled_for": utc(claim.scheduled_for) if claim.scheduled_for is not None else None,
        "attempt": claim.attempt, "started_at": claim.started_at, "message": claim.message,
        "stdout_tail": "", "stderr_tail": "", "user": claim.user, "exclusive": claim.exclusive,
    }


def _already_claimed(job: str, scheduled_for: datetime | None, attempt: int) -> None:
    logger.debug("fire %r of job %r attempt %s already claimed", scheduled_for, job, attempt)


class _BatchState(threading.local):
    """The calling thread's batch: its connection (None outside a batch) and the state writes
    made inside it, one row per job (the last write wins), written when it commits."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.states: dict[str, dict[str, Any]] = {}


class SqlStore(Store):
    """The store in a SQL database: ``sqlite:///path/to/file.db`` or ``postgresql://…``."""

    migrations: tuple[Migration, ...] = MIGRATIONS
    """The migration steps this class applies (a subclass may extend them, e.g. in tests)."""

    def __init__(self, url: str, *, echo: bool = False, database_clock: Clock | None = None) -> None:
        self._database_clock = database_clock
        """Tests only: what stands in for the database's clock (several fake hosts on one
        server, each with its own skewed clock). Otherwise PostgreSQL's, or this host's on SQLite."""
        self.url = mask_url(url)
        """The URL with the password masked, for messages and logs."""
        self._batch = _BatchState()
        self._probe: Any = None
        self._probe_version: int | None = None
        self._probe_lock = threading.Lock()
        self._beat_lock = threading.Lock()
        self._beat_connection: Any = None
        self._beat_sql = ""
        self._beat_order: list[str] = []
        self._beat_bind: Callable[[Any], Any] = lambda value: value
        self._engine = self._make_engine(normalize_url(url), echo)
        self._is_sqlite = self._engine.dialect.name == "sqlite"
        self.spans_hosts = not self._is_sqlite
        in_memory = self._is_sqlite and self._engine.url.database in (None, "", ":memory:")
        self._write_lock: threading.Lock | None = threading.Lock() if self._is_sqlite else None
        self._read_lock = self._write_lock if in_memory else None
        self._failure = f"cannot open the store {self.url!r}"
        try:
            self._migrate()
        except StoreError:
            self._engine.dispose()
            raise
        except (SQLAlchemyError, OSError) as exc:
            self._engine.dispose()
            raise StoreUnavailableError(f"{self._failure}: {_reason(exc)}; {self._hint(exc)}") from exc
        self._failure = f"the store {self.url!r} failed"
        dialect_insert = _insert_for(self._engine.dialect.name)
        # A fire claimed by someone else inserts nothing and returns no row: no error, so a claim
        # can share a transaction with others (PostgreSQL aborts a transaction on any error).
        # No conflict target: the same DO NOTHING covers the fire's key and an exclusive job's
        # one running run (``uq_runs_one_running``).
        self._claim = dialect_insert(runs).on_conflict_do_nothing().returning(*runs.c)
        # What finish_runs looks up first. On PostgreSQL ``= ANY(array)`` is one parameter (an
        # expanding IN list of 256 ids costs ~12 µs per id there, ANY ~3.5); SQLite has no arrays.
        ids_match: ColumnElement[bool]
        if self._is_sqlite:
            ids_match = runs.c.id.in_(bindparam("ids", expanding=True))
        else:
            from sqlalchemy.dialects.postgresql import ARRAY

            ids_match = runs.c.id == any_(bindparam("ids", type_=ARRAY(Integer)))
        self._finish_before_many = select(runs.c.id, runs.c.status, runs.c.job).where(ids_match)
        beat = dialect_insert(heartbeats)  # built once: the daemon sends one every few seconds
        same_process = and_(heartbeats.c.pid == beat.excluded.pid, heartbeats.c.host == beat.excluded.host)
        self._heartbeat = beat.on_conflict_do_update(index_elements=["node"], set_={
            "pid": beat.excluded.pid, "host": beat.excluded.host, "last_seen": beat.excluded.last_seen,
            "started_at": case((same_process, heartbeats.c.started_at), else_=beat.excluded.started_at),
        })
        self._beat_cluster = beat.on_conflict_do_update(index_elements=["node"], set_={
            "pid": beat.excluded.pid, "host": beat.excluded.host, "last_seen": beat.excluded.last_seen,
            "started_at": case((same_process, heartbeats.c.started_at), else_=beat.excluded.started_at),
            "declared_dead_by": None, "declared_dead_at": None,
        })
        upsert = dialect_insert(job_states)
        self._set_state = upsert.on_conflict_do_update(
            index_elements=["job"], set_={"state": upsert.excluded.state, "updated_at": upsert.excluded.updated_at}
        )

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite store (None for PostgreSQL or an in-memory database)."""
        database = self._engine.url.database
        if not self._is_sqlite or not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def dedicated_connection(self) -> Any:
        """A DBAPI connection of its own, outside the pool (the daemon's ``LISTEN``); the caller
        closes it."""
        with self._errors():
            fairy = self._engine.raw_connection()
            fairy.detach()
            return fairy.dbapi_connection

    def __repr__(self) -> str:
        return f"SqlStore({self.url!r})"

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        with self._read() as conn:
            return self._version(conn) or 0

    # -- connection set-up ---------------------------------------------------------
    def _hint(self, exc: BaseException | None = None) -> str:
        if exc is not None and "locked" in _reason(exc):
            return ("another process held the database's write lock too long; "
                    "add ?timeout=SECONDS to the URL to wait longer")
        if self._is_sqlite:
            return "check that the file's folder can be created and written, or pass another --store"
        return ("check that the server is running and reachable from here and that the URL's "
                "host, port, user, password and database are right")

    def _make_engine(self, url: str, echo: bool) -> Engine:
        usage = "use sqlite:///path/to/file.db or postgresql://user:password@host:5432/dbname"
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number ("[::1")
            raise StoreError(f"cannot open the store {self.url!r}: not a database URL; {usage}") from exc
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise StoreError(f"cannot open the store {self.url!r}: unsupported database {backend!r}; {usage}")
        kwargs: dict[str, Any] = {"echo": echo}
        connect_args: dict[str, Any] = {}
        if backend == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                try:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                    # runs' output tails and audit details: the owner only (SQLite would make it
                    # 0644 less the umask; its -wal and -shm files copy this file's mode)
                    os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
                except OSError as exc:
                    raise StoreError(
                        f"cannot open the store {self.url!r}: cannot create the folder of "
                        f"{database!r} ({exc.strerror or exc}); choose a writable path with --store"
                    ) from exc
            connect_args["check_same_thread"] = False
            if "timeout" not in parsed.query:
                connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_SECONDS
            if not database or database == ":memory:":
                kwargs["poolclass"] = StaticPool
        else:
            if "connect_timeout" not in parsed.query:
                connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_SECONDS
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise StoreError(f"cannot open the store {self.url!r}: {_reason(exc)}; {usage}") from exc
        if backend == "sqlite":
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The store calls this thread makes inside share one write transaction (the daemon
        records a burst of fires or results at once: one commit instead of one per call)."""
        batch = self._batch
        if batch.conn is not None:
            yield
            return
        with self._write() as conn:
            batch.conn, batch.states = conn, {}
            try:
                yield
                if batch.states:  # in one order on every node: no deadlock between two
                    conn.execute(self._set_state, [batch.states[job] for job in sorted(batch.states)])
            finally:
                batch.conn, batch.states = None, {}

    def _in_batch(self) -> Connection | None:
        return self._batch.conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        conn = self._in_batch()
        if conn is not None:
            yield conn
            return
        with self._read_lock or nullcontext(), self._errors(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite); ``IntegrityError`` passes through."""
        conn = self._in_batch()
        if conn is not None:
            yield conn
            return
        with self._write_lock or nullcontext(), self._errors(), self._engine.connect() as conn:
            conn.execution_options(jobfsm_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Every failure of the database (a driver error, an exhausted pool, a dropped
        connection) becomes :class:`StoreUnavailableError`, which the daemon rides out."""
        try:
            yield
        except IntegrityError:
            raise
        except (DBAPIError, SQLAlchemyError) as exc:
            raise StoreUnavailableError(f"{self._failure}: {_reason(exc)}; {self._hint(exc)}") from exc

    def warm_up(self) -> None:
        """Run a fire's statements once in a transaction that is rolled back: SQLAlchemy
        compiles each statement on its first use, and without this the first run of the first
        burst after start-up began 3-4 ms later than the first run of the next one."""
        now, job, node = WARM_UP_AT, WARM_UP_JOB, "warm-up"
        try:
            with self.batch():
                run = self.claim_run(Claim(job, Trigger.SCHEDULE, node, now, now))
                [more] = self.claim_runs([Claim(job, Trigger.SCHEDULE, node, now, now + timedelta(minutes=1))])
                self.set_state(job, JobState.RUNNING, now)
                self.finish_runs([Finish(r.id, Outcome.SUCCEEDED, now, 0, 0.0) for r in (run, more) if r is not None])
                raise _Rehearsal
        except _Rehearsal:
            pass

    def close(self) -> None:
        with self._probe_lock:
            self._close_probe()
        with self._beat_lock:
            if self._beat_connection is not None:
                with contextlib.suppress(Exception):
                    self._beat_connection.close()
                self._beat_connection = None
        self._engine.dispose()

    # -- schema ----------------------------------------------------------------------
    @staticmethod
    def _version(conn: Connection) -> int | None:
        value = conn.execute(select(meta.c.value).where(meta.c.key == SCHEMA_VERSION_KEY)).scalar()
        return int(value) if value is not None else None

    def _migrate(self) -> None:
        target = len(self.migrations)
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
            meta.create(conn, checkfirst=True)
            found = self._version(conn)
            version = found or 0
            if version > target:
                raise StoreError(
                    f"the store {self.url!r} has schema version {version}, written by a newer "
                    f"jobfsm (this one knows versions up to {target}); upgrade jobfsm, or pass "
                    "another --store"
                )
            while version < target:
                logger.info("migrating store %s from schema version %s to %s", self.url, version, version + 1)
                self.migrations[version](conn)
                version += 1
            METADATA.create_all(conn, checkfirst=True)
            if found != version:
                _upsert(conn, meta, {"key": SCHEMA_VERSION_KEY, "value": str(version)}, ["key"])

    # -- job states ------------------------------------------------------------------
    def get_state(self, job: str) -> JobState | None:
        if self._in_batch() is not None and job in self._batch.states:
            return JobState(self._batch.states[job]["state"])
        with self._read() as conn:
            value = conn.execute(_GET_STATE, {"job_name": job}).scalar()
        return JobState(value) if value is not None else None

    def set_state(self, job: str, state: JobState, at: datetime) -> None:
        if self._in_batch() is not None:  # written in one statement when the batch commits
            self._batch.states[job] = {"job": job, "state": JobState(state).value, "updated_at": at}
            return
        with self._write() as conn:
            conn.execute(self._set_state, {"job": job, "state": JobState(state).value, "updated_at": at})

    def set_states(self, states: dict[str, JobState], at: datetime) -> None:
        if not states:
            return
        rows = [{"job": job, "state": JobState(state).value, "updated_at": at} for job, state in states.items()]
        with self._write() as conn:
            conn.execute(self._set_state, rows)

    def all_states(self) -> dict[str, JobState]:
        with self._read() as conn:
            rows = conn.execute(select(job_states.c.job, job_states.c.state)).all()
        states = {job: JobState(state) for job, state in rows}
        if self._in_batch() is not None:
            states.update((job, JobState(row["state"])) for job, row in self._batch.states.items())
        return states

    def delete_state(self, job: str) -> None:
        if self._in_batch() is not None:
            self._batch.states.pop(job, None)
        with self._write() as conn:
            conn.execute(delete(job_states).where(job_states.c.job == job))

    # -- runs --------------------------------------------------------------------------
    def claim_run(self, claim: Claim) -> RunRecord | None:
        try:
            with self._write() as conn:
                return self._claim_one(conn, claim)
        except IntegrityError as exc:
            raise StoreError(f"{self._failure}: cannot record a run of job {claim.job!r}: {_reason(exc)}") from exc

    def claim_runs(self, claims: Sequence[Claim]) -> list[RunRecord | None]:
        """The fires in one executemany of the claim's ``INSERT … ON CONFLICT DO NOTHING
        RETURNING``, which SQLAlchemy sends as multi-row INSERTs ("insertmanyvalues", up to 1000
        rows a statement). A manual claim among them (no key to match its row by) is sent alone,
        in its place, so that ids still follow the claims. A fire claimed twice in the call is
        sent once: the first claim wins.
        """
        claimed: list[RunRecord | None] = [None] * len(claims)
        seen: set[tuple[str, datetime, int]] = set()
        fires: dict[tuple[str, datetime, int], int] = {}  # the next executemany's, to their claim's index
        try:
            with self._write() as conn:
                for i, c in enumerate(claims):
                    if c.scheduled_for is None:
                        self._claim_fires(conn, claims, fires, claimed)
                        claimed[i] = self._claim_one(conn, c)
                        continue
                    fire = (c.job, utc(c.scheduled_for), c.attempt)
                    if fire in seen:
                        _already_claimed(*fire)
                    else:
                        seen.add(fire)
                        fires[fire] = i
                self._claim_fires(conn, claims, fires, claimed)
        except IntegrityError as exc:
            jobs = sorted({c.job for c in claims})
            raise StoreError(f"{self._failure}: cannot record runs of jobs {jobs!r}: {_reason(exc)}") from exc
        return claimed

    def _claim_one(self, conn: Connection, claim: Claim) -> RunRecord | None:
        row = conn.execute(self._claim, _claim_values(claim)).first()
        if row is None:
            _already_claimed(claim.job, claim.scheduled_for, claim.attempt)
            return None
        return _run(row)

    def _claim_fires(self, conn: Connection, claims: Sequence[Claim], fires: dict[tuple[str, datetime, int], int],
                     claimed: list[RunRecord | None]) -> None:
        """Claim ``fires`` in one executemany and empty it. A conflicting row returns nothing
        and neither backend promises the order of the rows it returns, so they are matched
        back to the claims by (job, scheduled_for in UTC, attempt)."""
        if not fires:
            return
        for row in conn.execute(self._claim, [_claim_values(claims[i]) for i in fires.values()]):
            i = fires.pop((row.job, row.scheduled_for, row.attempt), -1)
            if i < 0:  # raised inside the transaction, so that it rolls back
                raise StoreError(
                    f"{self._failure}: the run claimed for fire {row.scheduled_for!r} of job "
                    f"{row.job!r} attempt {row.attempt} matches none of the claims"
                )
            claimed[i] = _run(row)
        for fire in fires:
            _already_claimed(*fire)
        fires.clear()

    def start_queued_run(self, run_id: int, *, started_at: datetime) -> RunRecord | None:
        stmt = (
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RunStatus.SKIPPED.value)
            .values(status=RunStatus.RUNNING.value, started_at=started_at, message="")
            .returning(*runs.c)
        )
        with self._write() as conn:
            try:
                with conn.begin_nested():  # a savepoint: the index refusing it must not abort a batch
                    row = conn.execute(stmt).first()
            except IntegrityError:  # an exclusive run of its job is running (on another node)
                return None
        return _run(row) if row is not None else None

    def finish_run(self, finish: Finish) -> RunRecord:
        values = _finish_values(finish)
        with self._write() as conn:
            before = conn.execute(_FINISH_BEFORE, {"run_id": finish.run_id}).first()
            if before is None:
                raise RunNotFoundError(finish.run_id)
            if before.status != RunStatus.RUNNING.value:
                _warn_not_running(finish.run_id, before.job, values["outcome"], before.status)
            row = conn.execute(_FINISH, {"run_id": finish.run_id, **values}).one()
        return _run(row)

    def finish_runs(self, finishes: Sequence[Finish]) -> None:
        """One lookup of every run (for the warnings, and so an unknown id raises before
        anything is written), then one executemany ``UPDATE`` per set of columns (with and
        without ``message``): two statements for a chunk, three when only some set a message.

        A run finished twice in one call is written once, with what the calls in turn would
        have left: the last finish's fields and the last non-empty message.
        """
        if not finishes:
            return
        given = [(f.run_id, _finish_values(f)) for f in finishes]
        final: dict[int, dict[str, Any]] = {}
        for run_id, values in given:
            earlier = final.get(run_id)
            if earlier is not None and "message" in earlier and "message" not in values:
                values = {**values, "message": earlier["message"]}
            final[run_id] = values
        groups: dict[bool, list[dict[str, Any]]] = {}
        for run_id, values in final.items():
            groups.setdefault("message" in values, []).append({"run_id": run_id, **values})
        with self._write() as conn:
            found = self._run_statuses(conn, list(final))
            missing = next((run_id for run_id, _ in given if run_id not in found), None)
            if missing is not None:
                raise RunNotFoundError(missing)
            status = {run_id: was for run_id, (was, _) in found.items()}
            for run_id, values in given:
                if status[run_id] != RunStatus.RUNNING.value:
                    _warn_not_running(run_id, found[run_id][1], values["outcome"], status[run_id])
                status[run_id] = values["status"]
            updated = sum(conn.execute(_FINISH_MANY, rows).rowcount for rows in groups.values())
            if updated != len(final) and conn.dialect.supports_sane_multi_rowcount:
                # Deleted since the lookup, by another host's prune (of a run that was not
                # running). Raising rolls back the transaction (the whole batch, inside one).
                gone = sorted(set(final) - set(self._run_statuses(conn, list(final))))
                if gone:
                    raise RunNotFoundError(gone[0])
                raise StoreError(f"{self._failure}: {updated} of the {len(final)} runs being finished were updated")

    def _run_statuses(self, conn: Connection, ids: list[int]) -> dict[int, tuple[str, str]]:
        """``{id: (status, job)}`` of the runs among ``ids`` that exist."""
        found: dict[int, tuple[str, str]] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            for row in conn.execute(self._finish_before_many, {"ids": ids[start:start + _ID_CHUNK]}):
                found[row.id] = (row.status, row.job)
        return found

    def get_run(self, run_id: int) -> RunRecord:
        with self._read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise RunNotFoundError(run_id)
        return _run(row)

    def list_runs(
        self,
        job: str | None = None,
        *,
        status: RunStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        given = {"job": job, "status": RunStatus(status).value if status is not None else None,
                 "since": since, "until": until, "limit": max(limit, 0) if limit is not None else None}
        params = {k: v for k, v in given.items() if v is not None}
        with self._read() as conn:
            return [_run(row) for row in conn.execute(_list_runs_statement(frozenset(params)), params)]

    def latest_runs(self) -> dict[str, RunRecord]:
        with self._read() as conn:
            return {row.job: _run(row) for row in conn.execute(_LATEST_RUNS)}

    def last_fire(self, job: str) -> datetime | None:
        stmt = select(func.max(runs.c.scheduled_for)).where(
            runs.c.job == job, runs.c.trigger.in_(_FIRE_TRIGGERS)
        )
        with self._read() as conn:
            value = conn.execute(stmt).scalar()
        # func.max loses the column type on some backends: normalize here.
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return utc(value) if value is not None else None

    def last_fires(self) -> dict[str, datetime]:
        stmt = (select(runs.c.job, func.max(runs.c.scheduled_for))
                .where(runs.c.trigger.in_(_FIRE_TRIGGERS), runs.c.scheduled_for.is_not(None))
                .group_by(runs.c.job))
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        out = {}
        for job, value in rows:  # func.max loses the column type on some backends
            if isinstance(value, str):
                value = datetime.fromisoformat(value)
            out[job] = utc(value)
        return out

    def mark_lost(self, *, at: datetime, node: str | None = None, message: str) -> list[RunRecord]:
        stmt = (
            update(runs)
            .where(runs.c.status == RunStatus.RUNNING.value)
            .values(status=RunStatus.LOST.value, ended_at=at, message=message)
            .returning(*runs.c)
        )
        if node is not None:
            stmt = stmt.where(runs.c.node == node)
        with self._write() as conn:
            lost = [_run(row) for row in conn.execute(stmt)]
        return sorted(lost, key=lambda r: r.id)

    def prune_runs(self, *, now: datetime, keep_last: int, keep_days: float) -> list[RunRecord]:
        cutoff = utc(now) - timedelta(days=keep_days)
        rank = func.row_number().over(partition_by=runs.c.job, order_by=_RUN_ORDER).label("rank")
        ranked = (
            select(runs.c.id, runs.c.started_at, rank)
            .where(runs.c.status != RunStatus.RUNNING.value)
            .subquery()
        )
        doomed_ids = select(ranked.c.id).where(ranked.c.rank > max(keep_last, 0), ranked.c.started_at < cutoff)
        deleted: list[RunRecord] = []
        with self._write() as conn:
            ids = list(conn.execute(doomed_ids).scalars())
            for start in range(0, len(ids), _DELETE_CHUNK):
                chunk = ids[start:start + _DELETE_CHUNK]
                conn.execute(
                    update(trigger_requests).where(trigger_requests.c.run_id.in_(chunk)).values(run_id=None)
                )
                stmt = delete(runs).where(runs.c.id.in_(chunk)).returning(*runs.c)
                deleted.extend(_run(row) for row in conn.execute(stmt))
        if deleted:
            logger.info("pruned %s runs from store %s", len(deleted), self.url)
        return sorted(deleted, key=lambda r: r.id)

    # -- manual trigger requests -----------------------------------------------------------
    def request_trigger(self, job: str, *, user: str, at: datetime) -> TriggerRequest:
        stmt = insert(trigger_requests).values(job=job, user=user, requested_at=at).returning(*trigger_requests.c)
        batched = self._in_batch() is not None
        with self._write() as conn:
            request = _request(conn.execute(stmt).one())
        if not batched:  # after the commit, so that a daemon woken by it finds the request
            from jobfsm.store.bell import ring

            ring(self)
        return request

    def claim_trigger_requests(self, *, node: str, at: datetime) -> list[TriggerRequest]:
        if not self._database_changed():
            return []  # the daemon polls every second: an idle poll must cost next to nothing
        t = trigger_requests
        with self._read() as conn:  # the common case, nothing waiting, costs no write transaction
            if conn.execute(select(t.c.id).where(t.c.claimed_by.is_(None)).limit(1)).first() is None:
                return []
        unclaimed = select(t.c.id).where(t.c.claimed_by.is_(None)).with_for_update(skip_locked=True)
        stmt = (
            update(t)
            .where(t.c.id.in_(unclaimed), t.c.claimed_by.is_(None))
            .values(claimed_by=node, claimed_at=at)
            .returning(*t.c)
        )
        with self._write() as conn:
            claimed = [_request(row) for row in conn.execute(stmt)]
        return sorted(claimed, key=lambda r: r.id)

    def _database_changed(self) -> bool:
        """False only when certainly nothing was committed since the last call: on a SQLite
        file, ``PRAGMA data_version`` on a connection kept for this changes whenever another
        connection commits (a trigger request, a heartbeat). Always True elsewhere."""
        if not self._is_sqlite or self._read_lock is not None or self._in_batch() is not None:
            return True
        with self._probe_lock:
            try:
                if self._probe is None:
                    self._probe = self._engine.raw_connection()
                version = self._probe.cursor().execute("PRAGMA data_version").fetchone()[0]
            except Exception:  # the probe is an optimisation: on any trouble, just look
                self._close_probe()
                return True
            changed: bool = version != self._probe_version
            self._probe_version = version
            return changed

    def _close_probe(self) -> None:
        probe, self._probe, self._probe_version = self._probe, None, None
        if probe is not None:
            with contextlib.suppress(Exception):
                probe.close()

    def resolve_trigger_request(self, request_id: int, run_id: int) -> None:
        stmt = update(trigger_requests).where(trigger_requests.c.id == request_id).values(run_id=run_id)
        with self._write() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise TriggerRequestNotFoundError(request_id)

    def get_trigger_request(self, request_id: int) -> TriggerRequest:
        with self._read() as conn:
            row = conn.execute(select(trigger_requests).where(trigger_requests.c.id == request_id)).first()
        if row is None:
            raise TriggerRequestNotFoundError(request_id)
        return _request(row)

    # -- audit ---------------------------------------------------------------------------
    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        stmt = insert(audit).values(
            time=entry.time, user=entry.user, action=entry.action, job=entry.job,
            outcome=entry.outcome, details=json.dumps(entry.details, default=str, sort_keys=True),
        ).returning(*audit.c)
        with self._write() as conn:
            return _audit(conn.execute(stmt).one())

    def list_audit(
        self,
        *,
        user: str | None = None,
        job: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        stmt = select(audit).order_by(audit.c.time.desc(), audit.c.id.desc())
        if user is not None:
            stmt = stmt.where(audit.c.user == user)
        if job is not None:
            stmt = stmt.where(audit.c.job == job)
        if since is not None:
            stmt = stmt.where(audit.c.time >= since)
        if limit is not None:
            stmt = stmt.limit(max(limit, 0))
        with self._read() as conn:
            return [_audit(row) for row in conn.execute(stmt)]

    # -- node heartbeats -------------------------------------------------------------------
    def heartbeat(self, node: str, *, pid: int, host: str, at: datetime) -> None:
        values = {"node": node, "pid": pid, "host": host, "started_at": at, "last_seen": at,
                  "declared_dead_by": None, "declared_dead_at": None}
        if self._is_sqlite and self._read_lock is None and self._in_batch() is None:
            self._sqlite_heartbeat(values)
            return
        with self._write() as conn:
            conn.execute(self._heartbeat, values)

    def _sqlite_heartbeat(self, values: dict[str, Any]) -> None:
        """The same upsert on a connection of its own, without SQLAlchemy in between: an idle
        daemon's wake-ups are mostly heartbeats, and this costs a fifth of the pooled call."""
        with self._write_lock or nullcontext(), self._errors(), self._beat_lock:
            if self._beat_connection is None:
                self._beat_connection = self.dedicated_connection()
                _sqlite_on_connect(self._beat_connection, None)
                stmt = self._heartbeat.compile(dialect=self._engine.dialect)
                self._beat_sql = str(stmt)
                self._beat_order = list(stmt.positiontup or ())
                # The column type's own conversion, exactly as SQLAlchemy would bind it.
                processor = UTCDateTime().dialect_impl(self._engine.dialect).bind_processor(self._engine.dialect)
                self._beat_bind = processor if processor is not None else (lambda value: value)
            connection = self._beat_connection
            bind = self._beat_bind
            params = {**values, "started_at": bind(values["started_at"]), "last_seen": bind(values["last_seen"])}
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.execute(self._beat_sql, [params[k] for k in self._beat_order])
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
                self._beat_connection = None
                raise StoreUnavailableError(f"{self._failure}: {exc}; {self._hint(exc)}") from exc

    def remove_node(self, node: str) -> None:
        with self._write() as conn:
            conn.execute(delete(heartbeats).where(heartbeats.c.node == node))

    def live_nodes(self, *, now: datetime, max_age_seconds: float) -> list[Heartbeat]:
        oldest = utc(now) - timedelta(seconds=max_age_seconds)
        with self._read() as conn:
            return [_heartbeat(row) for row in conn.execute(_LIVE_NODES, {"oldest": oldest})]


    # -- operational control: pauses and kill requests ---------------------------------
    def set_pause(self, pause: Pause) -> None:
        values = {"job": pause.job, "user": pause.user, "since": pause.since, "until": pause.until,
                  "reason": pause.reason}
        batched = self._in_batch() is not None
        with self._write() as conn:
            _upsert(conn, job_pauses, values, ["job"])
        if not batched:
            self._ring()

    def clear_pause(self, job: str, *, until: datetime | None = None, only_expired: bool = False) -> Pause | None:
        stmt = delete(job_pauses).where(job_pauses.c.job == job).returning(*job_pauses.c)
        if only_expired:
            stmt = stmt.where(job_pauses.c.until == until if until is not None else job_pauses.c.until.is_(None))
        batched = self._in_batch() is not None
        with self._write() as conn:
            row = conn.execute(stmt).first()
        if row is not None and not batched:
            self._ring()
        return _pause(row) if row is not None else None

    def list_pauses(self) -> list[Pause]:
        with self._read() as conn:
            return [_pause(row) for row in conn.execute(select(job_pauses).order_by(job_pauses.c.job))]

    def request_kill(self, job: str, *, run_id: int, node: str, user: str, at: datetime) -> KillRequest:
        stmt = insert(kill_requests).values(
            job=job, run_id=run_id, node=node, user=user, requested_at=at, result=KILL_PENDING,
        ).returning(*kill_requests.c)
        batched = self._in_batch() is not None
        with self._write() as conn:
            request = _kill(conn.execute(stmt).one())
        if not batched:
            self._ring()
        return request

    def claim_kill_requests(self, *, node: str, at: datetime) -> list[KillRequest]:
        k = kill_requests
        mine = and_(k.c.node == node, k.c.claimed_at.is_(None))
        with self._read() as conn:  # nothing waiting, the common case, costs no write transaction
            if conn.execute(select(k.c.id).where(mine).limit(1)).first() is None:
                return []
        waiting = select(k.c.id).where(mine).with_for_update(skip_locked=True)
        stmt = update(k).where(k.c.id.in_(waiting), mine).values(claimed_at=at).returning(*k.c)
        with self._write() as conn:
            claimed = [_kill(row) for row in conn.execute(stmt)]
        return sorted(claimed, key=lambda r: r.id)

    def resolve_kill_request(self, request_id: int, result: str) -> None:
        stmt = update(kill_requests).where(kill_requests.c.id == request_id).values(result=result)
        with self._write() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise KillRequestNotFoundError(request_id)

    def get_kill_request(self, request_id: int) -> KillRequest:
        with self._read() as conn:
            row = conn.execute(select(kill_requests).where(kill_requests.c.id == request_id)).first()
        if row is None:
            raise KillRequestNotFoundError(request_id)
        return _kill(row)

    def _ring(self) -> None:
        from jobfsm.store.bell import ring

        ring(self)

    # -- several hosts ----------------------------------------------------------------------
    def running_exclusive(self, job: str) -> RunRecord | None:
        stmt = select(runs).where(runs.c.job == job, runs.c.status == RunStatus.RUNNING.value,
                                  runs.c.exclusive.is_(True))
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return _run(row) if row is not None else None

    def fire_claimed(self, job: str, scheduled_for: datetime, attempt: int = 0) -> RunRecord | None:
        stmt = select(runs).where(runs.c.job == job, runs.c.scheduled_for == bindparam("at", type_=UTCDateTime),
                                  runs.c.attempt == attempt)
        with self._read() as conn:
            row = conn.execute(stmt, {"at": scheduled_for}).first()
        return _run(row) if row is not None else None

    def claimed_fires(self, fires: Sequence[tuple[str, datetime, int]]) -> set[tuple[str, datetime, int]]:
        """One query per fire time and chunk of jobs (a burst is one time); filtered here."""
        wanted = {(job, utc(at), attempt) for job, at, attempt in fires}
        by_time: dict[datetime, set[str]] = {}
        for job, at, _ in wanted:
            by_time.setdefault(at, set()).add(job)
        found: set[tuple[str, datetime, int]] = set()
        stmt = select(runs.c.job, runs.c.scheduled_for, runs.c.attempt).where(
            runs.c.scheduled_for == bindparam("at", type_=UTCDateTime),
            runs.c.job.in_(bindparam("jobs", expanding=True)))
        with self._read() as conn:
            for at, jobs in by_time.items():
                names = sorted(jobs)
                for start in range(0, len(names), _ID_CHUNK):
                    for row in conn.execute(stmt, {"at": at, "jobs": names[start:start + _ID_CHUNK]}):
                        key = (row.job, row.scheduled_for, row.attempt)
                        if key in wanted:
                            found.add(key)
        return found

    def _now(self, conn: Connection, at: datetime | None) -> datetime:
        if self._database_clock is not None:
            return utc(self._database_clock.now())
        if self._is_sqlite:  # one host: its clock is the only one there is
            return utc(at) if at is not None else datetime.now(UTC)
        # clock_timestamp(), not now(): now() is the start of the transaction.
        return utc(conn.execute(select(func.clock_timestamp())).scalar_one())

    def database_now(self, at: datetime | None = None) -> datetime:
        with self._read() as conn:
            return self._now(conn, at)

    def beat(self, node: str, *, pid: int, host: str, at: datetime | None = None) -> Beat:
        with self._write() as conn:
            now = self._now(conn, at)
            old = conn.execute(
                select(heartbeats.c.declared_dead_by, heartbeats.c.declared_dead_at)
                .where(heartbeats.c.node == node).with_for_update()
            ).first()
            conn.execute(self._beat_cluster, {"node": node, "pid": pid, "host": host, "started_at": now,
                                              "last_seen": now, "declared_dead_by": None, "declared_dead_at": None})
        if old is not None and old.declared_dead_by is not None:
            return Beat(now, old.declared_dead_by, old.declared_dead_at)
        return Beat(now)

    def nodes(
        self, *, seen_within: float, dead_after: float = DEFAULT_DEAD_AFTER_SECONDS, at: datetime | None = None,
    ) -> list[NodeInfo]:
        with self._read() as conn:
            now = self._now(conn, at)
            rows = conn.execute(
                select(heartbeats).where(heartbeats.c.last_seen >= bindparam("oldest", type_=UTCDateTime))
                .order_by(heartbeats.c.node), {"oldest": now - timedelta(seconds=seen_within)},
            ).all()
            running: dict[str, list[int]] = {}
            for run_id, run_node in conn.execute(
                select(runs.c.id, runs.c.node).where(runs.c.status == RunStatus.RUNNING.value).order_by(runs.c.id)
            ):
                running.setdefault(run_node, []).append(run_id)
        alive_since = now - timedelta(seconds=dead_after)
        return [
            NodeInfo(
                node=r.node, host=r.host, pid=r.pid, started_at=r.started_at, last_heartbeat=r.last_seen,
                alive=r.last_seen >= alive_since and r.declared_dead_by is None,
                running=tuple(running.get(r.node, ())), declared_dead_by=r.declared_dead_by,
                declared_dead_at=r.declared_dead_at,
            )
            for r in rows
        ]

    def declare_dead(
        self, node: str, *, by: str, dead_after: float | None, found: str = "", note: str = "",
        at: datetime | None = None,
    ) -> DeadNode | None:
        with self._write() as conn:
            now = self._now(conn, at)
            row = conn.execute(
                select(heartbeats.c.last_seen, heartbeats.c.declared_dead_by)
                .where(heartbeats.c.node == node).with_for_update()
            ).first()
            last_seen = row.last_seen if row is not None else None
            if (dead_after is not None and last_seen is not None
                    and last_seen >= now - timedelta(seconds=dead_after)):
                return None  # it beat meanwhile
            message = lost_message(node, last_seen=last_seen, now=now, by=by, found=found, note=note)
            lost = [_run(r) for r in conn.execute(
                update(runs)
                .where(runs.c.status == RunStatus.RUNNING.value, runs.c.node == node)
                .values(status=RunStatus.LOST.value, ended_at=now, message=message)
                .returning(*runs.c)
            )]
            if row is not None and row.declared_dead_by is None:
                conn.execute(update(heartbeats).where(heartbeats.c.node == node)
                             .values(declared_dead_by=by, declared_dead_at=now))
        return DeadNode(node, last_seen, now, tuple(sorted(lost, key=lambda r: r.id)))




def _pause(row: Any) -> Pause:
    m = row._mapping
    return Pause(job=m["job"], user=m["user"], since=m["since"], until=m["until"], reason=m["reason"] or "")


def _kill(row: Any) -> KillRequest:
    m = row._mapping
    return KillRequest(
        id=m["id"], job=m["job"], run_id=m["run_id"], node=m["node"], user=m["user"],
        requested_at=m["requested_at"], claimed_at=m["claimed_at"], result=m["result"] or KILL_PENDING,
    )


# -- SQLite connection hooks ------------------------------------------------------------------

def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Take transaction control away from sqlite3 and set the pragmas every connection needs."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout itself comes from sqlite3's ``timeout`` (a URL's ?timeout= wins).
        cursor.execute("PRAGMA foreign_keys = ON")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode and str(mode[0]).lower() not in ("wal", "memory"):
            logger.warning("SQLite could not switch to WAL mode (got %r); writers will block readers", mode[0])
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Emit our own BEGIN: IMMEDIATE for writes, so the write lock is waited for up front."""
    write = conn.get_execution_options().get("jobfsm_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


__all__ = ["METADATA", "MIGRATIONS", "SqlStore", "UTCDateTime", "mask_url", "normalize_url"]
