"""The SQL store: its parts joined into one :class:`jobfsm.store.Store`."""

from __future__ import annotations

from datetime import timedelta

from jobfsm.model import JobState, Outcome, Trigger
from jobfsm.store.abc import WARM_UP_AT, WARM_UP_JOB, Claim, Finish
from jobfsm.store.sql.audit import SqlAudit
from jobfsm.store.sql.nodes import SqlNodes
from jobfsm.store.sql.requests import SqlRequests
from jobfsm.store.sql.runs import SqlRuns
from jobfsm.store.sql.states import SqlStates


class _Rehearsal(Exception):
    """Raised inside :meth:`SqlStore.warm_up`'s batch so that its transaction is rolled back."""


class SqlStore(SqlRuns, SqlStates, SqlRequests, SqlAudit, SqlNodes):
    """The store in a SQL database: ``sqlite:///path/to/file.db`` or ``postgresql://…``."""

    def warm_up(self) -> None:
        """Run a fire's statements once in a transaction that is rolled back: SQLAlchemy
        compiles each statement on its first use, and without this the first run of the first
        burst after start-up began later than the first run of the next one."""
        now, job, node = WARM_UP_AT, WARM_UP_JOB, "warm-up"
        try:
            with self.batch():
                run = self.claim_run(Claim(job, Trigger.SCHEDULE, node, now, now))
                [more] = self.claim_runs([Claim(job, Trigger.SCHEDULE, node, now, now + timedelta(minutes=1))])
                self.set_state(job, JobState.RUNNING, now)
                self.finish_runs([Finish(r.id, Outcome.SUCCEEDED, now, 0, 0.0) for r in (run, more) if r is not None])
                raise _Rehearsal
        except _Rehearsal:
            pass
