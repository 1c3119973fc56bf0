"""The policy module's answers: run, skip with a reason, queue; retries; late fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobfsm import cron
from jobfsm.daemon import policy
from jobfsm.daemon.policy import Start, Verdict
from jobfsm.model import CatchUp, JobConfig, Overlap, Trigger

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def config(**fields: object) -> JobConfig:
    doc = {"name": "j", "schedule": "* * * * *", "command": "true", "working_directory": "/tmp",
           "enabled": True, **fields}
    return JobConfig.from_dict(doc)


@pytest.mark.parametrize(
    ("overlap", "trigger", "running", "fire_waiting", "verdict"),
    [
        ("skip", Trigger.SCHEDULE, 0, False, Verdict.RUN),
        ("skip", Trigger.SCHEDULE, 1, False, Verdict.SKIP),
        ("skip", Trigger.MANUAL, 1, False, Verdict.SKIP),
        ("skip", Trigger.RETRY, 1, False, Verdict.QUEUE),
        ("skip", Trigger.CATCH_UP, 1, False, Verdict.QUEUE),
        ("queue", Trigger.SCHEDULE, 1, False, Verdict.QUEUE),
        ("queue", Trigger.SCHEDULE, 1, True, Verdict.SKIP),
        ("queue", Trigger.MANUAL, 1, True, Verdict.QUEUE),
        ("allow", Trigger.SCHEDULE, 3, True, Verdict.RUN),
    ],
    ids=lambda v: getattr(v, "value", str(v)),
)
def test_overlap_decisions(overlap: str, trigger: Trigger, running: int, fire_waiting: bool, verdict: Verdict) -> None:
    decision = policy.decide(config(overlap=overlap), Start(trigger, scheduled_for=T), enabled=True,
                             running=running, running_ids="7", fire_waiting=fire_waiting)
    assert decision.verdict is verdict
    if verdict in (Verdict.SKIP, Verdict.QUEUE):
        assert "7" in decision.reason, "the reason must name the run it met"


def test_a_disabled_job_ignores_fires_and_records_refused_triggers() -> None:
    assert policy.decide(config(), Start(Trigger.SCHEDULE, T), enabled=False, running=0).verdict is Verdict.IGNORE
    refused = policy.decide(config(), Start(Trigger.MANUAL), enabled=False, running=0)
    assert refused.verdict is Verdict.SKIP and "enable it before triggering" in refused.reason


@given(
    overlap=st.sampled_from(list(Overlap)), trigger=st.sampled_from(list(Trigger)),
    enabled=st.booleans(), running=st.integers(0, 3), keyed=st.booleans(),
)
def test_a_plain_start_is_one_the_policy_runs(overlap: Overlap, trigger: Trigger, enabled: bool, running: int, keyed: bool) -> None:
    """The batched claim path (is_plain) never takes a fire the policy would skip or queue."""
    cfg, start = config(overlap=overlap.value), Start(trigger, scheduled_for=T if keyed else None)
    if policy.is_plain(cfg, start, enabled=enabled, running=running):
        assert policy.decide(cfg, start, enabled=enabled, running=running).verdict is Verdict.RUN


def test_retries_are_due_after_their_delay_while_attempts_remain() -> None:
    cfg = config(retries=2, retry_delay_seconds=30)
    assert policy.retry_due(cfg, attempt=0, succeeded=False, enabled=True, now=T) == T + timedelta(seconds=30)
    assert policy.retry_due(cfg, attempt=1, succeeded=False, enabled=True, now=T) is not None
    assert policy.retry_due(cfg, attempt=2, succeeded=False, enabled=True, now=T) is None
    assert policy.retry_due(cfg, attempt=0, succeeded=True, enabled=True, now=T) is None
    assert policy.retry_due(cfg, attempt=0, succeeded=False, enabled=False, now=T) is None


@given(catch_up=st.sampled_from(list(CatchUp)), late_minutes=st.integers(0, 300),
       schedule=st.sampled_from(["* * * * *", "*/7 * * * *", "0 * * * *"]))
def test_late_fires_account_for_every_due_fire(catch_up: CatchUp, late_minutes: int, schedule: str) -> None:
    """Every fire due by now is either started or recorded as skipped with a reason (the newest
    MAX_CATCH_UP of them), exactly once; the newest always runs."""
    cfg = config(schedule=schedule, catch_up=catch_up.value)
    fire = cron.next_fire(schedule, "UTC", T)
    now = fire + timedelta(minutes=late_minutes, seconds=5)
    late = policy.late_fires(cfg, fire, now, why="a test")
    due = [fire, *cron.fires_between(schedule, "UTC", fire, now)]
    kept = due[-policy.MAX_CATCH_UP:]
    handled = [s.scheduled_for for s in late.starts] + [s.scheduled_for for s, _ in late.skips]
    assert sorted(handled) == kept and late.due == len(due)
    assert late.starts[-1].scheduled_for == due[-1]
    if catch_up is CatchUp.ALL:
        assert not late.skips
    else:
        assert len(late.starts) == 1 and all("a test" in reason for _, reason in late.skips)


@pytest.mark.parametrize(
    ("catch_up", "runs", "record"),
    [("none", [], 59), ("latest", [59], 58), ("all", list(range(59 - 99, 60)), 59 - 100)],
    ids=["none", "latest", "all"],
)
def test_fires_missed_while_down_run_per_catch_up_and_the_rest_are_said_once(
    catch_up: str, runs: list[int], record: int
) -> None:
    """Down for six hours, an every-minute job: only the newest fires are even looked at."""
    cfg = config(catch_up=catch_up)
    last = T - timedelta(hours=6)
    missed = policy.catch_up(cfg, last, T)
    assert missed is not None and missed.first == last + timedelta(minutes=1)
    newest = T - timedelta(minutes=1)
    assert missed.run == [newest - timedelta(minutes=59 - m) for m in runs]
    assert missed.record == newest - timedelta(minutes=59 - record)
    assert missed.count in (None, 360 - 1)  # counted only when the look-back reached ``last``


def test_nothing_missed_when_the_next_fire_is_not_due_yet() -> None:
    assert policy.catch_up(config(schedule="0 0 * * *"), T - timedelta(hours=1), T) is None
