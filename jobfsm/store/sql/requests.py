"""What people ask of the daemons through the SQL store: trigger requests, kill requests and
pauses. Each request goes to exactly one node: taking requests is one ``UPDATE … WHERE claimed_by
IS NULL … RETURNING`` over ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite ignores
the locking clause, and its write lock serializes it). A write a daemon must notice at once
rings the bell (:mod:`jobfsm.store.bell`) after it commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, insert, select, update

from jobfsm.errors import TriggerRequestNotFoundError
from jobfsm.store.abc import Changes, TriggerRequest
from jobfsm.store.control import KILL_PENDING, KillRequest, KillRequestNotFoundError, Pause
from jobfsm.store.sql.core import SqlCore
from jobfsm.store.sql.engine import upsert
from jobfsm.store.sql.rows import kill_record, pause_record, request_record
from jobfsm.store.sql.tables import job_pauses, kill_requests, trigger_requests


class SqlRequests(SqlCore):
    def _prepare(self) -> None:
        super()._prepare()
        self._request_changes = Changes(self)

    # -- manual trigger requests -----------------------------------------------------------
    def request_trigger(self, job: str, *, user: str, at: datetime) -> TriggerRequest:
        stmt = insert(trigger_requests).values(job=job, user=user, requested_at=at).returning(*trigger_requests.c)
        batched = self._in_batch() is not None
        with self._write() as conn:
            request = request_record(conn.execute(stmt).one())
        if not batched:  # after the commit, so that a daemon woken by it finds the request
            self._ring()
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
            claimed = [request_record(row) for row in conn.execute(stmt)]
        return sorted(claimed, key=lambda r: r.id)

    def _database_changed(self) -> bool:
        """False only when certainly nothing was committed since the last call (by
        :meth:`change_mark`); always True where the store cannot tell."""
        return self._in_batch() is not None or self._request_changes.look()

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
        return request_record(row)

    # -- pauses and kill requests (docs/operations-control.md) ----------------------------
    def set_pause(self, pause: Pause) -> None:
        values = {"job": pause.job, "user": pause.user, "since": pause.since, "until": pause.until,
                  "reason": pause.reason}
        batched = self._in_batch() is not None
        with self._write() as conn:
            upsert(conn, job_pauses, values, ["job"])
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
        return pause_record(row) if row is not None else None

    def list_pauses(self) -> list[Pause]:
        with self._read() as conn:
            return [pause_record(row) for row in conn.execute(select(job_pauses).order_by(job_pauses.c.job))]

    def request_kill(self, job: str, *, run_id: int, node: str, user: str, at: datetime) -> KillRequest:
        stmt = insert(kill_requests).values(
            job=job, run_id=run_id, node=node, user=user, requested_at=at, result=KILL_PENDING,
        ).returning(*kill_requests.c)
        batched = self._in_batch() is not None
        with self._write() as conn:
            request = kill_record(conn.execute(stmt).one())
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
            claimed = [kill_record(row) for row in conn.execute(stmt)]
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
        return kill_record(row)

    def _ring(self) -> None:
        from jobfsm.store.bell import ring

        ring(self)
