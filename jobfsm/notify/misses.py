"""Which skipped fires are *missed* fires, read from the reason the scheduler records.

One place for the rule, used by the notifier, the metrics and ``jobfsm check`` alike (the reasons
are written by :mod:`jobfsm.daemon.policy` and :mod:`jobfsm.daemon.scheduler`; a test checks
each of them is read right). Missed: the daemon was down, the loop came late (the host was
suspended or overloaded), the overlap policy skipped a scheduled fire. Not missed: a start that
waits its turn (``overlap: queue``; it will run), a manual trigger refused, a paused job's fire
(the pause said so: nobody expected it to run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from jobfsm.model import Trigger


class MissCause(StrEnum):
    """Why fires did not run."""

    DOWN = "down"
    """The daemon was down when they were due (recorded at its next start-up)."""
    LATE = "late"
    """The daemon's loop came too late (suspended, overloaded, the store unavailable, a clock step)."""
    OVERLAP = "overlap"
    """The job's previous run was still going and the overlap policy skipped the fire."""


@dataclass(frozen=True, slots=True)
class Miss:
    cause: MissCause
    count: int | None
    """How many fires one record stands for (None: more than a year's worth, not counted)."""


_DOWN = re.compile(r"^missed while the daemon was down: (?:(\d+) fire\(s\)|fires) ")
_OVERLAP = re.compile(r"^run \S.* still running(?: and a fire already waits)? \(overlap: (?:skip|queue)\)$")


def miss_of(reason: str, trigger: Trigger | None = Trigger.SCHEDULE) -> Miss | None:
    """The missed fires a skipped record with this ``reason`` stands for, or None."""
    if trigger is not None and trigger is not Trigger.SCHEDULE:
        return None  # a manual start refused, a retry or catch-up waiting: no fire was missed
    down = _DOWN.match(reason)
    if down:
        return Miss(MissCause.DOWN, int(down.group(1)) if down.group(1) else None)
    if reason.startswith("missed: "):
        return Miss(MissCause.LATE, 1)
    if _OVERLAP.match(reason):
        return Miss(MissCause.OVERLAP, 1)
    return None
