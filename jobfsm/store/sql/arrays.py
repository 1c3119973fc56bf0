"""PostgreSQL's statements for a burst: a chunk of claims, finishes or fire look-ups is one
statement over arrays (``unnest``), one parameter per column.

The statement text never changes, so psycopg parses it once; the multi-row ``INSERT`` of 256
claims that SQLAlchemy's "insertmanyvalues" sends is a new text of 3,000 parameters each time,
and parsing it cost more than the database's own work (``bench/bench_cluster.py throughput``).
SQLite has no arrays: it keeps the executemany statements of :mod:`jobfsm.store.sql.runs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, text

from jobfsm.clock import utc
from jobfsm.store.sql.tables import runs


def _q(name: str) -> str:
    return f'"{name}"'  # "user" and "trigger" are reserved words


def _unnest(columns: Sequence[tuple[str, str]], alias: str) -> str:
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns)
    return f"unnest({arrays}) AS {alias}({', '.join(_q(name) for name, _ in columns)})"


_RUN_COLUMNS = ", ".join(f"runs.{_q(c.name)}" for c in runs.c)

CLAIM_COLUMNS = (
    ("job", "text"), ("status", "text"), ("trigger", "text"), ("node", "text"),
    ("scheduled_for", "timestamptz"), ("attempt", "int"), ("started_at", "timestamptz"),
    ("message", "text"), ("user", "text"), ("exclusive", "boolean"),
)
_CLAIM = text(
    f"INSERT INTO runs ({', '.join(_q(n) for n, _ in CLAIM_COLUMNS)}, stdout_tail, stderr_tail) "
    f"SELECT {', '.join(f'c.{_q(n)}' for n, _ in CLAIM_COLUMNS)}, '', '' FROM {_unnest(CLAIM_COLUMNS, 'c')} "
    f"ON CONFLICT DO NOTHING RETURNING {_RUN_COLUMNS}"
).columns(*runs.c)
"""A fire claimed by someone else inserts nothing and returns no row (no conflict target: the
same DO NOTHING covers the fire's key and an exclusive job's one running run)."""

FINISH_COLUMNS = (
    ("run_id", "int"), ("status", "text"), ("outcome", "text"), ("ended_at", "timestamptz"),
    ("exit_code", "int"), ("signal", "int"), ("duration_seconds", "float8"), ("stdout_tail", "text"),
    ("stderr_tail", "text"), ("stdout_path", "text"), ("stderr_path", "text"), ("message", "text"),
)
_FINISH = text(
    f"WITH f AS (SELECT * FROM {_unnest(FINISH_COLUMNS, 'f')}), "
    # the status before, locked so that it is still the one replaced
    "was AS (SELECT runs.id, runs.status, runs.job FROM runs JOIN f ON runs.id = f.run_id FOR UPDATE OF runs) "
    "UPDATE runs SET "
    + ", ".join(f"{_q(n)} = f.{_q(n)}" for n, _ in FINISH_COLUMNS if n not in ("run_id", "message"))
    + ", message = COALESCE(f.message, runs.message) "  # NULL: the finish says nothing new
    "FROM f JOIN was ON was.id = f.run_id WHERE runs.id = f.run_id RETURNING runs.id, was.status, was.job"
)

_CLAIMED = text(
    "SELECT runs.job, runs.scheduled_for, runs.attempt FROM runs "
    f"JOIN {_unnest((('job', 'text'), ('scheduled_for', 'timestamptz'), ('attempt', 'int')), 'w')} "
    "ON runs.job = w.job AND runs.scheduled_for = w.scheduled_for AND runs.attempt = w.attempt"
).columns(runs.c.job, runs.c.scheduled_for, runs.c.attempt)


def _columns(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> dict[str, list[Any]]:
    """One list per column; times in UTC (an array takes one offset for all its elements)."""
    return {name: [_utc(row[name]) for row in rows] if kind == "timestamptz" else [row[name] for row in rows]
            for name, kind in columns}


def _utc(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def claim(conn: Connection, rows: Sequence[dict[str, Any]]) -> Sequence[Row[Any]]:
    """Insert the claims' rows (each as :func:`jobfsm.store.sql.runs` builds it); the rows of
    those inserted, in no promised order."""
    return conn.execute(_CLAIM, _columns(rows, CLAIM_COLUMNS)).all()


def finish(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[int, tuple[str, str]]:
    """Update each run ``row["run_id"]`` with the row's columns (``message`` None or absent:
    kept); ``{id: (status before, job)}`` of the runs updated (an unknown id is not among them)."""
    params = _columns([{"message": None, **row} for row in rows], FINISH_COLUMNS)
    return {row.id: (row.status, row.job) for row in conn.execute(_FINISH, params)}


def claimed(conn: Connection, fires: Sequence[tuple[str, datetime, int]]) -> set[tuple[str, datetime, int]]:
    """The fires among ``fires`` (job, scheduled_for in UTC, attempt) that have a run."""
    params = {"job": [f[0] for f in fires], "scheduled_for": [utc(f[1]) for f in fires], "attempt": [f[2] for f in fires]}
    return {(row.job, row.scheduled_for, row.attempt) for row in conn.execute(_CLAIMED, params)}
