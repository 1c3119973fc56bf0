"""Runs in the SQL store: claims, finishes, history, retention.

- **Claims are atomic across processes.** A claim is ``INSERT … ON CONFLICT DO NOTHING
  RETURNING`` guarded by ``UNIQUE (job, scheduled_for, attempt)`` and, for an exclusive job,
  the partial unique index on its one running run: a fire another node got first inserts
  nothing and the claim returns ``None``. It raises nothing, so it can share a transaction with
  other calls (:meth:`SqlCore.batch`; PostgreSQL aborts a whole transaction on a unique-key
  error). Manual runs have ``scheduled_for`` NULL, and both backends treat NULLs in a unique
  key as distinct, so they never conflict.
- **A burst is recorded a chunk at a time.** ``claim_runs`` is one statement: on PostgreSQL
  over one JSON parameter (:mod:`jobfsm.store.sql.bulk`), on SQLite an executemany that SQLAlchemy's
  "insertmanyvalues" sends as one multi-row ``INSERT`` per 1000 rows; ``finish_runs`` looks
  every run up first (finish_run's warnings, and an unknown id raises before anything is
  written), then updates them in one statement (PostgreSQL) or an executemany per set of
  columns (SQLite), whose rowcount is checked (``bench/bench_store.py``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    any_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobfsm.clock import utc
from jobfsm.errors import RunNotFoundError, StoreError
from jobfsm.model import Outcome, RunStatus, Trigger
from jobfsm.store.abc import Claim, Finish, RunRecord
from jobfsm.store.sql import bulk
from jobfsm.store.sql.core import SqlCore
from jobfsm.store.sql.engine import reason
from jobfsm.store.sql.rows import run_record
from jobfsm.store.sql.tables import UTCDateTime, runs, trigger_requests

logger = logging.getLogger(__name__)

_DELETE_CHUNK = 500
_ID_CHUNK = 500
"""Ids per ``IN (…)`` list: under SQLite's old limit of 999 parameters per statement."""
_FIRE_TRIGGERS = (Trigger.SCHEDULE.value, Trigger.CATCH_UP.value)

_RUN_ORDER = (runs.c.started_at.desc().nulls_last(), runs.c.id.desc())
_newest = select(runs, func.row_number().over(partition_by=runs.c.job, order_by=_RUN_ORDER).label("rank")).subquery()
_LATEST_RUNS = select(*[_newest.c[c.name] for c in runs.c]).where(_newest.c.rank == 1)
_FINISH_BEFORE = select(runs.c.status, runs.c.job).where(runs.c.id == bindparam("run_id"))
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


class SqlRuns(SqlCore):
    def _prepare(self) -> None:
        super()._prepare()
        # A fire claimed by someone else inserts nothing and returns no row. No conflict target:
        # the same DO NOTHING covers the fire's key and an exclusive job's one running run.
        self._claim = self._insert(runs).on_conflict_do_nothing().returning(*runs.c)
        # What finish_runs looks up first. On PostgreSQL ``= ANY(array)`` is one parameter (an
        # expanding IN list of 256 ids costs ~12 µs per id there, ANY ~3.5); SQLite has no arrays.
        ids_match: ColumnElement[bool]
        if self._is_sqlite:
            ids_match = runs.c.id.in_(bindparam("ids", expanding=True))
        else:
            from sqlalchemy.dialects.postgresql import ARRAY

            ids_match = runs.c.id == any_(bindparam("ids", type_=ARRAY(Integer)))
        self._finish_before_many = select(runs.c.id, runs.c.status, runs.c.job).where(ids_match)

    def claim_run(self, claim: Claim) -> RunRecord | None:
        try:
            with self._write() as conn:
                return self._claim_one(conn, claim)
        except IntegrityError as exc:
            raise StoreError(f"{self._failure}: cannot record a run of job {claim.job!r}: {reason(exc)}") from exc

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
            raise StoreError(f"{self._failure}: cannot record runs of jobs {jobs!r}: {reason(exc)}") from exc
        return claimed

    def _claim_one(self, conn: Connection, claim: Claim) -> RunRecord | None:
        row = conn.execute(self._claim, _claim_values(claim)).first()
        if row is None:
            _already_claimed(claim.job, claim.scheduled_for, claim.attempt)
            return None
        return run_record(row)

    def _claim_fires(self, conn: Connection, claims: Sequence[Claim], fires: dict[tuple[str, datetime, int], int],
                     claimed: list[RunRecord | None]) -> None:
        """Claim ``fires`` in one executemany and empty it. A conflicting row returns nothing
        and neither backend promises the order of the rows it returns, so they are matched
        back to the claims by (job, scheduled_for in UTC, attempt)."""
        if not fires:
            return
        values = [_claim_values(claims[i]) for i in fires.values()]
        for row in conn.execute(self._claim, values) if self._is_sqlite else bulk.claim(conn, values):
            i = fires.pop((row.job, row.scheduled_for, row.attempt), -1)
            if i < 0:  # raised inside the transaction, so that it rolls back
                raise StoreError(
                    f"{self._failure}: the run claimed for fire {row.scheduled_for!r} of job "
                    f"{row.job!r} attempt {row.attempt} matches none of the claims"
                )
            claimed[i] = run_record(row)
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
        return run_record(row) if row is not None else None

    def finish_run(self, finish: Finish) -> RunRecord:
        values = _finish_values(finish)
        with self._write() as conn:
            before = conn.execute(_FINISH_BEFORE, {"run_id": finish.run_id}).first()
            if before is None:
                raise RunNotFoundError(finish.run_id)
            if before.status != RunStatus.RUNNING.value:
                _warn_not_running(finish.run_id, before.job, values["outcome"], before.status)
            row = conn.execute(_FINISH, {"run_id": finish.run_id, **values}).one()
        return run_record(row)

    def finish_runs(self, finishes: Sequence[Finish]) -> None:
        """On PostgreSQL one ``UPDATE`` over a JSON recordset that returns each run's status before it; on
        SQLite one lookup of every run, then one executemany ``UPDATE`` per set of columns (with
        and without ``message``). An unknown id raises, and nothing is written; a run that was
        not running is written and warned of.

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
        with self._write() as conn:  # raising inside rolls it back (the whole batch, inside one)
            if self._is_sqlite:
                found = self._finish_executemany(conn, final)
            else:
                found = bulk.finish(conn, [{"run_id": run_id, **values} for run_id, values in final.items()])
            missing = next((run_id for run_id, _ in given if run_id not in found), None)
            if missing is not None:
                raise RunNotFoundError(missing)
        status = {run_id: was for run_id, (was, _) in found.items()}
        for run_id, values in given:
            if status[run_id] != RunStatus.RUNNING.value:
                _warn_not_running(run_id, found[run_id][1], values["outcome"], status[run_id])
            status[run_id] = values["status"]

    def _finish_executemany(self, conn: Connection, final: dict[int, dict[str, Any]]) -> dict[int, tuple[str, str]]:
        """SQLite's finish: ``{id: (status before, job)}`` of the runs that exist, the others
        left alone (the caller raises)."""
        found = self._run_statuses(conn, list(final))
        if len(found) < len(final):
            return found
        groups: dict[bool, list[dict[str, Any]]] = {}
        for run_id, values in final.items():
            groups.setdefault("message" in values, []).append({"run_id": run_id, **values})
        updated = sum(conn.execute(_FINISH_MANY, rows).rowcount for rows in groups.values())
        if updated != len(final):  # cannot happen: SQLite's writer holds the file since the lookup
            raise StoreError(f"{self._failure}: {updated} of the {len(final)} runs being finished were updated")
        return found

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
        return run_record(row)

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
            return [run_record(row) for row in conn.execute(_list_runs_statement(frozenset(params)), params)]

    def latest_runs(self) -> dict[str, RunRecord]:
        with self._read() as conn:
            return {row.job: run_record(row) for row in conn.execute(_LATEST_RUNS)}

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
            lost = [run_record(row) for row in conn.execute(stmt)]
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
                deleted.extend(run_record(row) for row in conn.execute(stmt))
        if deleted:
            logger.info("pruned %s runs from store %s", len(deleted), self.url)
        return sorted(deleted, key=lambda r: r.id)

    # -- several hosts ----------------------------------------------------------------------
    def running_exclusive(self, job: str) -> RunRecord | None:
        stmt = select(runs).where(runs.c.job == job, runs.c.status == RunStatus.RUNNING.value,
                                  runs.c.exclusive.is_(True))
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return run_record(row) if row is not None else None

    def fire_claimed(self, job: str, scheduled_for: datetime, attempt: int = 0) -> RunRecord | None:
        stmt = select(runs).where(runs.c.job == job, runs.c.scheduled_for == bindparam("at", type_=UTCDateTime),
                                  runs.c.attempt == attempt)
        with self._read() as conn:
            row = conn.execute(stmt, {"at": scheduled_for}).first()
        return run_record(row) if row is not None else None

    def claimed_fires(self, fires: Sequence[tuple[str, datetime, int]]) -> set[tuple[str, datetime, int]]:
        """On PostgreSQL one query over a JSON recordset; on SQLite one per fire time and chunk of jobs (a
        burst is one time), filtered here."""
        wanted = {(job, utc(at), attempt) for job, at, attempt in fires}
        by_time: dict[datetime, set[str]] = {}
        for job, at, _ in wanted:
            by_time.setdefault(at, set()).add(job)
        if not self._is_sqlite:
            with self._read() as conn:
                return bulk.claimed(conn, sorted(wanted))
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
