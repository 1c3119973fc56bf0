"""The daemon's housekeeping timetable: steps at fixed intervals of the monotonic clock.

The intervals are durations (heartbeat every 5 s, prune every hour), so they are counted on
``clock.monotonic()``: a step of the wall clock, forward or back, neither stalls them nor makes
them bunch up. Steps that fall due close together run together, so an idle daemon wakes as
rarely as its most frequent step asks (see docs/architecture.md, "Threads and wake-ups").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jobfsm.clock import Clock

SLACK_SECONDS = 0.25
"""A step due this soon after another runs with it: one wake-up, not two."""


@dataclass(eq=False, slots=True)
class _Step:
    interval: float
    action: Callable[[], object]
    due: float


class Timetable:
    """Run each step every ``interval`` seconds, counted from when it last ran."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._steps: list[_Step] = []

    def every(self, interval: float, action: Callable[[], object]) -> None:
        self._steps.append(_Step(interval, action, self._clock.monotonic() + interval))

    def run_pending(self) -> None:
        """Run the steps that are due (or nearly), each once, however late the loop is."""
        now = self._clock.monotonic()
        for step in self._steps:
            if step.due <= now + SLACK_SECONDS:
                # From now, not from the missed due time: a late loop runs a step once, not once
                # for every interval it missed.
                step.due = now + step.interval
                step.action()

    def seconds_until_next(self) -> float:
        if not self._steps:
            return 3600.0
        return max(min(step.due for step in self._steps) - self._clock.monotonic(), 0.0)
