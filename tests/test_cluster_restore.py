"""A node that starts while a job runs on another node (the job's state, shared in the store, says
``running``): none of that run is this node's, so its own starts of the job neither wait behind
it forever nor count it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from jobfsm.daemon.scheduler import Scheduler
from jobfsm.joblog import JobLogger
from jobfsm.model import JobState, Outcome, RunStatus
from jobfsm.store.sql import SqlStore
from tests.conftest import FakeClock, job_doc
from tests.test_scheduler_stateful import FakeRunner


def _node(root: Path, store: SqlStore, clock: FakeClock, name: str) -> tuple[Scheduler, FakeRunner]:
    runner = FakeRunner()
    scheduler = Scheduler(root / "jobs", store, JobLogger(root / f"logs-{name}"), clock=clock, node=name, runner=runner)
    runner.scheduler = scheduler
    scheduler.heartbeat()
    scheduler.start()
    return scheduler, runner


def _trigger(store: SqlStore, scheduler: Scheduler, clock: FakeClock) -> int:
    request = store.request_trigger("long", user="ops", at=clock.now())
    scheduler.poll_triggers()
    scheduler.apply_results()
    run_id = store.get_trigger_request(request.id).run_id
    assert run_id is not None
    return run_id


def test_a_node_started_while_the_job_runs_elsewhere_runs_it_once_that_run_ends(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "long.json").write_text(json.dumps(job_doc("long", schedule="0 0 1 1 *", overlap="queue")))
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    a, a_runner = _node(tmp_path, store, clock, "node-a")
    first = _trigger(store, a, clock)
    assert store.get_state("long") is JobState.RUNNING

    b, _ = _node(tmp_path, store, clock, "node-b")  # starts while node-a runs the job
    assert b.jobs["long"].model.active_runs == 0, "node-a's run is not node-b's to count"
    queued = store.get_run(_trigger(store, b, clock))
    assert queued.status is RunStatus.SKIPPED and f"run {first} on node node-a" in queued.message

    clock.advance(seconds=5)
    a_runner.finish(first, Outcome.SUCCEEDED, clock.now())
    a.apply_results()
    again = store.get_run(_trigger(store, b, clock))
    assert again.status is RunStatus.RUNNING and again.node == "node-b", "not queued behind a run that ended"
    for scheduler in (a, b):
        scheduler.close_folder()
    store.close()
