"""The scheduler's side of a burst of starts, in one object: while the runner starts runs, the
results that come back wait (a bounded time) rather than compete with the starts for the GIL,
and the fires of a burst are claimed in chunks that grow, so that a burst costs few commits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

from jobfsm.clock import Clock
from jobfsm.daemon.unit import DISPATCH_CHUNK
from jobfsm.runs.runner import Runner

MAX_RESULT_HOLD_SECONDS = 3.0
"""Finished runs wait at most about this long while a burst of runs is being started."""
FIRST_CHUNK = 4
"""The first chunk of a burst is small, so that its runs start soon; each next one is 4 times larger."""


class Burst:
    """When results wait for the starts, and how the starts of a burst are chunked."""

    def __init__(self, runner: Runner, clock: Clock) -> None:
        self._runner = runner
        self._clock = clock
        self._held_since: float | None = None
        """clock.monotonic() since when finished runs wait for the runner to finish starting."""

    def starts(self) -> AbstractContextManager[None]:
        """Around the starts of one burst (the runner handles runs that end meanwhile after it)."""
        return self._runner.burst()

    def chunks(self, total: int) -> Iterator[tuple[int, int]]:
        """``(first, end)`` of each chunk of ``total`` fires; between chunks, runs that ended
        free their slots for the next ones."""
        done, size = 0, FIRST_CHUNK
        while done < total:
            end = min(done + size, total)
            yield done, end
            self._runner.collect()
            done, size = end, min(size * 4, DISPATCH_CHUNK)

    def wake_for_result(self) -> bool:
        """Should a result that came back wake the loop? Not while the runner starts runs: it
        wakes the loop when it is done."""
        return not self._runner.starting()

    def hold_results(self, *, stopping: bool) -> bool:
        """Should finished runs wait now? While the runner starts runs, for at most
        ``MAX_RESULT_HOLD_SECONDS`` (the runner wakes the loop when it is done); never at
        shutdown."""
        if not stopping and self._runner.starting():
            now = self._clock.monotonic()
            if self._held_since is None:
                self._held_since = now
            if now - self._held_since < MAX_RESULT_HOLD_SECONDS:
                return True
        self._held_since = None
        return False
