"""Nodes in the SQL store: heartbeats, the database's clock, and declaring a node dead.

Several hosts (docs/cluster.md) agree on one clock, PostgreSQL's: a beat is stamped with it and
a node's age is measured by it. A SQLite file lives on one host, whose clock is the only one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, delete, func, select, update

from jobfsm.clock import utc
from jobfsm.errors import StoreUnavailableError
from jobfsm.model import RunStatus
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS
from jobfsm.store.abc import Beat, DeadNode, Heartbeat, NodeInfo, lost_message
from jobfsm.store.sql.core import SqlCore
from jobfsm.store.sql.engine import sqlite_on_connect
from jobfsm.store.sql.rows import heartbeat_record, run_record
from jobfsm.store.sql.tables import UTCDateTime, heartbeats, runs

_LIVE_NODES = select(heartbeats).where(heartbeats.c.last_seen >= bindparam("oldest")).order_by(heartbeats.c.node)


class SqlNodes(SqlCore):
    def _prepare(self) -> None:
        super()._prepare()
        beat = self._insert(heartbeats)  # built once: the daemon sends one every few seconds
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
        self._beat_lock = threading.Lock()
        self._beat_connection: Any = None
        self._beat_sql = ""
        self._beat_order: list[str] = []
        self._beat_bind: Callable[[Any], Any] = lambda value: value

    def close(self) -> None:
        with self._beat_lock:
            if self._beat_connection is not None:
                with contextlib.suppress(Exception):
                    self._beat_connection.close()
                self._beat_connection = None
        super().close()

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
                sqlite_on_connect(self._beat_connection, None)
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
            return [heartbeat_record(row) for row in conn.execute(_LIVE_NODES, {"oldest": oldest})]

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
            lost = [run_record(r) for r in conn.execute(
                update(runs)
                .where(runs.c.status == RunStatus.RUNNING.value, runs.c.node == node)
                .values(status=RunStatus.LOST.value, ended_at=now, message=message)
                .returning(*runs.c)
            )]
            if row is not None and row.declared_dead_by is None:
                conn.execute(update(heartbeats).where(heartbeats.c.node == node)
                             .values(declared_dead_by=by, declared_dead_at=now))
        return DeadNode(node, last_seen, now, tuple(sorted(lost, key=lambda r: r.id)))
