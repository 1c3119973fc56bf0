"""The housekeeping timetable: monotonic intervals, steps due together run together, immune to
wall-clock steps."""

from __future__ import annotations

from jobfsm.daemon.timetable import Timetable
from tests.conftest import FakeClock


def _timetable(clock: FakeClock, ran: list[str]) -> Timetable:
    table = Timetable(clock)
    table.every(5.0, lambda: ran.append("beat"))
    table.every(10.0, lambda: ran.append("reap"))
    return table


def test_steps_due_together_run_in_one_wake_up() -> None:
    clock, ran = FakeClock(), []
    table = _timetable(clock, ran)
    assert table.seconds_until_next() == 5.0
    clock.advance(5.0)
    table.run_pending()
    assert ran == ["beat"] and table.seconds_until_next() == 5.0
    clock.advance(4.9)  # both fall due 0.1 s from now: they run now, together
    table.run_pending()
    assert ran == ["beat", "beat", "reap"]


def test_a_late_loop_runs_each_step_once_not_once_per_missed_interval() -> None:
    clock, ran = FakeClock(), []
    table = _timetable(clock, ran)
    clock.advance(60)
    table.run_pending()
    assert ran == ["beat", "reap"]
    assert table.seconds_until_next() == 5.0


def test_wall_clock_steps_neither_stall_nor_bunch_the_steps() -> None:
    """The wall clock stepped an hour back, then two forward: the steps keep their pace."""
    clock, ran = FakeClock(), []
    table = _timetable(clock, ran)
    for hours in (-1, 2):
        clock.step(hours=hours)
        assert table.seconds_until_next() <= 5.0, f"a {hours} h step stalled the timetable"
    for _ in range(4):
        clock.advance(table.seconds_until_next())
        table.run_pending()
    assert ran.count("beat") == 4 and ran.count("reap") == 2
