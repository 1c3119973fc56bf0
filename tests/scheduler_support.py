"""An in-process scheduler for tests of what happens around fires: a jobs folder of jobs that
fire every minute, a real store, a fake clock, and a runner that keeps runs going until the
test ends them."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from jobfsm.daemon.operations import Operations, OperationsOptions
from jobfsm.daemon.scheduler import Scheduler
from jobfsm.joblog import JobLogger
from jobfsm.lifecycle.events import Announcer
from jobfsm.model import Outcome, RunStatus
from jobfsm.runs.executor import JobResult
from jobfsm.runs.runner import Ticket
from jobfsm.store import RunRecord, open_store
from tests.conftest import FakeClock

T0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
MINUTE = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


class HeldRunner:
    """Keeps every submitted run going until :meth:`finish`; ``on_submit`` lets a test cause a
    fault at a chosen point of a burst."""

    def __init__(self) -> None:
        self.tickets: list[Ticket] = []
        self.on_submit: Callable[[int], None] | None = None
        self.scheduler: Scheduler | None = None

    def submit(self, ticket: Ticket) -> None:
        self.tickets.append(ticket)
        if self.on_submit is not None:
            self.on_submit(len(self.tickets))

    def finish(self, tickets: list[Ticket], when: datetime, outcome: Outcome = Outcome.SUCCEEDED, *,
               stdout: str = "out", stderr: str = "", message: str = "") -> None:
        assert self.scheduler is not None
        for ticket in tickets:
            self.scheduler.post_result(ticket, JobResult(
                job_name=ticket.job.name, run_id=ticket.run_id, start_time=when, end_time=when,
                exit_code=0 if outcome is Outcome.SUCCEEDED else 1, stdout=stdout, stderr=stderr,
                duration_seconds=0.5, status=outcome, signal=None, message=message, stdout_path=None,
                stderr_path=None,
            ))

    def burst(self) -> AbstractContextManager[None]:
        return nullcontext()

    def collect(self) -> None:
        pass

    def starting(self) -> bool:
        return False

    def terminate_all(self, *, reason: str, grace_seconds: float = 0.0) -> None:
        pass

    def kill_all(self, *, reason: str) -> None:
        pass

    def terminate(self, run_id: int, *, reason: str) -> bool:
        return False

    def close(self) -> None:
        pass


class Rig:
    """A jobs folder of ``n`` jobs firing every minute, a store, a fake clock, a scheduler."""

    def __init__(self, tmp_path: Path, url: str, n: int, *, operations: OperationsOptions | None = None,
                 **fields: object) -> None:
        self.jobs_dir = tmp_path / "jobs"
        self.jobs_dir.mkdir()
        self.names = [f"job-{i:03d}" for i in range(n)]
        for name in self.names:
            doc = {"name": name, "schedule": "* * * * *", "command": "true",
                   "working_directory": "/tmp", "enabled": True, **fields}
            (self.jobs_dir / f"{name}.json").write_text(json.dumps(doc))
        self.logs = tmp_path / "logs"
        self.url = url
        self.clock = FakeClock(T0)
        self.store = open_store(url)
        self.logger = JobLogger(self.logs)
        self.runner = HeldRunner()
        self.operations = operations
        """Notifications and metrics as the daemon wires them (None: none), new for each scheduler."""
        self.ops: Operations | None = None
        self.scheduler = self._scheduler()

    def _scheduler(self) -> Scheduler:
        events = Announcer()
        if self.operations is not None:
            if self.ops is not None:
                self.ops.close()
            self.ops = Operations(self.operations, store=self.store, logger=self.logger, clock=self.clock,
                                  node="here:1", jobs_dir=self.jobs_dir, events=events)
        scheduler = Scheduler(self.jobs_dir, self.store, self.logger, clock=self.clock,
                              node="here:1", runner=self.runner, events=events)
        if self.ops is not None:
            self.ops.attach(scheduler)
        self.runner.scheduler = scheduler
        scheduler.start()
        if self.ops is not None:
            self.ops.started()
        return scheduler

    def restart(self) -> None:
        self.runner = HeldRunner()
        self.scheduler = self._scheduler()

    def at(self, when: datetime) -> None:
        self.clock.set(when)
        self.scheduler.dispatch_due()
        self.scheduler.apply_results()

    def probe(self) -> bool:
        """Move the monotonic clock to the next attempt and make it."""
        wait = self.scheduler.probe_seconds()
        if wait:
            self.clock.advance(wait)
        back = self.scheduler.probe_store()
        self.scheduler.apply_results()
        return back

    def runs(self) -> list[RunRecord]:
        return self.store.list_runs()

    def main_log(self) -> str:
        return (self.logs / "scheduler_main.log").read_text()

    def assert_each_fire_once(self, fires: list[datetime]) -> None:
        """Every job's fire at each time has exactly one record, run or skipped with a reason."""
        runs = self.runs()
        for run in runs:
            if run.status is RunStatus.SKIPPED:
                assert run.message, f"run {run.id} was skipped without a reason"
        keys = [(r.job, r.scheduled_for, r.attempt) for r in runs if r.scheduled_for is not None]
        assert len(keys) == len(set(keys)), "a fire was recorded twice"
        recorded = {(r.job, r.scheduled_for) for r in runs if r.scheduled_for is not None}
        missing = [(n, f) for n in self.names for f in fires if (n, f) not in recorded]
        assert not missing, f"{len(missing)} fires were lost, e.g. {missing[:3]}"

    def assert_states_agree(self) -> None:
        for name, entry in self.scheduler.jobs.items():
            assert self.store.get_state(name) == entry.model.job_state, name

    def close(self) -> None:
        if self.ops is not None:
            self.ops.close()
        self.logger.close()
        self.store.close()
