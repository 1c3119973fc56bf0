"""The versioned schema: ``meta`` holds the version; ``MIGRATIONS[v]`` moves a store from
version ``v`` to ``v + 1`` (version 0 is an empty database, version 1 the first schema).

Opening a store runs the missing steps in one write transaction (under an advisory lock on
PostgreSQL, so two daemons starting together do not race), then creates any missing table. A
store written by a newer jobfsm is refused. A migration must not use the live table definitions
of :mod:`jobfsm.store.sql.tables` for the tables it changes: they follow later versions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, func, inspect, select, text

from jobfsm.errors import StoreError
from jobfsm.store.sql.engine import upsert
from jobfsm.store.sql.tables import (
    METADATA,
    ONE_RUNNING_WHERE,
    audit,
    heartbeats,
    job_states,
    meta,
    runs,
    trigger_requests,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION_KEY = "schema_version"
_PG_MIGRATION_LOCK = 0x6A6F6266  # "jobf": the advisory lock key that serializes migrations
_V1_TABLES = (job_states, runs, trigger_requests, audit, heartbeats)


def _migrate_0_to_1(conn: Connection) -> None:
    """The first schema: every table."""
    METADATA.create_all(conn, tables=list(_V1_TABLES), checkfirst=True)


def _migrate_cluster(conn: Connection) -> None:
    """Several hosts (docs/cluster.md): ``runs.exclusive`` and the partial unique index on the
    running exclusive run of a job; who declared a node dead, and when. Idempotent (a store
    created at version 0 got the columns from the current tables already), written as plain
    DDL: it must not follow later changes of the table definitions."""
    columns = {c["name"] for c in inspect(conn).get_columns("runs")}
    if "exclusive" not in columns:
        false = "false" if conn.dialect.name == "postgresql" else "0"
        conn.execute(text(f"ALTER TABLE runs ADD COLUMN exclusive BOOLEAN NOT NULL DEFAULT {false}"))
    conn.execute(text(f"CREATE UNIQUE INDEX IF NOT EXISTS uq_runs_one_running ON runs (job) WHERE {ONE_RUNNING_WHERE}"))
    columns = {c["name"] for c in inspect(conn).get_columns("heartbeats")}
    stamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    for name, kind in (("declared_dead_by", "VARCHAR(255)"), ("declared_dead_at", stamp)):
        if name not in columns:
            conn.execute(text(f"ALTER TABLE heartbeats ADD COLUMN {name} {kind}"))


Migration = Callable[[Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_migrate_0_to_1, _migrate_cluster)
"""``MIGRATIONS[v]`` moves a store from schema version ``v`` to ``v + 1``."""


def schema_version(conn: Connection) -> int | None:
    """The version recorded in ``meta`` (None: none is)."""
    value = conn.execute(select(meta.c.value).where(meta.c.key == SCHEMA_VERSION_KEY)).scalar()
    return int(value) if value is not None else None


def migrate(conn: Connection, steps: Sequence[Migration], url: str) -> None:
    """Bring the store on ``conn`` (a write transaction) to version ``len(steps)``."""
    target = len(steps)
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
    meta.create(conn, checkfirst=True)
    found = schema_version(conn)
    version = found or 0
    if version > target:
        raise StoreError(
            f"the store {url!r} has schema version {version}, written by a newer "
            f"jobfsm (this one knows versions up to {target}); upgrade jobfsm, or pass "
            "another --store"
        )
    while version < target:
        logger.info("migrating store %s from schema version %s to %s", url, version, version + 1)
        steps[version](conn)
        version += 1
    METADATA.create_all(conn, checkfirst=True)
    if found != version:
        upsert(conn, meta, {"key": SCHEMA_VERSION_KEY, "value": str(version)}, ["key"])
