"""The housekeeping timetable: monotonic intervals, one wake-up a tick, immune to wall-clock steps."""

from __future__ import annotations

from jobfsm.daemon.timetable import Timetable
from tests.conftest import FakeClock


def _timetable(clock: FakeClock, ran: list[str]) -> Timetable:
    table = Timetable(clock, tick=1.0, on_tick=lambda: ran.append("tick"))
    table.every(5.0, lambda: ran.append("beat"))
    return table


def test_a_step_due_just_before_the_tick_waits_for_it_and_the_tick_is_never_delayed() -> None:
    """An idle daemon wakes once a second: a heartbeat due 0.4 s before the tick waits for the
    tick, nothing waits longer than one tick, and the tick itself is never delayed."""
    clock, ran = FakeClock(), []
    table = _timetable(clock, ran)
    clock.advance(4.6)
    table.run_pending()  # the tick now comes at 5.6; the heartbeat is due at 5.0
    assert table.seconds_until_next() == 1.0, "the heartbeat did not wait for the tick"
    clock.advance(1.0)
    table.run_pending()
    assert ran == ["tick", "tick", "beat"]
    assert table.seconds_until_next() == 1.0, "the tick was delayed"


def test_a_late_loop_runs_each_step_once_not_once_per_missed_interval() -> None:
    clock, ran = FakeClock(), []
    table = _timetable(clock, ran)
    clock.advance(60)
    table.run_pending()
    assert ran == ["tick", "beat"]
    assert 0.9 < table.seconds_until_next() <= 1.0


def test_wall_clock_steps_neither_stall_nor_bunch_the_steps() -> None:
    """The wall clock stepped an hour back, then two forward: the steps keep their pace."""
    clock, ran = FakeClock(), []
    table = _timetable(clock, ran)
    for hours in (-1, 2):
        clock.step(hours=hours)
        assert table.seconds_until_next() <= 1.0, f"a {hours} h step stalled the timetable"
    for _ in range(10):
        clock.advance(table.seconds_until_next())
        table.run_pending()
    assert ran.count("tick") == 10 and ran.count("beat") == 2
