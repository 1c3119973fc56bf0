"""The SQL store's tables, as SQLAlchemy Core ``Table`` objects shared by both backends.

Times are aware UTC everywhere: :class:`UTCDateTime` stores naive UTC on SQLite (which has no
time zone type; the fixed-width text SQLAlchemy writes sorts chronologically) and
``timestamptz`` on PostgreSQL, and always returns aware UTC datetimes. A new table needs no
migration step: opening a store creates every missing table after the migrations ran.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
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
    text,
)

from jobfsm.clock import utc


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
ONE_RUNNING_WHERE = "status = 'running' AND exclusive"
# Overlap across nodes (``overlap: skip``/``queue``): at most one running exclusive run per job,
# enforced by this partial unique index, not by a read-then-write. A row lock on a per-job row
# would do too, but it needs a table of jobs kept in step with the files, a lock held for the
# whole batch, and a second statement; the index costs nothing on the claim (the same INSERT, whose
# ON CONFLICT DO NOTHING covers it) and also holds for writers that forget to take a lock.
Index(
    "uq_runs_one_running", runs.c.job, unique=True,
    postgresql_where=text(ONE_RUNNING_WHERE), sqlite_where=text(ONE_RUNNING_WHERE),
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

# Operational control (docs/operations-control.md).
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
