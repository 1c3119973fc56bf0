"""Fire times: a schedule's wall times mapped to real instants in its zone, and what DST does.

DST policy
    The expression is evaluated over **naive local wall-clock times** in the job's time zone,
    and each wall time is then mapped to real instants:

    - a wall time that exists once fires at that instant;
    - a wall time that does not exist (the spring-forward gap, e.g. 02:30 on
      2026-03-29 in Europe/Berlin) fires at the first instant after the gap, the transition
      itself (03:00 CEST). Several wall times in one gap map to that same instant and it
      fires **once**;
    - a wall time that happens twice (the fall-back fold) fires at its first occurrence only,
      so a daily ``30 2 * * *`` job runs once on that day too. The exception is a schedule
      whose hour field starts with ``*`` (``*``, ``*/2``): it fires at both occurrences, so
      ``*/15 * * * *`` and ``0 * * * *`` keep firing every real interval through the repeated
      hour and never fire twice at one instant.

    :attr:`Fire.note` says in words what DST did to a fire; ``jobfsm next`` and the admin
    page show it.

How a next fire is found
    Far from any transition (one UTC offset over the wall time of ``after`` +-6 h, four
    ``utcoffset`` calls) the next fire is the next matching wall time after the wall time of
    ``after``, mapped: one bisect in each of two sorted tuples and a few ``date`` checks.
    Within 3 hours of a transition wall time is not monotonic, so the search starts early
    enough (at ``after`` read with the smaller of its own offset and the one 3 h later, which
    reaches back over a coming fold), maps every wall time, and returns the smallest instant
    strictly after ``after``; it stops once first occurrences, which only grow with the wall
    time, pass it. :func:`iter_fires` and :func:`fires_between` are repeated :func:`next_fire`,
    so the three always agree. croniter's ``get_next`` re-copies its parsing state on every
    call, several times slower than this search (a daemon's start-up with 10,000 jobs would
    take seconds).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from jobfsm import zones
from jobfsm.cron.spec import EARLIEST, LATEST, Expansion, out_of_range
from jobfsm.cron.syntax import expand
from jobfsm.errors import CronError

_NEAR = timedelta(hours=3)  # longer than any DST shift
_FAR = 2 * _NEAR


@dataclass(frozen=True)
class Fire:
    """One fire of a schedule."""

    at: datetime
    """The real instant, aware, in the job's zone (compare through ``timestamp()``)."""
    wall: datetime
    """The naive local time the expression asked for (in a DST gap it differs from ``at``)."""
    note: str | None = None
    """``None``, or in words what DST did to this fire."""


@functools.lru_cache(maxsize=1024)
def _zone_named(name: str) -> ZoneInfo:
    found = zones.find_zone(name)
    if found is None:
        raise CronError(zones.unknown_zone(name))
    return found


def zone(tz: str | tzinfo) -> tzinfo:
    """``tz`` as a tzinfo (names are looked up once and cached); CronError for unknown names."""
    return _zone_named(tz) if isinstance(tz, str) else tz


def _offset_at(tz: tzinfo, instant: datetime) -> timedelta:
    """The UTC offset in force at ``instant`` (naive UTC)."""
    offset = instant.replace(tzinfo=UTC).astimezone(tz).utcoffset()
    assert offset is not None
    return offset


def _transition(tz: tzinfo, start: datetime, end: datetime) -> datetime:
    """The first instant (naive UTC, whole second) in (start, end] whose offset differs from start's."""
    before = _offset_at(tz, start)
    low, high = start, end
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            middle = low + timedelta(seconds=1)
        if _offset_at(tz, middle) == before:
            low = middle
        else:
            high = middle
    return high


def _hhmm(wall: datetime) -> str:
    return wall.strftime("%H:%M")


def _fires_at(spec: Expansion, tz: tzinfo, wall: datetime) -> list[tuple[datetime, Fire]]:
    """The instants (naive UTC) at which the wall time ``wall`` fires, with their Fires."""
    offset = tz.utcoffset(wall)  # a naive datetime is read as a wall time, fold 0 ...
    later_offset = tz.utcoffset(wall.replace(fold=1))  # ... or fold 1
    assert offset is not None and later_offset is not None
    instant = wall - offset
    if offset == later_offset:
        return [(instant, Fire(wall.replace(tzinfo=tz), wall))]
    name = getattr(tz, "key", str(tz))
    day = wall.date().isoformat()
    if instant.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None) != wall:
        # A gap: the wall time does not exist. Fire at the transition, the first instant after.
        start, end = sorted((wall - offset, wall - later_offset))
        switch = _transition(tz, start, end)
        at = switch.replace(tzinfo=UTC).astimezone(tz)
        note = (
            f"{_hhmm(wall)} does not exist on {day} in {name} (clocks jump from "
            f"{_hhmm(switch + _offset_at(tz, start))} to {_hhmm(at)}); "
            f"runs at {_hhmm(at)} {at.tzname()}"
        )
        return [(switch, Fire(at, wall, note))]
    # A fold: the wall time happens twice; ``instant`` is the first occurrence.
    at = instant.replace(tzinfo=UTC).astimezone(tz)
    repeat = wall - later_offset
    if not spec.wildcard_hour:
        switch = _transition(tz, instant, repeat)
        note = (
            f"{_hhmm(wall)} happens twice on {day} in {name} (clocks go back at "
            f"{_hhmm(switch + offset)}); runs once, at the first ({at.tzname()})"
        )
        return [(instant, Fire(at, wall, note))]
    note = (
        f"second {_hhmm(wall)} of the day (clocks went back); the schedule keeps its real interval"
    )
    return [
        (instant, Fire(at, wall)),
        (repeat, Fire(repeat.replace(tzinfo=UTC).astimezone(tz), wall, note)),
    ]


_EARLIEST_NAIVE, _LATEST_NAIVE = EARLIEST.replace(tzinfo=None), LATEST.replace(tzinfo=None)


def _aware_utc(when: datetime, what: str) -> datetime:
    """``when`` as a naive UTC datetime; naive input is refused (it has no instant), and so is
    one outside :data:`EARLIEST` .. :data:`LATEST` (:class:`FireTimeRangeError`)."""
    offset = when.utcoffset()
    if offset is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, not naive {when!r}")
    try:
        instant = when.replace(tzinfo=None) - offset
    except OverflowError:
        raise out_of_range() from None
    if not _EARLIEST_NAIVE <= instant <= _LATEST_NAIVE:
        raise out_of_range()
    return instant


def _next(spec: Expansion, tz: tzinfo, after: datetime) -> tuple[datetime, Fire]:
    """The first fire strictly after ``after`` (naive UTC), with its instant (naive UTC)."""
    if after > _LATEST_NAIVE:  # iterating on from a fire late in the last year
        raise out_of_range(spec.expression)
    guess = tz.utcoffset(after)  # ``after`` read as a wall time: close to its real offset
    assert guess is not None
    wall = after + guess
    if tz.utcoffset(wall) == guess == tz.utcoffset(wall - _FAR) == tz.utcoffset(wall + _FAR):
        # The fast path. With one offset over wall +-6 h there is no transition within 3 h
        # of ``after`` (a DST shift is under 3 h), so ``wall`` is its exact wall time, and the
        # next matching wall time maps to the next fire (if it is far away, into a gap or
        # fold, its first mapping is still the smallest).
        instant, fire = _fires_at(spec, tz, spec.next_wall(wall))[0]
        if instant > after:
            return instant, fire
    # Near a transition wall time is not monotonic. Start at the earliest wall time that can
    # still map to an instant after ``after`` (``after`` read with the smaller of its own
    # offset and the one 3 h later, so a coming fold is searched from its start), map every
    # wall time, keep the smallest instant after ``after``, and stop once first occurrences,
    # which only grow with the wall time, have passed it.
    wall = after + min(_offset_at(tz, after), _offset_at(tz, after + _NEAR))
    best: tuple[datetime, Fire] | None = None
    while True:
        wall = spec.next_wall(wall)
        candidates = _fires_at(spec, tz, wall)
        for instant, fire in candidates:
            if instant > after and (best is None or instant < best[0]):
                best = instant, fire
        if candidates[0][0] > after:
            assert best is not None
            return best


def next_fire(expr: str, tz: str | tzinfo, after: datetime) -> datetime:
    """The first fire strictly after the aware ``after``, aware, in the zone ``tz``."""
    return _next_fire_at(expr, zone(tz), _aware_utc(after, "after"))


@functools.lru_cache(maxsize=256)
def _next_fire_at(expr: str, tz: tzinfo, instant: datetime) -> datetime:
    """:func:`next_fire` for a naive UTC instant (never an aware time: two wall times of a DST
    fold compare equal). Cached because the daemon asks the same question for every job that
    shares an expression and a zone: at start-up, all after the same moment; after a burst,
    all after the same second."""
    return _next(expand(expr), tz, instant)[1].at


def iter_fires(expr: str, tz: str | tzinfo, after: datetime) -> Iterator[Fire]:
    """Every fire strictly after ``after``, ascending and distinct, without end."""
    spec, where = expand(expr), zone(tz)
    instant = _aware_utc(after, "after")
    while True:
        instant, fire = _next(spec, where, instant)
        yield fire


def fires_between(
    expr: str, tz: str | tzinfo, start: datetime, end: datetime, limit: int | None = None
) -> list[datetime]:
    """The fires ``f`` with ``start < f <= end``, ascending, at most ``limit`` of them."""
    spec, where = expand(expr), zone(tz)
    instant, stop = _aware_utc(start, "start"), _aware_utc(end, "end")
    out: list[datetime] = []
    while limit is None or len(out) < limit:
        instant, fire = _next(spec, where, instant)
        if instant > stop:
            break
        out.append(fire.at)
    return out
