"""Job states in the SQL store. Inside a batch a state write is kept per job and written when
the batch commits (:meth:`jobfsm.store.sql.core.SqlCore.batch`), one row per job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select

from jobfsm.model import JobState
from jobfsm.store.sql.core import SqlCore
from jobfsm.store.sql.tables import job_states

_GET_STATE = select(job_states.c.state).where(job_states.c.job == bindparam("job_name"))


class SqlStates(SqlCore):
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
