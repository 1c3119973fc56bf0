"""What is worth telling: failing streaks, recoveries, lost runs, streaks of missed fires, and
which skipped fires are missed ones (read from the reasons the scheduler really records)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.model import NotifyEvent, Outcome, RunStatus, Trigger
from jobfsm.notify.misses import MissCause, miss_of
from jobfsm.notify.streaks import Streaks
from tests.scheduler_support import MINUTE, Rig


# Property: notification streaks
@settings(max_examples=200)
@given(outcomes=st.lists(st.sampled_from(list(Outcome)), max_size=40),
       failing_before=st.booleans())
def test_one_failure_at_the_start_of_each_failing_streak_and_one_recovery_at_its_end(
    outcomes: list[Outcome], failing_before: bool
) -> None:
    streaks = Streaks(failing={"j"} if failing_before else set())
    told = [(i, e) for i, o in enumerate(outcomes) if (e := streaks.finished("j", o)) is not None]
    expected: list[tuple[int, NotifyEvent]] = []
    i = 0
    for failed, group in itertools.groupby(outcomes, key=lambda o: o is not Outcome.SUCCEEDED):
        size = len(list(group))
        if failed and not (i == 0 and failing_before):
            expected.append((i, NotifyEvent.FAILURE))  # killed, timed out, not started: failures too
        if failed and i + size < len(outcomes):
            expected.append((i + size, NotifyEvent.RECOVERY))
        if not failed and i == 0 and failing_before:
            expected.append((0, NotifyEvent.RECOVERY))  # a streak that began before the daemon started
        i += size
    assert told == sorted(expected)


def test_a_lost_run_is_told_and_joins_the_failing_streak() -> None:
    streaks = Streaks()
    assert streaks.lost("j") is NotifyEvent.LOST
    assert streaks.finished("j", Outcome.FAILED) is None
    assert streaks.finished("j", Outcome.SUCCEEDED) is NotifyEvent.RECOVERY


def test_misses_are_told_once_per_streak_and_a_start_ends_it() -> None:
    streaks = Streaks()
    assert [streaks.missed("j") for _ in range(3)] == [NotifyEvent.MISSED, None, None]
    assert streaks.missed("k") is NotifyEvent.MISSED
    streaks.started("j")
    assert streaks.missed("j") is NotifyEvent.MISSED


def test_the_reasons_the_scheduler_records_are_read_right(tmp_path: Path) -> None:
    """Overlap skips, a full queue, a late loop and downtime are misses; a waiting start is not."""
    (tmp_path / "a").mkdir()
    (tmp_path / "q").mkdir()
    rig = Rig(tmp_path / "a", "sqlite://", 1)
    queued = Rig(tmp_path / "q", "sqlite://", 1, overlap="queue")
    waiting = []
    try:
        for r in (rig, queued):
            r.at(MINUTE)  # the run starts and is held
            r.at(MINUTE + timedelta(minutes=1))
            r.at(MINUTE + timedelta(minutes=2))
            waiting += [run for run in r.runs() if run.message.startswith("queued behind")]
            r.at(MINUTE + timedelta(minutes=6))  # four fires due at once: the loop was late
            r.runner.finish(r.runner.tickets, r.clock.now())
            r.scheduler.apply_results()
            r.restart()
        rig.clock.advance(minutes=30)
        rig.restart()
        got = {(r.message.split(":")[0][:30], miss_of(r.message, r.trigger))
               for r in rig.runs() + queued.runs() if r.status is RunStatus.SKIPPED}
        causes = {m.cause for _, m in got if m is not None}
        assert causes == {MissCause.OVERLAP, MissCause.LATE, MissCause.DOWN}, got
        assert waiting and all(miss_of(r.message, r.trigger) is None for r in waiting)
        down = [r for r in rig.runs() if r.message.startswith("missed while the daemon was down")]
        miss = miss_of(down[-1].message, down[-1].trigger)
        assert miss is not None and miss.count == 29, down[-1].message
    finally:
        rig.close()
        queued.close()


@pytest.mark.parametrize(("reason", "trigger", "missed"), [
    ("run 4 still running (overlap: skip)", Trigger.MANUAL, False),
    ("job 'a' is disabled; enable it before triggering it", Trigger.MANUAL, False),
    ("paused until 2026-01-02T00:00:00+00:00: maintenance", Trigger.SCHEDULE, False),
    ("missed while the daemon was down: fires from A to B did not run (catch_up: none)", Trigger.SCHEDULE, True),
], ids=["manual-refused", "disabled", "paused", "uncounted-downtime"])
def test_what_is_not_a_missed_fire(reason: str, trigger: Trigger, missed: bool) -> None:
    assert (miss_of(reason, trigger) is not None) is missed
