"""PostgreSQL's statements for a burst: a chunk of claims, finishes or fire look-ups is one
statement over one JSON parameter (``json_to_recordset``), one object per row.

The statement text never changes, so psycopg parses it once (the multi-row ``INSERT`` of 256
claims that SQLAlchemy's "insertmanyvalues" sends is a new text of 3,000 parameters each time).
One JSON text, written by the json module in C, costs the client half of what one array per
column did: psycopg dumps an array element by element in Python (``bench/bench_cluster.py
throughput``). SQLite keeps the executemany statements of :mod:`jobfsm.store.sql.runs`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, text

from jobfsm.clock import utc
from jobfsm.store.sql.tables import runs


def _q(name: str) -> str:
    return f'"{name}"'  # "user" and "trigger" are reserved words


def _recordset(columns: Sequence[tuple[str, str]], alias: str) -> str:
    return f"json_to_recordset(CAST(:rows AS json)) AS {alias}({', '.join(f'{_q(n)} {k}' for n, k in columns)})"


_RUN_COLUMNS = ", ".join(f"runs.{_q(c.name)}" for c in runs.c)

CLAIM_COLUMNS = (
    ("job", "text"), ("status", "text"), ("trigger", "text"), ("node", "text"),
    ("scheduled_for", "timestamptz"), ("attempt", "int"), ("started_at", "timestamptz"),
    ("message", "text"), ("user", "text"), ("exclusive", "boolean"),
)
_CLAIM = text(
    f"INSERT INTO runs ({', '.join(_q(n) for n, _ in CLAIM_COLUMNS)}, stdout_tail, stderr_tail) "
    f"SELECT {', '.join(f'c.{_q(n)}' for n, _ in CLAIM_COLUMNS)}, '', '' FROM {_recordset(CLAIM_COLUMNS, 'c')} "
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
    f"WITH f AS (SELECT * FROM {_recordset(FINISH_COLUMNS, 'f')}), "
    # the status before, locked so that it is still the one replaced
    "was AS (SELECT runs.id, runs.status, runs.job FROM runs JOIN f ON runs.id = f.run_id FOR UPDATE OF runs) "
    "UPDATE runs SET "
    + ", ".join(f"{_q(n)} = f.{_q(n)}" for n, _ in FINISH_COLUMNS if n not in ("run_id", "message"))
    + ", message = COALESCE(f.message, runs.message) "  # NULL: the finish says nothing new
    "FROM f JOIN was ON was.id = f.run_id WHERE runs.id = f.run_id RETURNING runs.id, was.status, was.job"
)

_FIRE_COLUMNS = (("job", "text"), ("scheduled_for", "timestamptz"), ("attempt", "int"))
_CLAIMED = text(
    f"SELECT runs.job, runs.scheduled_for, runs.attempt FROM runs JOIN {_recordset(_FIRE_COLUMNS, 'w')} "
    "ON runs.job = w.job AND runs.scheduled_for = w.scheduled_for AND runs.attempt = w.attempt"
).columns(runs.c.job, runs.c.scheduled_for, runs.c.attempt)


def _rows(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The parameter of :func:`_recordset`: the rows' ``columns`` as one JSON array of objects."""
    names = [name for name, _ in columns]
    return {"rows": json.dumps([{name: row[name] for name in names} for row in rows], default=_iso)}


def _iso(value: datetime) -> str:
    return utc(value).isoformat()  # with its offset: PostgreSQL reads it as that instant


def claim(conn: Connection, rows: Sequence[dict[str, Any]]) -> Sequence[Row[Any]]:
    """Insert the claims' rows (each as :func:`jobfsm.store.sql.runs` builds it); the rows of
    those inserted, in no promised order."""
    return conn.execute(_CLAIM, _rows(rows, CLAIM_COLUMNS)).all()


def finish(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[int, tuple[str, str]]:
    """Update each run ``row["run_id"]`` with the row's columns (``message`` None or absent:
    kept); ``{id: (status before, job)}`` of the runs updated (an unknown id is not among them)."""
    params = _rows([{"message": None, **row} for row in rows], FINISH_COLUMNS)
    return {row.id: (row.status, row.job) for row in conn.execute(_FINISH, params)}


def claimed(conn: Connection, fires: Sequence[tuple[str, datetime, int]]) -> set[tuple[str, datetime, int]]:
    """The fires among ``fires`` (job, scheduled_for in UTC, attempt) that have a run."""
    params = {"rows": json.dumps([{"job": j, "scheduled_for": _iso(s), "attempt": a} for j, s, a in fires])}
    return {(row.job, row.scheduled_for, row.attempt) for row in conn.execute(_CLAIMED, params)}
