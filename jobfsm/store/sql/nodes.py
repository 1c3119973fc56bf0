"""Nodes in the SQL store: heartbeats, the database's clock, and declaring a node dead.

Several hosts (docs/cluster.md) agree on one clock, PostgreSQL's: a beat is stamped with it and
a node's age is measured by it. A SQLite file lives on one host, whose clock is the only one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable
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
from jobfsm.store.sql.direct import DirectSqlite
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
        # The same upsert, returning who had declared the node dead: it leaves those columns as
        # they were, so one statement both beats and tells (they are cleared only when set).
        self._beat = self._heartbeat.returning(heartbeats.c.declared_dead_by, heartbeats.c.declared_dead_at)
        self._direct = (DirectSqlite(self.dedicated_connection, self._engine.dialect,
                                     {"heartbeat": self._heartbeat, "beat": self._beat})
                        if self._is_sqlite and self._read_lock is None else None)
        """SQLite files: beats without SQLAlchemy (not ``sqlite://``, whose one connection is shared)."""

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        super().close()

    def change_mark(self) -> Hashable | None:
        """On a SQLite file, the direct connection's data version: the beats it sends itself do
        not change it, every other commit does (this process's other calls, other processes)."""
        if self._direct is None:
            return None
        try:
            return self._direct.data_version()
        except sqlite3.Error:  # only an optimisation: on any trouble, the caller looks
            return None

    def heartbeat(self, node: str, *, pid: int, host: str, at: datetime) -> None:
        values = _beat_values(node, pid, host, at)
        if self._direct is not None and self._in_batch() is None:
            self._direct_write(self._direct, "heartbeat", values)
            return
        with self._write() as conn:
            conn.execute(self._heartbeat, values)

    def beat(self, node: str, *, pid: int, host: str, at: datetime | None = None) -> Beat:
        now = self._clock_here(at)
        if self._direct is not None and now is not None and self._in_batch() is None:
            [(by, when)] = self._direct_write(self._direct, "beat", _beat_values(node, pid, host, now))
            when = self._direct.read_time(when)
            if by is not None:
                with self._write() as conn:
                    _forget_death(conn, node, when)
            return Beat(now, by, when)
        with self._write() as conn:
            now = self._now(conn, at)
            by, when = conn.execute(self._beat, _beat_values(node, pid, host, now)).one()
            if by is not None:
                _forget_death(conn, node, when)
        return Beat(now, by, when)

    def _direct_write(self, direct: DirectSqlite, name: str, values: dict[str, Any]) -> list[Any]:
        """One statement on the direct connection, in turn with this process's other writers."""
        params = {**values, "started_at": direct.bind_time(values["started_at"]),
                  "last_seen": direct.bind_time(values["last_seen"])}
        with self._write_lock or nullcontext(), self._errors():
            try:
                return direct.execute(name, params)
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"{self._failure}: {exc}; {self._hint(exc)}") from exc

    def remove_node(self, node: str) -> None:
        with self._write() as conn:
            conn.execute(delete(heartbeats).where(heartbeats.c.node == node))

    def live_nodes(self, *, now: datetime, max_age_seconds: float) -> list[Heartbeat]:
        oldest = utc(now) - timedelta(seconds=max_age_seconds)
        with self._read() as conn:
            return [heartbeat_record(row) for row in conn.execute(_LIVE_NODES, {"oldest": oldest})]

    def _clock_here(self, at: datetime | None) -> datetime | None:
        """The time of a store with no clock of its own (None: ask the database)."""
        if self._database_clock is not None:
            return utc(self._database_clock.now())
        if self._is_sqlite:  # one host: its clock is the only one there is
            return utc(at) if at is not None else datetime.now(UTC)
        return None

    def _now(self, conn: Connection, at: datetime | None) -> datetime:
        here = self._clock_here(at)
        if here is not None:
            return here
        # clock_timestamp(), not now(): now() is the start of the transaction.
        return utc(conn.execute(select(func.clock_timestamp())).scalar_one())

    def database_now(self, at: datetime | None = None) -> datetime:
        with self._read() as conn:
            return self._now(conn, at)

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


def _beat_values(node: str, pid: int, host: str, at: datetime) -> dict[str, Any]:
    return {"node": node, "pid": pid, "host": host, "started_at": at, "last_seen": at,
            "declared_dead_by": None, "declared_dead_at": None}


def _forget_death(conn: Connection, node: str, declared_at: datetime | None) -> None:
    """The node beat after it was declared dead (at ``declared_at``): it is alive again."""
    same = (heartbeats.c.declared_dead_at == bindparam("at", declared_at, type_=UTCDateTime)
            if declared_at is not None else heartbeats.c.declared_dead_at.is_(None))
    conn.execute(update(heartbeats).where(heartbeats.c.node == node, same)
                 .values(declared_dead_by=None, declared_dead_at=None))
