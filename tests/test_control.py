"""Pauses and kill requests, in-process: the store's records on every backend, the policy's
answers, the lifecycle's guard, and the scheduler's fires under a pause with the injected clock.
(Real daemons, processes and the CLI: tests/test_control_e2e.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.daemon import policy
from jobfsm.daemon.policy import Start, Verdict
from jobfsm.errors import InvalidTransitionError
from jobfsm.lifecycle import Lifecycle
from jobfsm.model import JobConfig, JobState, Overlap, RunStatus, Trigger
from jobfsm.store import Claim, Finish, Store
from jobfsm.store.control import KILL_PENDING, KILL_SIGNALLED, KillRequestNotFoundError, Pause
from jobfsm.store.memory import MemoryStore
from tests.conftest import FakeClock
from tests.scheduler_support import MINUTE, Rig
from tests.test_store import BACKENDS, _url_for, pg_url  # noqa: F401 - a fixture

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    from jobfsm.store.sql import SqlStore

    backend: Store = MemoryStore() if request.param == "memory" else SqlStore(_url_for(request.param, request, tmp_path))
    request.addfinalizer(backend.close)
    return backend


# -- the store ------------------------------------------------------------------------------

def test_a_pause_is_kept_replaced_and_cleared(store: Store) -> None:
    assert store.list_pauses() == []
    first = Pause("backup", "alice", T0, T0 + timedelta(hours=2), "db maintenance")
    store.set_pause(first)
    assert store.list_pauses() == [first]
    second = Pause("backup", "bob", T0 + timedelta(minutes=5), None, "")
    store.set_pause(second)  # a second pause replaces the first
    store.set_pause(Pause("alpha", "carol", T0, None, "x"))
    assert store.list_pauses() == [Pause("alpha", "carol", T0, None, "x"), second]
    assert store.clear_pause("backup") == second
    assert store.clear_pause("backup") is None
    assert [p.job for p in store.list_pauses()] == ["alpha"]


def test_only_the_pause_that_ended_is_cleared_as_expired(store: Store) -> None:
    until = T0 + timedelta(hours=1)
    store.set_pause(Pause("backup", "alice", T0, until, ""))
    # someone paused it again meanwhile, until later: the old end must not clear the new pause
    assert store.clear_pause("backup", until=T0, only_expired=True) is None
    assert store.clear_pause("backup", until=until, only_expired=True) is not None
    assert store.list_pauses() == []


def test_kill_requests_go_to_their_node_once(store: Store) -> None:
    a = store.request_kill("backup", run_id=7, node="node-a", user="alice", at=T0)
    b = store.request_kill("backup", run_id=8, node="node-b", user="alice", at=T0)
    assert (a.result, a.claimed_at) == (KILL_PENDING, None)
    taken = store.claim_kill_requests(node="node-a", at=T0 + timedelta(seconds=1))
    assert [(r.id, r.run_id, r.claimed_at) for r in taken] == [(a.id, 7, T0 + timedelta(seconds=1))]
    assert store.claim_kill_requests(node="node-a", at=T0) == []  # each is taken once
    assert [r.id for r in store.claim_kill_requests(node="node-b", at=T0)] == [b.id]
    store.resolve_kill_request(a.id, KILL_SIGNALLED)
    assert store.get_kill_request(a.id).result == KILL_SIGNALLED
    with pytest.raises(KillRequestNotFoundError, match="no kill request with id 999"):
        store.get_kill_request(999)
    with pytest.raises(KillRequestNotFoundError):
        store.resolve_kill_request(999, "x")


# -- the policy -----------------------------------------------------------------------------

def _config(**fields: object) -> JobConfig:
    from jobfsm.config.loader import validate_document

    doc = {"name": "backup", "schedule": "* * * * *", "command": "true", "working_directory": "/tmp",
           "enabled": True, **fields}
    config = validate_document(doc, "backup.json", stem="backup").config
    assert config is not None
    return config


def test_pause_reason_names_who_until_when_and_why() -> None:
    until = T0 + timedelta(hours=1)
    reason = policy.pause_reason(Pause("backup", "alice", T0, until, "db maintenance"), T0)
    assert reason == f"paused by alice until {until.isoformat()}: db maintenance"
    assert policy.is_pause_skip(reason)
    assert policy.pause_reason(Pause("backup", "alice", T0), T0) == "paused by alice until resumed"
    assert policy.pause_reason(Pause("backup", "alice", T0, until), until) is None  # ended by itself
    assert policy.pause_reason(None, T0) is None
    assert not policy.is_pause_skip("run 3 still running (overlap: skip)")


@settings(max_examples=100)
@given(
    trigger=st.sampled_from(list(Trigger)),
    overlap=st.sampled_from(list(Overlap)),
    running=st.integers(0, 3),
    waiting=st.booleans(),
)
def test_a_paused_job_skips_every_start_with_the_pause_reason(
    trigger: Trigger, overlap: Overlap, running: int, waiting: bool
) -> None:
    config = _config(overlap=overlap.value)
    start = Start(trigger, scheduled_for=None if trigger is Trigger.MANUAL else T0)
    why = "paused by alice until resumed"
    decision = policy.decide(config, start, enabled=True, running=running, fire_waiting=waiting, paused=why)
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, why)
    assert not policy.is_plain(config, start, enabled=True, running=running, paused=True)
    assert not policy.may_start_waiting(config, running=running, paused=True)
    # a disabled job's fire still does not happen at all (nothing to record)
    if trigger is not Trigger.MANUAL:
        assert policy.decide(config, start, enabled=False, running=running, paused=why).verdict is Verdict.IGNORE


# -- the lifecycle's guard ---------------------------------------------------------------------

def test_the_lifecycle_refuses_a_start_while_paused_and_changes_nothing() -> None:
    store = MemoryStore()
    lifecycle = Lifecycle(store, clock=FakeClock(T0))
    job = lifecycle.model_for("backup", enabled=True)
    lifecycle.persist_initial(job)
    with pytest.raises(InvalidTransitionError, match=r"job 'backup' is paused; resume it"):
        lifecycle.start(job, trigger=Trigger.SCHEDULE, paused=True)
    assert (job.state, job.active_runs, store.get_state("backup")) == ("idle", 0, JobState.IDLE)
    lifecycle.start(job, trigger=Trigger.SCHEDULE, overlap=Overlap.ALLOW)
    with pytest.raises(InvalidTransitionError, match="paused"):  # a concurrent start too
        lifecycle.start(job, trigger=Trigger.SCHEDULE, overlap=Overlap.ALLOW, paused=True)
    assert job.active_runs == 1
    assert "paused" in lifecycle.diagram()


# -- the scheduler, with the injected clock ---------------------------------------------------------

@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 1)
    return rig


def _fires(rig: Rig) -> list[tuple[str, RunStatus, str]]:
    return [(r.scheduled_for.strftime("%H:%M") if r.scheduled_for else "-", r.status, r.message)
            for r in sorted(rig.runs(), key=lambda r: r.id)]


def _minute(n: int) -> datetime:
    return MINUTE + timedelta(minutes=n)


def test_fires_while_paused_until_a_time_are_skipped_then_it_resumes_by_itself(rig: Rig) -> None:
    name = rig.names[0]
    until = _minute(1) + timedelta(seconds=30)  # 00:02:30
    rig.store.set_pause(Pause(name, "alice", rig.clock.now(), until, "db maintenance"))
    rig.scheduler.poll_triggers()  # what the bell wakes the loop for
    assert rig.scheduler.next_due() == _minute(0)
    rig.at(_minute(0))
    rig.at(_minute(1))
    assert rig.runner.tickets == []
    assert rig.scheduler.next_due() == until  # the loop wakes at the pause's end
    rig.at(until)
    rig.at(_minute(2))
    skip = f"paused by alice until {until.isoformat()}: db maintenance"
    statuses = _fires(rig)
    assert statuses[:2] == [("00:01", RunStatus.SKIPPED, skip), ("00:02", RunStatus.SKIPPED, skip)]
    assert statuses[2][:2] == ("00:03", RunStatus.RUNNING)
    assert rig.store.list_pauses() == []  # cleared when it ended
    assert "pause ended by itself" in rig.main_log()
    [entry] = [e for e in rig.store.list_audit(job=name) if e.action == "resume"]
    assert (entry.user, entry.outcome, entry.details["paused_by"]) == ("jobfsm", "allowed", "alice")
    assert [t.scheduled_for for t in rig.runner.tickets] == [_minute(2)]
    rig.assert_each_fire_once([_minute(0), _minute(1), _minute(2)])


def test_a_pause_without_end_holds_until_resumed_and_covers_retries_and_triggers(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "memory://", 1, retries=1, retry_delay_seconds=10)
    name = rig.names[0]
    rig.at(_minute(0))
    [first] = rig.runner.tickets
    rig.store.set_pause(Pause(name, "bob", rig.clock.now(), None, ""))
    rig.scheduler.poll_triggers()
    from jobfsm.model import Outcome

    rig.runner.finish([first], _minute(0), Outcome.FAILED)  # a run in progress ends as it would
    rig.at(_minute(0) + timedelta(seconds=1))
    rig.at(_minute(0) + timedelta(seconds=11))  # its retry is due while paused
    request = rig.store.request_trigger(name, user="carol", at=rig.clock.now())
    rig.scheduler.poll_triggers()
    rig.at(_minute(1))
    assert len(rig.runner.tickets) == 1  # nothing started while paused
    skipped = [r for r in rig.runs() if r.status is RunStatus.SKIPPED]
    assert {r.trigger for r in skipped} == {Trigger.RETRY, Trigger.MANUAL, Trigger.SCHEDULE}
    assert all(r.message == "paused by bob until resumed" for r in skipped)
    assert rig.store.get_trigger_request(request.id).run_id is not None  # answered, as skipped
    rig.store.clear_pause(name)
    rig.scheduler.poll_triggers()
    rig.at(_minute(2))
    assert len(rig.runner.tickets) == 2 and rig.runner.tickets[-1].scheduled_for == _minute(2)


def test_a_start_waiting_in_the_queue_begins_when_the_pause_ends(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "memory://", 1, overlap="queue")
    name = rig.names[0]
    rig.at(_minute(0))
    rig.at(_minute(1))  # waits behind the first
    rig.store.set_pause(Pause(name, "bob", rig.clock.now(), _minute(1) + timedelta(seconds=40), ""))
    rig.scheduler.poll_triggers()
    rig.runner.finish(rig.runner.tickets[:1], _minute(1))
    rig.at(_minute(1) + timedelta(seconds=10))
    assert len(rig.runner.tickets) == 1  # the queued start waits on while paused
    rig.at(_minute(1) + timedelta(seconds=40))  # the pause ends by itself
    assert len(rig.runner.tickets) == 2 and rig.runner.tickets[1].scheduled_for == _minute(1)


def test_catch_up_of_a_paused_job_is_skipped_as_paused(tmp_path: Path) -> None:
    rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 1, catch_up="all")
    name = rig.names[0]
    rig.at(_minute(0))
    rig.runner.finish(rig.runner.tickets, _minute(0))
    rig.at(_minute(0) + timedelta(seconds=1))
    rig.store.set_pause(Pause(name, "alice", rig.clock.now(), None, "moving racks"))
    rig.clock.set(_minute(3) + timedelta(seconds=5))  # the daemon was down for three fires
    rig.restart()
    caught = [r for r in rig.runs() if r.trigger is Trigger.CATCH_UP]
    assert len(caught) == 3 and all(r.status is RunStatus.SKIPPED for r in caught)
    assert all(policy.is_pause_skip(r.message) and "moving racks" in r.message for r in caught)


def test_pause_and_kill_records_survive_json(tmp_path: Path) -> None:
    pause = Pause("backup", "alice", T0, None, "x")
    assert json.loads(json.dumps(pause.to_dict())) == {
        "job": "backup", "user": "alice", "since": T0.isoformat(), "until": None, "reason": "x"}


def test_follow_finds_the_output_beside_earlier_runs_when_logs_differ(tmp_path: Path) -> None:
    from jobfsm.model import Outcome
    from jobfsm.service import JobManagementService
    from jobfsm.service.control import _output_paths

    store = MemoryStore()
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "backup.json").write_text(json.dumps(
        {"name": "backup", "schedule": "* * * * *", "command": "true", "working_directory": "/tmp", "enabled": True}))
    node_runs = tmp_path / "node-logs" / "runs" / "backup"
    node_runs.mkdir(parents=True)
    with JobManagementService(tmp_path / "jobs", tmp_path / "cli-logs", store) as service:
        old = store.claim_run(Claim("backup", trigger=Trigger.MANUAL, node="n", started_at=T0))
        assert old is not None
        store.finish_run(Finish(old.id, outcome=Outcome.SUCCEEDED, ended_at=T0, exit_code=0, duration_seconds=0.0,
                                stdout_path=str(node_runs / f"{old.id}.out"), stderr_path=str(node_runs / f"{old.id}.err")))
        new = store.claim_run(Claim("backup", trigger=Trigger.MANUAL, node="n", started_at=T0))
        assert new is not None
        assert _output_paths(service, new) == (node_runs / f"{new.id}.out", node_runs / f"{new.id}.err")


def test_a_kill_nobody_can_take_says_why_and_is_audited(tmp_path: Path) -> None:
    from jobfsm.nodes import this_host
    from jobfsm.service import JobManagementService
    from jobfsm.service.control import KillTimeoutError

    store = MemoryStore()
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "backup.json").write_text(json.dumps(
        {"name": "backup", "schedule": "* * * * *", "command": "true", "working_directory": "/tmp", "enabled": True}))
    gone = f"{this_host()}:{2**22 + 12345}"  # above pid_max's default: no such process
    run = store.claim_run(Claim("backup", trigger=Trigger.MANUAL, node=gone, started_at=T0))
    far = store.claim_run(Claim("backup", trigger=Trigger.MANUAL, node="elsewhere:1", started_at=T0))
    assert run is not None and far is not None
    with JobManagementService(tmp_path / "jobs", tmp_path / "logs", store, daemon_pickup_timeout=0.3) as service:
        with pytest.raises(KillTimeoutError, match=r"was started by process .*, which is gone"):
            service.kill_run("backup", "alice", run_id=run.id)
        with pytest.raises(KillTimeoutError, match=r"was not taken by node 'elsewhere:1' within 0.3 s \(it has no recent"):
            service.kill_run("backup", "alice", run_id=far.id)
        outcomes = [(e.action, e.outcome) for e in service.list_audit(job="backup")]
    assert outcomes == [("kill", "failed"), ("kill", "failed")]
    assert store.get_run(far.id).status is RunStatus.RUNNING  # nothing was recorded in its name
