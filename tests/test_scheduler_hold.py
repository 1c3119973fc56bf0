"""While the runner is starting a burst of runs, finished runs wait (bounded) to be recorded;
at shutdown they never wait. A real jobs folder and SQLite store, a fake clock and runner."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path

from jobfsm.daemon.scheduler import MAX_RESULT_HOLD_SECONDS, Scheduler
from jobfsm.joblog import JobLogger
from jobfsm.model import Outcome, RunStatus
from jobfsm.runs.executor import JobResult
from jobfsm.runs.runner import Ticket
from jobfsm.store import open_store
from tests.conftest import FakeClock


class BusyRunner:
    """Keeps every run 'running'; says it is starting runs while ``busy``."""

    def __init__(self) -> None:
        self.busy = True
        self.tickets: list[Ticket] = []

    def submit(self, ticket: Ticket) -> None:
        self.tickets.append(ticket)

    def burst(self) -> AbstractContextManager[None]:
        return nullcontext()

    def collect(self) -> None:
        pass

    def starting(self) -> bool:
        return self.busy

    def terminate_all(self, *, reason: str, grace_seconds: float = 0.0) -> None:
        pass

    def kill_all(self, *, reason: str) -> None:
        pass

    def close(self) -> None:
        pass


def result(ticket: Ticket, now: datetime) -> JobResult:
    return JobResult(
        job_name=ticket.job.name, run_id=ticket.run_id, start_time=now, end_time=now, exit_code=0,
        stdout="", stderr="", duration_seconds=0.0, status=Outcome.SUCCEEDED, signal=None,
        message="", stdout_path=None, stderr_path=None,
    )


def started_scheduler(tmp_path: Path) -> tuple[Scheduler, BusyRunner, FakeClock]:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "tick.json").write_text(json.dumps({
        "name": "tick", "schedule": "* * * * *", "command": "true", "working_directory": str(tmp_path),
        "enabled": True, "overlap": "allow",
    }))
    clock, runner = FakeClock(), BusyRunner()
    scheduler = Scheduler(jobs, open_store(f"sqlite:///{tmp_path / 'store.db'}"), JobLogger(tmp_path / "logs"),
                          clock=clock, node="test:1", runner=runner)
    scheduler.start()
    clock.advance(60)
    assert scheduler.dispatch_due() == 1 and len(runner.tickets) == 1
    return scheduler, runner, clock


def test_results_wait_while_the_runner_starts_runs_but_not_longer_than_the_bound(tmp_path: Path) -> None:
    scheduler, runner, clock = started_scheduler(tmp_path)
    ticket = runner.tickets[0]
    scheduler.post_result(ticket, result(ticket, clock.now()))
    assert not scheduler.wake.is_set(), "a result woke the loop in the middle of a burst"
    assert scheduler.apply_results() == 0
    clock.advance(MAX_RESULT_HOLD_SECONDS / 2)
    assert scheduler.apply_results() == 0
    assert scheduler.store.get_run(ticket.run_id).status is RunStatus.RUNNING
    clock.advance(MAX_RESULT_HOLD_SECONDS / 2)
    assert scheduler.apply_results() == 1, "a result waited longer than the bound"
    assert scheduler.store.get_run(ticket.run_id).status is RunStatus.SUCCEEDED


def test_results_are_recorded_at_once_when_the_runner_is_idle_or_at_shutdown(tmp_path: Path) -> None:
    scheduler, runner, clock = started_scheduler(tmp_path)
    ticket = runner.tickets[0]
    runner.busy = False
    scheduler.post_result(ticket, result(ticket, clock.now()))
    assert scheduler.wake.is_set()
    assert scheduler.apply_results() == 1

    clock.advance(60)
    runner.busy = True
    assert scheduler.dispatch_due() == 1
    second = runner.tickets[1]
    scheduler.post_result(second, result(second, clock.now()))
    scheduler.shutdown(grace_seconds=0)
    assert scheduler.store.get_run(second.run_id).status is RunStatus.SUCCEEDED
