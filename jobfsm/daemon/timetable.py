"""The daemon's housekeeping timetable: steps at fixed intervals of the monotonic clock.

The intervals are durations (heartbeat every 5 s, prune every hour), so they are counted on
``clock.monotonic()``: a step of the wall clock, forward or back, neither stalls them nor makes
them bunch up. (The ``schedule`` library, used here before, computes its times from the wall
clock's ``datetime.now()``: an hour back meant an hour without reloads, triggers or heartbeats.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jobfsm.clock import Clock


@dataclass(eq=False, slots=True)
class _Step:
    interval: float
    action: Callable[[], object]
    due: float


class Timetable:
    """Run each step every ``interval`` seconds; one step, the tick, sets the pace: a step due
    less than a tick before the next tick waits for it, so an idle daemon wakes once a tick."""

    def __init__(self, clock: Clock, *, tick: float, on_tick: Callable[[], object]) -> None:
        self._clock = clock
        self._tick = _Step(tick, on_tick, clock.monotonic() + tick)
        self._steps = [self._tick]

    def every(self, interval: float, action: Callable[[], object]) -> None:
        self._steps.append(_Step(interval, action, self._clock.monotonic() + interval))

    def run_pending(self) -> None:
        """Run the steps that are due, each once, however late the loop is."""
        now = self._clock.monotonic()
        for step in self._steps:
            if step.due <= now:
                # From now, not from the missed due time: a late loop runs a step once, not once
                # for every interval it missed.
                step.due = now + step.interval
                step.action()

    def seconds_until_next(self) -> float:
        wake = min(step.due for step in self._steps)
        tick = self._tick.due
        if wake < tick <= wake + self._tick.interval:
            wake = tick
        return max(wake - self._clock.monotonic(), 0.0)
