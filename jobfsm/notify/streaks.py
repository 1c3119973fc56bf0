"""Which events are worth telling, per job: the pure decision that keeps alerts from storming.

A job failing every minute is told once (``failure`` at the start of the failing streak) and
once more when it recovers (``recovery`` at the first success after it). A lost run is always
told (``lost``: a node died) and counts as a failure of the streak. Missed fires are told once
per streak of misses; a run that starts ends the streak. Nothing here sends or reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobfsm.model import NotifyEvent, Outcome


@dataclass(slots=True)
class Streaks:
    failing: set[str] = field(default_factory=set)
    """Jobs whose last run failed (seeded at start-up from the store's job states)."""
    missing: set[str] = field(default_factory=set)
    """Jobs that missed fires since their last start."""

    def finished(self, job: str, outcome: Outcome) -> NotifyEvent | None:
        """A run ended: ``failure`` if it starts a failing streak, ``recovery`` if it ends one."""
        if outcome is Outcome.SUCCEEDED:
            if job in self.failing:
                self.failing.discard(job)
                return NotifyEvent.RECOVERY
            return None
        if job in self.failing:
            return None
        self.failing.add(job)
        return NotifyEvent.FAILURE

    def lost(self, job: str) -> NotifyEvent:
        self.failing.add(job)
        return NotifyEvent.LOST

    def missed(self, job: str) -> NotifyEvent | None:
        """Fires were missed: ``missed`` if that starts a streak of misses."""
        if job in self.missing:
            return None
        self.missing.add(job)
        return NotifyEvent.MISSED

    def started(self, job: str) -> None:
        self.missing.discard(job)

    def forget(self, job: str) -> None:
        self.failing.discard(job)
        self.missing.discard(job)
