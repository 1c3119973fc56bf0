"""The audit trail in the SQL store (``details`` as JSON text)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import insert, select

from jobfsm.store.abc import AuditEntry
from jobfsm.store.sql.core import SqlCore
from jobfsm.store.sql.rows import audit_record
from jobfsm.store.sql.tables import audit


class SqlAudit(SqlCore):
    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        stmt = insert(audit).values(
            time=entry.time, user=entry.user, action=entry.action, job=entry.job,
            outcome=entry.outcome, details=json.dumps(entry.details, default=str, sort_keys=True),
        ).returning(*audit.c)
        with self._write() as conn:
            return audit_record(conn.execute(stmt).one())

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
            return [audit_record(row) for row in conn.execute(stmt)]
