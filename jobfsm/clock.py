"""The clock, injected everywhere time matters, so tests can walk through months in milliseconds.

Wall time (:meth:`Clock.now`) is always timezone-aware UTC; waiting uses
:meth:`Clock.wait`, which a fake clock can short-circuit.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Waitable(Protocol):
    """What a clock waits on: a ``threading.Event``, or the daemon's :class:`~jobfsm.daemon.waker.Waker`."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for measuring durations)."""
        ...

    def wait(self, event: Waitable, timeout: float | None) -> bool:
        """Block until ``event`` is set or ``timeout`` seconds passed; True if it was set."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: Waitable, timeout: float | None) -> bool:
        return event.wait(timeout)


def iso(dt: datetime | None) -> str | None:
    """``dt`` as ISO 8601 with its offset (what every ``--format json`` shows), or None."""
    return dt.isoformat() if dt is not None else None


def duration_text(seconds: float) -> str:
    """A run's duration as the CLI and the admin page show it: ``3.4ms``, ``250ms``, ``1.50s``,
    ``2m05s``, ``2h01m`` (a run of a few milliseconds must not read as ``0.00s``, as if nothing ran)."""
    if seconds < 1:
        return f"{seconds * 1000:.1f}ms" if seconds < 0.01 else f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def utc(dt: datetime) -> datetime:
    """``dt`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)
