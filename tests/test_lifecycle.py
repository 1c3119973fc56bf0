"""Tests of the lifecycle machine (jobfsm/lifecycle.py, DESIGN.md §2).

Fixtures are local: a store fake that records ``set_state`` calls, a logger fake that records
``state_change`` calls, a clock that only moves when told.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from transitions import MachineError

from jobfsm.errors import InvalidTransitionError, JobfsmError, StoreError
from jobfsm.lifecycle import (
    CALLBACK_KEYS,
    EVENTS,
    TRANSITIONS,
    JobModel,
    Lifecycle,
    StateChanged,
)
from jobfsm.model import JobState, Outcome, Overlap, Trigger

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


# -- fakes ---------------------------------------------------------------------------------
class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def monotonic(self) -> float:
        return (self._now - T0).total_seconds()

    def wait(self, event: Any, timeout: float | None) -> bool:
        return event.is_set()


class FakeStore:
    """Only what the lifecycle uses of a Store: ``set_state``."""

    def __init__(self) -> None:
        self.states: dict[str, JobState] = {}
        self.calls: list[tuple[str, JobState, datetime]] = []
        self.fail_with: Exception | None = None

    def set_state(self, job: str, state: JobState, at: datetime) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        assert isinstance(state, JobState)
        self.states[job] = state
        self.calls.append((job, state, at))


@dataclass
class FakeJobLogger:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def state_change(
        self, job: str, *, event: str, source: str, dest: str, user: str | None = None
    ) -> None:
        self.calls.append({"job": job, "event": event, "source": source, "dest": dest, "user": user})


@dataclass
class Rig:
    lifecycle: Lifecycle
    store: FakeStore
    logger: FakeJobLogger
    audits: list[StateChanged]
    clock: FakeClock

    def snapshot(self, job: JobModel) -> tuple[Any, ...]:
        return (
            job.state, job.active_runs, job.disable_pending,
            len(self.store.calls), len(self.logger.calls), len(self.audits),
        )


def make_rig() -> Rig:
    store, logger, clock = FakeStore(), FakeJobLogger(), FakeClock()
    audits: list[StateChanged] = []

    def listen(event: object) -> None:  # the job log hears every change, the audit a person's
        assert isinstance(event, StateChanged)
        logger.state_change(event.job, event=event.event, source=event.source, dest=event.dest, user=event.user)
        if event.user is not None:
            audits.append(event)

    lc = Lifecycle(store, clock=clock, announce=listen)  # type: ignore[arg-type]
    return Rig(lc, store, logger, audits, clock)


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def job_in(rig: Rig, state: JobState, overlap: Overlap = Overlap.SKIP, name: str = "job") -> JobModel:
    """A job driven into ``state`` through the machine (so the fakes saw real transitions)."""
    job = rig.lifecycle.model_for(name, enabled=state is not JobState.DISABLED)
    lc = rig.lifecycle
    if state is JobState.RUNNING:
        lc.start(job, trigger=Trigger.SCHEDULE, overlap=overlap)
    elif state is JobState.SUCCEEDED:
        lc.start(job, trigger=Trigger.SCHEDULE)
        lc.succeed(job)
    elif state is JobState.FAILED:
        lc.start(job, trigger=Trigger.SCHEDULE)
        lc.fail(job)
    assert job.job_state is state
    return job


RESTING = [JobState.IDLE, JobState.SUCCEEDED, JobState.FAILED]


# -- the model -----------------------------------------------------------------------------
def test_job_model_is_slotted_small_and_compared_by_identity() -> None:
    a = JobModel("same", JobState.IDLE)
    b = JobModel("same", JobState.IDLE)
    assert a != b and a == a  # two jobs with one name must stay two models
    assert not hasattr(a, "__dict__")
    with pytest.raises(AttributeError):
        a.colour = "red"  # type: ignore[attr-defined]
    assert a.state == "idle" and a.job_state is JobState.IDLE


def test_model_for_initial_state_follows_enabled_or_restored_state(rig: Rig) -> None:
    lc = rig.lifecycle
    assert lc.model_for("a", enabled=True).job_state is JobState.IDLE
    assert lc.model_for("b", enabled=False).job_state is JobState.DISABLED
    restored = lc.model_for("c", enabled=True, state=JobState.FAILED)
    assert restored.job_state is JobState.FAILED
    assert rig.store.calls == [] and rig.logger.calls == []  # building persists nothing
    lc.persist_initial(restored)
    assert rig.store.calls == [("c", JobState.FAILED, T0)]
    assert rig.logger.calls == []


def test_job_restored_running_counts_one_run_and_fail_closes_it(rig: Rig) -> None:
    job = rig.lifecycle.model_for("lost", enabled=True, state=JobState.RUNNING)
    assert job.active_runs == 1
    rig.lifecycle.fail(job, reason="lost: its daemon stopped")
    assert job.job_state is JobState.FAILED and job.active_runs == 0
    assert rig.store.states["lost"] is JobState.FAILED


# -- each allowed transition -----------------------------------------------------------------
def test_enable_moves_disabled_to_idle_and_is_persisted_logged_audited(rig: Rig) -> None:
    job = job_in(rig, JobState.DISABLED)
    rig.clock.advance(5)
    rig.lifecycle.enable(job, user="alice")
    assert job.job_state is JobState.IDLE
    assert rig.store.calls == [("job", JobState.IDLE, T0 + timedelta(seconds=5))]
    assert rig.logger.calls == [
        {"job": "job", "event": "enable", "source": "disabled", "dest": "idle", "user": "alice"}
    ]
    assert rig.audits == [
        StateChanged(job="job", event="enable", source="disabled", dest="idle", user="alice",
                     at=T0 + timedelta(seconds=5))
    ]


@pytest.mark.parametrize("state", RESTING, ids=lambda s: s.value)
def test_disable_from_a_resting_state(rig: Rig, state: JobState) -> None:
    job = job_in(rig, state)
    rig.lifecycle.disable(job)
    assert job.job_state is JobState.DISABLED
    assert rig.store.states["job"] is JobState.DISABLED
    assert rig.logger.calls[-1]["source"] == state.value
    assert rig.audits == []  # no person, no audit


@pytest.mark.parametrize("state", RESTING, ids=lambda s: s.value)
@pytest.mark.parametrize("trigger", list(Trigger), ids=lambda t: t.value)
def test_start_from_a_resting_state(rig: Rig, state: JobState, trigger: Trigger) -> None:
    job = job_in(rig, state)
    rig.lifecycle.start(job, trigger=trigger, run_id=7)
    assert job.job_state is JobState.RUNNING and job.active_runs == 1
    assert rig.store.states["job"] is JobState.RUNNING
    assert rig.logger.calls[-1] == {
        "job": "job", "event": "start", "source": state.value, "dest": "running", "user": None
    }


@pytest.mark.parametrize(
    ("outcome", "final"),
    [
        (Outcome.SUCCEEDED, JobState.SUCCEEDED),
        (Outcome.FAILED, JobState.FAILED),
        (Outcome.TIMED_OUT, JobState.FAILED),
        (Outcome.NOT_STARTED, JobState.FAILED),
        (Outcome.KILLED, JobState.FAILED),
    ],
    ids=lambda v: v.value,
)
def test_finish_lands_in_the_state_of_the_outcome(
    rig: Rig, outcome: Outcome, final: JobState
) -> None:
    job = job_in(rig, JobState.RUNNING)
    rig.lifecycle.finish(job, outcome, run_id=3)
    assert job.job_state is final and job.active_runs == 0
    assert rig.store.states["job"] is final
    assert rig.logger.calls[-1]["event"] == ("succeed" if final is JobState.SUCCEEDED else "fail")


def test_manual_trigger_is_audited_with_the_user(rig: Rig) -> None:
    job = job_in(rig, JobState.SUCCEEDED)
    rig.lifecycle.start(job, trigger=Trigger.MANUAL, user="bob")
    assert [(a.user, a.event, a.source, a.dest) for a in rig.audits] == [
        ("bob", "start", "succeeded", "running")
    ]


# -- refusals ------------------------------------------------------------------------------
REFUSALS = [
    (JobState.DISABLED, Overlap.ALLOW, "start", r"job 'job' is disabled; enable it before triggering it"),
    (JobState.DISABLED, Overlap.SKIP, "disable", r"job 'job' is already disabled"),
    (JobState.DISABLED, Overlap.SKIP, "succeed", r"job 'job' has no run in progress \(it is 'disabled'\)"),
    (JobState.DISABLED, Overlap.SKIP, "fail", r"job 'job' has no run in progress"),
    (JobState.IDLE, Overlap.SKIP, "enable", r"job 'job' is already enabled"),
    (JobState.IDLE, Overlap.SKIP, "succeed", r"job 'job' has no run in progress \(it is 'idle'\)"),
    (JobState.SUCCEEDED, Overlap.SKIP, "fail", r"no run in progress \(it is 'succeeded'\)"),
    (JobState.FAILED, Overlap.SKIP, "enable", r"job 'job' is already enabled"),
    (JobState.RUNNING, Overlap.SKIP, "start", r"job 'job' is already running and its overlap policy is 'skip'"),
    (JobState.RUNNING, Overlap.QUEUE, "start", r"job 'job' is already running and its overlap policy is 'queue'"),
    (JobState.RUNNING, Overlap.SKIP, "enable", r"job 'job' is already enabled \(it is running\)"),
]


def fire(lc: Lifecycle, job: JobModel, event: str, user: str | None = None, overlap: Overlap = Overlap.SKIP) -> None:
    if event == "start":
        lc.start(job, trigger=Trigger.MANUAL, user=user, overlap=overlap)
    elif event in ("enable", "disable"):
        getattr(lc, event)(job, user=user)
    else:
        getattr(lc, event)(job)


@pytest.mark.parametrize(
    ("state", "overlap", "event", "message"), REFUSALS,
    ids=[f"{s.value}-{o.value}-{e}" for s, o, e, _ in REFUSALS],
)
def test_refused_transition_raises_readably_and_changes_nothing(
    rig: Rig, state: JobState, overlap: Overlap, event: str, message: str
) -> None:
    job = job_in(rig, state, overlap)
    before = rig.snapshot(job)
    with pytest.raises(InvalidTransitionError, match=message) as info:
        fire(rig.lifecycle, job, event, user="carol", overlap=overlap)
    assert not isinstance(info.value, MachineError)
    assert isinstance(info.value, JobfsmError)
    assert rig.snapshot(job) == before  # no state, counter, store, log or audit change


# -- disable while running, overlap ----------------------------------------------------------
@pytest.mark.parametrize("outcome", [Outcome.SUCCEEDED, Outcome.FAILED], ids=lambda o: o.value)
def test_disable_while_running_lands_in_disabled_after_the_run(rig: Rig, outcome: Outcome) -> None:
    job = job_in(rig, JobState.RUNNING)
    persisted = len(rig.store.calls)
    rig.lifecycle.disable(job, user="dave")
    assert job.job_state is JobState.RUNNING and job.disable_pending and not job.enabled
    assert len(rig.store.calls) == persisted  # the state did not change: nothing to persist
    assert rig.logger.calls[-1] == {
        "job": "job", "event": "disable", "source": "running", "dest": "running", "user": "dave"
    }
    with pytest.raises(InvalidTransitionError, match="is being disabled"):
        rig.lifecycle.start(job, trigger=Trigger.SCHEDULE)
    with pytest.raises(InvalidTransitionError, match="already being disabled"):
        rig.lifecycle.disable(job)
    rig.lifecycle.finish(job, outcome)
    assert job.job_state is JobState.DISABLED and not job.disable_pending
    assert rig.store.states["job"] is JobState.DISABLED
    assert rig.logger.calls[-1]["dest"] == "disabled"


def test_enable_during_a_deferred_disable_cancels_it(rig: Rig) -> None:
    job = job_in(rig, JobState.RUNNING)
    rig.lifecycle.disable(job)
    rig.lifecycle.enable(job, user="erin")
    assert job.job_state is JobState.RUNNING and not job.disable_pending and job.enabled
    rig.lifecycle.succeed(job)
    assert job.job_state is JobState.SUCCEEDED


def test_overlap_allow_keeps_running_until_the_last_run_ends(rig: Rig) -> None:
    job = job_in(rig, JobState.IDLE, Overlap.ALLOW)
    lc = rig.lifecycle
    for _ in range(3):
        lc.start(job, trigger=Trigger.SCHEDULE, overlap=Overlap.ALLOW)
    assert job.active_runs == 3
    assert [c for c in rig.store.calls if c[1] is JobState.RUNNING] == [("job", JobState.RUNNING, T0)]
    lc.fail(job)
    lc.succeed(job)
    assert job.job_state is JobState.RUNNING and job.active_runs == 1
    lc.fail(job, reason="timed out")  # the last run to end decides
    assert job.job_state is JobState.FAILED and job.active_runs == 0
    assert [c["dest"] for c in rig.logger.calls[-5:]] == [
        "running", "running", "running", "running", "failed"
    ]


def test_overlap_allow_with_disable_pending_lands_disabled_after_the_last_run(rig: Rig) -> None:
    job = job_in(rig, JobState.RUNNING, Overlap.ALLOW)
    rig.lifecycle.start(job, trigger=Trigger.SCHEDULE, overlap=Overlap.ALLOW)
    rig.lifecycle.disable(job)
    before = rig.snapshot(job)
    with pytest.raises(InvalidTransitionError, match="'job' is being disabled"):
        rig.lifecycle.start(job, trigger=Trigger.SCHEDULE, overlap=Overlap.ALLOW)  # even allow: no new runs
    assert rig.snapshot(job) == before
    rig.lifecycle.succeed(job)
    assert job.job_state is JobState.RUNNING and job.disable_pending
    rig.lifecycle.succeed(job)
    assert job.job_state is JobState.DISABLED


def test_the_policy_given_with_each_start_decides_so_a_reloaded_file_is_honoured(rig: Rig) -> None:
    job = job_in(rig, JobState.RUNNING, Overlap.SKIP)
    with pytest.raises(InvalidTransitionError, match="overlap policy is 'skip'"):
        rig.lifecycle.start(job, trigger=Trigger.SCHEDULE, overlap=Overlap.SKIP)
    rig.lifecycle.start(job, trigger=Trigger.SCHEDULE, overlap=Overlap.ALLOW)  # the file now says allow
    assert job.active_runs == 2


# -- sync (hot reload) -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "enabled", "after"),
    [
        (JobState.DISABLED, False, JobState.DISABLED),
        (JobState.IDLE, True, JobState.IDLE),
        (JobState.FAILED, True, JobState.FAILED),
        (JobState.RUNNING, True, JobState.RUNNING),
        (JobState.DISABLED, True, JobState.IDLE),
        (JobState.SUCCEEDED, False, JobState.DISABLED),
    ],
    ids=lambda v: v.value if isinstance(v, JobState) else str(v),
)
def test_sync_makes_the_state_agree_with_the_file(
    rig: Rig, state: JobState, enabled: bool, after: JobState
) -> None:
    job = job_in(rig, state)
    logged = len(rig.logger.calls)
    rig.lifecycle.sync(job, enabled=enabled, user="git")
    assert job.job_state is after
    agrees = (state is not JobState.DISABLED) == enabled
    assert len(rig.logger.calls) == logged + (0 if agrees else 1)
    assert len(rig.audits) == (0 if agrees else 1)


def test_sync_while_running_defers_and_undoes(rig: Rig) -> None:
    job = job_in(rig, JobState.RUNNING)
    rig.lifecycle.sync(job, enabled=False)
    assert job.disable_pending
    rig.lifecycle.sync(job, enabled=False)  # agrees now: no error, nothing new
    rig.lifecycle.sync(job, enabled=True)
    assert not job.disable_pending and job.job_state is JobState.RUNNING


# -- side-effect failures ---------------------------------------------------------------------
def test_a_store_that_fails_leaves_the_model_unchanged(rig: Rig) -> None:
    job = job_in(rig, JobState.IDLE)
    rig.store.fail_with = StoreError("database is locked")
    with pytest.raises(StoreError, match="database is locked"):
        rig.lifecycle.start(job, trigger=Trigger.SCHEDULE)
    assert job.job_state is JobState.IDLE and job.active_runs == 0
    assert rig.logger.calls == []
    rig.store.fail_with = None
    rig.lifecycle.start(job, trigger=Trigger.SCHEDULE)  # and the machine still works
    assert job.job_state is JobState.RUNNING


def test_works_without_logger_and_audit() -> None:
    store = FakeStore()
    lc = Lifecycle(store, clock=FakeClock())  # type: ignore[arg-type]
    job = lc.model_for("quiet", enabled=False)
    lc.enable(job, user="frank")
    assert store.states == {"quiet": JobState.IDLE}


def test_with_the_real_memory_store_and_job_logger(tmp_path: Any) -> None:
    from jobfsm.joblog import JobLogger
    from jobfsm.store.memory import MemoryStore

    store, logger = MemoryStore(), JobLogger(tmp_path)
    try:
        lc = Lifecycle(store, clock=FakeClock(), announce=logger.on_event)
        job = lc.model_for("real", enabled=False)
        lc.persist_initial(job)
        assert store.get_state("real") is JobState.DISABLED
        lc.enable(job, user="gina")
        lc.start(job, trigger=Trigger.MANUAL, user="gina")
        lc.finish(job, Outcome.FAILED, reason="exit 2")
        assert store.get_state("real") is JobState.FAILED
    finally:
        logger.close()
    text = "".join(p.read_text() for p in tmp_path.iterdir() if p.name.startswith("scheduler_jobs"))
    for source, dest in [("disabled", "idle"), ("idle", "running"), ("running", "failed")]:
        assert f"{source} -> {dest}" in text


def test_the_job_log_writes_a_line_for_every_event_it_hears(tmp_path: Any) -> None:
    from jobfsm.joblog import JobLogger

    logger = JobLogger(tmp_path)
    logger.on_event(StateChanged("j", "enable", "disabled", "idle", "ana", T0))
    logger.close()
    assert "state disabled -> idle: event=enable user=ana" in (tmp_path / "scheduler_jobs.log").read_text()


# -- the table -----------------------------------------------------------------------------
def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def test_every_callback_name_in_the_table_resolves() -> None:
    job = JobModel("probe", JobState.IDLE)
    seen = set()
    for t in TRANSITIONS:
        for key in CALLBACK_KEYS:
            for name in _names(t.get(key)):
                assert callable(getattr(job, name, None)), f"{name!r} in {t} is not a JobModel method"
                seen.add(name)
    assert seen  # the table does name callbacks
    states = {s.value for s in JobState}
    for t in TRANSITIONS:
        assert set(_names(t["source"])) <= states, t
        assert t["dest"] is None or t["dest"] in states, t
    assert {t["trigger"] for t in TRANSITIONS} == set(EVENTS)


def test_machine_is_shared_and_models_stay_unregistered(rig: Rig) -> None:
    jobs = [job_in(rig, JobState.SUCCEEDED, name=f"j{i}") for i in range(3)]
    assert rig.lifecycle.machine.models == []
    assert not hasattr(jobs[0], "start") and not hasattr(jobs[0], "is_idle")
    assert set(rig.lifecycle.machine.events) == set(EVENTS)
    assert "initial" not in rig.lifecycle.machine.states  # no stray default state


def test_diagram_shows_every_transition_and_the_highlight(rig: Rig) -> None:
    text = rig.lifecycle.diagram()
    assert text.startswith("stateDiagram-v2\n")
    edges = {}
    for line in text.splitlines()[1:]:
        arrow, _, label = line.strip().partition(": ")
        source, _, dest = arrow.partition(" --> ")
        edges[(source, dest)] = label
    for t in TRANSITIONS:
        for source in _names(t["source"]):
            assert t["trigger"] in edges[(source, t["dest"] or source)], (source, t)
    assert "class" not in text
    lit = rig.lifecycle.diagram(JobState.RUNNING)
    assert lit.rstrip().endswith("class running current")
    assert "classDef current" in lit


# -- Property 13 ---------------------------------------------------------------------------
ACTIONS = st.sampled_from(["enable", "disable", "start", "succeed", "fail"])


# Property 13: lifecycle events are logged
@settings(max_examples=100, deadline=None)
@given(
    overlap=st.sampled_from(list(Overlap)),
    enabled=st.booleans(),
    actions=st.lists(st.tuples(ACTIONS, st.sampled_from([None, "ann"])), max_size=30),
)
def test_every_transition_is_logged_once(
    overlap: Overlap, enabled: bool, actions: list[tuple[str, str | None]]
) -> None:
    r = make_rig()
    job = r.lifecycle.model_for("p13", enabled=enabled)
    for event, user in actions:
        source = job.state
        logged = len(r.logger.calls)
        try:
            fire(r.lifecycle, job, event, user=user if event in ("enable", "disable", "start") else None,
                 overlap=overlap)
        except InvalidTransitionError:
            assert len(r.logger.calls) == logged
            continue
        assert len(r.logger.calls) == logged + 1
        call = r.logger.calls[-1]
        assert call == {
            "job": "p13", "event": event, "source": source, "dest": job.state,
            "user": user if event in ("enable", "disable", "start") else None,
        }


# -- stateful -------------------------------------------------------------------------------
RESTING_VALUES = {s.value for s in RESTING}
USERS = st.sampled_from([None, "ann", "ben"])


class LifecycleMachine(RuleBasedStateMachine):
    """The real Lifecycle beside a plain dict model of every job."""

    def __init__(self) -> None:
        super().__init__()
        self.rig = make_rig()
        self.jobs: list[JobModel] = []
        self.model: list[dict[str, Any]] = []
        self.expected_persisted: list[tuple[str, JobState, datetime]] = []
        self.expected_logs: list[dict[str, Any]] = []
        self.expected_audits: list[tuple[str, str, str]] = []

    @initialize(
        specs=st.lists(st.tuples(st.sampled_from(list(Overlap)), st.booleans()), min_size=1, max_size=4)
    )
    def create_jobs(self, specs: list[tuple[Overlap, bool]]) -> None:
        for i, (overlap, enabled) in enumerate(specs):
            job = self.rig.lifecycle.model_for(f"job-{i}", enabled=enabled)
            self.rig.lifecycle.persist_initial(job)
            self.expected_persisted.append((job.name, job.job_state, self.rig.clock.now()))
            self.jobs.append(job)
            self.model.append({
                "state": "idle" if enabled else "disabled", "runs": 0, "pending": False,
                "overlap": overlap,
            })

    # the reference: what each event should do, as plain if/else on the dict
    def _expect(self, m: dict[str, Any], event: str, outcome: str = "") -> dict[str, Any] | None:
        m = dict(m)
        state = m["state"]
        if event == "enable":
            if state == "disabled":
                m["state"] = "idle"
            elif state == "running" and m["pending"]:
                m["pending"] = False
            else:
                return None
        elif event == "disable":
            if state in RESTING_VALUES:
                m["state"] = "disabled"
            elif state == "running" and not m["pending"]:
                m["pending"] = True
            else:
                return None
        elif event == "start":
            if state in RESTING_VALUES:
                m["state"], m["runs"] = "running", 1
            elif state == "running" and m["overlap"] is Overlap.ALLOW and not m["pending"]:
                m["runs"] += 1
            else:
                return None
        else:  # finish
            if state != "running":
                return None
            m["runs"] -= 1
            if m["runs"] == 0:
                m["state"] = "disabled" if m["pending"] else outcome
                m["pending"] = False
        return m

    def _apply(self, i: int, event: str, call: Any, user: str | None, outcome: str = "") -> None:
        i %= len(self.jobs)
        job, before = self.jobs[i], self.model[i]
        self.rig.clock.advance(1)
        expected = self._expect(before, event, outcome)
        if expected is None:
            snap = self.rig.snapshot(job)
            with pytest.raises(InvalidTransitionError, match=repr(job.name)):
                call(job)
            assert self.rig.snapshot(job) == snap
            return
        call(job)
        self.model[i] = expected
        source, dest = before["state"], expected["state"]
        if source != dest:
            self.expected_persisted.append((job.name, JobState(dest), self.rig.clock.now()))
        self.expected_logs.append(
            {"job": job.name, "event": event, "source": source, "dest": dest, "user": user}
        )
        if user is not None:
            self.expected_audits.append((user, event, job.name))

    @rule(i=st.integers(0, 3), user=USERS)
    def enable(self, i: int, user: str | None) -> None:
        self._apply(i, "enable", lambda j: self.rig.lifecycle.enable(j, user=user), user)

    @rule(i=st.integers(0, 3), user=USERS)
    def disable(self, i: int, user: str | None) -> None:
        self._apply(i, "disable", lambda j: self.rig.lifecycle.disable(j, user=user), user)

    @rule(i=st.integers(0, 3))
    def fire(self, i: int) -> None:
        self._apply(i, "start", lambda j: self.rig.lifecycle.start(
            j, trigger=Trigger.SCHEDULE, overlap=self.model[i % len(self.model)]["overlap"]), None)

    @rule(i=st.integers(0, 3), user=st.sampled_from(["ann", "ben"]))
    def manual_trigger(self, i: int, user: str) -> None:
        self._apply(
            i, "start", lambda j: self.rig.lifecycle.start(
                j, trigger=Trigger.MANUAL, user=user, overlap=self.model[i % len(self.model)]["overlap"]), user
        )

    @rule(i=st.integers(0, 3))
    def success(self, i: int) -> None:
        self._apply(i, "succeed", lambda j: self.rig.lifecycle.succeed(j, run_id=1), None, "succeeded")

    @rule(i=st.integers(0, 3))
    def failure(self, i: int) -> None:
        self._apply(i, "fail", lambda j: self.rig.lifecycle.fail(j, reason="exit 1"), None, "failed")

    @rule(i=st.integers(0, 3))
    def timeout(self, i: int) -> None:
        self._apply(
            i, "fail", lambda j: self.rig.lifecycle.finish(j, Outcome.TIMED_OUT), None, "failed"
        )

    @precondition(lambda self: bool(self.jobs))
    @rule(i=st.integers(0, 3), enabled=st.booleans())
    def reload(self, i: int, enabled: bool) -> None:
        job = self.jobs[i % len(self.jobs)]
        if job.enabled == enabled:
            snap = self.rig.snapshot(job)
            self.rig.lifecycle.sync(job, enabled=enabled)
            assert self.rig.snapshot(job) == snap  # agreeing: a no-op
        elif enabled:
            self.enable(i, None)
        else:
            self.disable(i, None)

    @invariant()
    def model_agrees(self) -> None:
        for job, m in zip(self.jobs, self.model, strict=True):
            assert (job.state, job.active_runs, job.disable_pending) == (
                m["state"], m["runs"], m["pending"]
            )
            # a job has at most one open run unless its overlap allows more
            assert job.active_runs <= 1 or m["overlap"] is Overlap.ALLOW
            assert (job.active_runs > 0) == (job.state == "running")
            # a disable pending exists only during a run
            assert not job.disable_pending or job.state == "running"

    @invariant()
    def side_effects_agree(self) -> None:
        r = self.rig
        assert r.store.calls == self.expected_persisted  # every state change persisted, only those
        for job in self.jobs:
            assert r.store.states[job.name] == job.job_state
        assert r.logger.calls == self.expected_logs  # every transition logged once
        assert [(a.user, a.event, a.job) for a in r.audits] == self.expected_audits
        assert r.lifecycle.machine.models == []


LifecycleMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None
)
TestLifecycleStateful = LifecycleMachine.TestCase


# -- memory and time -------------------------------------------------------------------------
class NullStore:
    def set_state(self, job: str, state: JobState, at: datetime) -> None:
        pass


def _drive(lc: Lifecycle, n: int) -> list[JobModel]:
    jobs = []
    for i in range(n):
        job = lc.model_for(f"job-{i:05d}", enabled=True)
        lc.start(job, trigger=Trigger.SCHEDULE)
        lc.succeed(job)
        jobs.append(job)
    return jobs


def test_ten_thousand_jobs_cost_little_memory() -> None:
    lc = Lifecycle(NullStore(), clock=FakeClock())  # type: ignore[arg-type]
    _drive(lc, 50)  # warm caches out of the measurement
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        jobs = _drive(lc, 10_000)
        gc.collect()
        per_job = (tracemalloc.get_traced_memory()[0] - base) / len(jobs)
    finally:
        tracemalloc.stop()
    assert all(j.job_state is JobState.SUCCEEDED for j in jobs)
    assert per_job < 1024, f"{per_job:.0f} bytes per job"
    assert lc.machine.models == []


def chunk_times(lc: Lifecycle, chunks: int, size: int) -> list[float]:
    """CPU seconds of each successive chunk of jobs created and driven on one Lifecycle
    (CPU time: other processes on the machine do not count)."""
    times = []
    for _ in range(chunks):
        t = time.process_time()
        _drive(lc, size)
        times.append(time.process_time() - t)
    return times


def test_time_grows_linearly_with_the_number_of_jobs() -> None:
    lc = Lifecycle(NullStore(), clock=FakeClock())  # type: ignore[arg-type]
    times = chunk_times(lc, chunks=30, size=1_000)
    # min, not mean: noise from a busy machine only ever adds time
    first, last = min(times[1:5]), min(times[-4:])
    # Linear: the 30,000th job costs what the 2,000th did. Registering with add_model makes
    # each new job scan every earlier one: its last chunks cost about three times its first.
    assert last < 1.8 * first, f"last chunks {last * 1e3:.0f} ms vs first {first * 1e3:.0f} ms"
    assert lc.machine.models == []
