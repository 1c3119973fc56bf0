"""Cron math: strict five-field expressions, their next fire times, and what DST does to them.

Pure functions only. Nothing here reads the clock: every question comes with the instant it
is asked ``after``, so the scheduler, ``jobfsm next``, the loader and the admin page (all of
which use only this module for cron) can be tested by walking through years in milliseconds.

The language
    Exactly five fields, ``minute hour day-of-month month day-of-week``, separated by spaces or
    tabs, or one of the macros in :data:`MACROS` (any case). A field is a comma list of items:
    ``*``, a number, a name (``jan``-``dec``, ``sun``-``sat``, any case), a range ``a-b``, and
    any of those with a step ``/n`` (``*/15``, ``1-5/2``, ``5/15`` = ``5-59/15``). ``0`` and
    ``7`` are both Sunday. A range may wrap around its cycle (``22-2`` in hours is
    22,23,0,1,2; ``fri-mon``; ``nov-feb``), a step then keeps counting around the cycle. A
    sixth field (seconds, as croniter would read it) and the Quartz/Jenkins extensions (``L``,
    ``W``, ``#``, ``?``, ``H``) are errors, as is an expression that can never fire
    (``0 0 31 2 *``): the loader rejects these at load time rather than at 3 a.m.

Day-of-month and day-of-week follow Vixie cron exactly: when both fields are restricted a day
matches if *either* matches (``0 0 13 * fri`` fires on every 13th and every Friday, so
``0 0 31 2 mon`` is valid: Mondays in February); a field whose text starts with ``*``
(``*``, ``*/2``) counts as unrestricted, and then a day must match both.

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
    Within 3 hours of
    a transition wall time is not monotonic, so the search starts early enough (at ``after``
    read with the smaller of its own offset and the one 3 h later, which reaches back over a
    coming fold), maps every wall time, and returns the smallest instant strictly after
    ``after``; it stops once first occurrences, which only grow with the wall time, pass it.
    :func:`iter_fires` and :func:`fires_between` are repeated :func:`next_fire`, so the three
    always agree. Fire times are computed between :data:`EARLIEST` and :data:`LATEST` (a day
    inside what ``datetime`` represents, so no step can overflow); a question outside them, or
    a schedule whose next fire lies beyond them, raises :class:`FireTimeRangeError`.

Why not croniter's own parser and iterator
    croniter (a dependency, and the reference the tests check this module against) reads
    ``5-5`` as "every minute", steps a wrapped range off by one (``50-10/7`` gives minute 5,
    not 4), accepts the extensions above and a seconds field, and its ``get_next`` re-copies
    its parsing state on every call, several times slower than the search here (a daemon's
    start-up with 10,000 jobs would take seconds). So fields are expanded here into
    frozen sets (cached per expression, thread-safe because nothing is mutated), and the
    next wall time is searched directly over them.

Times: ``after`` must be timezone-aware. Results are aware datetimes in the job's zone with
``fold`` set correctly. Python compares and subtracts two datetimes that share a ``tzinfo``
by their wall times, ignoring ``fold`` (02:00 CET then compares *equal* to 02:00 CEST), so
compare fires through :meth:`datetime.timestamp` or :func:`jobfsm.clock.utc`, never directly.
"""

from __future__ import annotations

import functools
import logging
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobfsm.errors import CronError, FireTimeRangeError

log = logging.getLogger(__name__)

MACROS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
"""The macros jobfsm accepts (case-insensitive) and the five-field form each stands for."""

FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")

_FIVE = "exactly five (minute hour day-of-month month day-of-week)"
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_TITLES = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: leap years count
_ITEM = re.compile(r"(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/([0-9]+))?", re.ASCII)
_EXTENSION = re.compile(r"[#?]|\A(?:l|lw|h)(?:\Z|[(/-])|\A\d+[lw]\Z|\Aw\d+\Z", re.ASCII)
_SPLIT = re.compile(r"[ \t]+")
_ONE_MINUTE = timedelta(minutes=1)
_ONE_DAY = timedelta(days=1)
_NEAR = timedelta(hours=3)  # longer than any DST shift
_FAR = 2 * _NEAR
_SEARCH_YEARS = 400
EARLIEST = datetime(1, 1, 3, tzinfo=UTC)
"""The earliest instant fires are computed after: two days of margin, for UTC offsets and the
six hours the DST search reads around a time."""
LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The latest instant fires are computed after (and the last year a fire may fall in, ending a
year early: local times of 9999 plus the offset would leave what ``datetime`` represents)."""
_CACHE_SIZE = 32768


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int  # the highest value ``*`` covers
    top: int  # the highest value one may write (7 for Sunday in day-of-week)
    names: tuple[str, ...] = ()
    first_name_value: int = 0


_FIELDS = (
    _Field("minute", 0, 59, 59),
    _Field("hour", 0, 23, 23),
    _Field("day-of-month", 1, 31, 31),
    _Field("month", 1, 12, 12, _MONTHS, 1),
    _Field("day-of-week", 0, 6, 7, _WEEKDAYS, 0),
)


@dataclass(frozen=True)
class Fire:
    """One fire of a schedule."""

    at: datetime
    """The real instant, aware, in the job's zone (compare through ``timestamp()``)."""
    wall: datetime
    """The naive local time the expression asked for (in a DST gap it differs from ``at``)."""
    note: str | None = None
    """``None``, or in words what DST did to this fire."""


@dataclass(frozen=True, slots=True)
class _Spec:
    """A validated expression, expanded: immutable, cached, shared between threads."""

    expression: str  # the five-field form (macros expanded, lower case)
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_or: bool  # Vixie: both day fields restricted, so either one matching is enough
    wildcard_hour: bool

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = day.isoweekday() % 7 in self.weekdays
        return (in_days or in_weekdays) if self.day_or else (in_days and in_weekdays)

    def next_wall(self, after: datetime) -> datetime:
        """The first naive wall time strictly after ``after`` that the expression matches."""
        hour, minute = after.hour, after.minute + 1  # fires are whole minutes
        if minute == 60:
            hour, minute = hour + 1, 0
        day = after.date()
        if hour < 24 and self.day_matches(day):
            hours, minutes = self.hours, self.minutes
            i = bisect_left(hours, hour)
            if i < len(hours) and hours[i] == hour:
                j = bisect_left(minutes, minute)
                if j < len(minutes):
                    return datetime(day.year, day.month, day.day, hour, minutes[j])
                i += 1
            if i < len(hours):
                return datetime(day.year, day.month, day.day, hours[i], minutes[0])
        day = self._next_day(day + _ONE_DAY)
        return datetime(day.year, day.month, day.day, self.hours[0], self.minutes[0])

    def _next_day(self, day: date) -> date:
        limit = day.year + _SEARCH_YEARS
        while True:
            if day.year > LATEST.year:
                raise _out_of_range(self.expression)
            if day.month not in self.months:
                year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
                if year > limit:
                    raise CronError(
                        f"cron expression {self.expression!r} does not fire within "
                        f"{_SEARCH_YEARS} years; check its day and month fields",
                        field="day-of-month",
                    )
                day = date(year, month, 1)
                continue
            if self.day_matches(day):
                return day
            day += _ONE_DAY


# ---------------------------------------------------------------------------------------
# Parsing and validation


def _fail(field: _Field, text: str, problem: str) -> CronError:
    return CronError(f"{field.name} field {text!r} {problem}", field=field.name)


def _value(field: _Field, text: str, item: str, token: str) -> int:
    if token.isdigit():
        value = int(token)
        if not field.low <= value <= field.top:
            bounds = f"({field.low}-{field.top}{', 0 and 7 are Sunday' if field.top == 7 else ''})"
            if token == text:
                raise _fail(field, text, f"is out of range {bounds}")
            raise _fail(field, text, f"has {value}, out of range {bounds}")
        return value
    if token in field.names:
        return field.names.index(token) + field.first_name_value
    shown = item if item.lower() == token else token
    if field.names:
        kind = "month" if field.name == "month" else "weekday"
        names = f"{field.names[0]}-{field.names[-1]}"
        raise _fail(
            field, text, f"has {shown!r}, which is neither a number nor a {kind} name ({names})"
        )
    raise _fail(field, text, f"has {shown!r}, which is not a number ({field.low}-{field.top})")


def _expand_item(field: _Field, text: str, item: str) -> set[int]:
    lowered = item.lower()
    match = _ITEM.fullmatch(lowered) if item.isascii() else None
    if match is None or (_EXTENSION.search(lowered) and not _is_name(field, match)):
        if _EXTENSION.search(lowered):
            raise _fail(
                field,
                text,
                f"uses {item!r}: the 'L', 'W', '#', '?' and 'H' extensions are not supported; "
                "use numbers, names, '*', ranges 'a-b', lists 'a,b' and steps '/n'",
            )
        raise _fail(
            field,
            text,
            f"has {item!r}, which is not a value; use a number, a name, '*', a range 'a-b', "
            "a list 'a,b' or a step '/n'",
        )
    star, first, last, step_text = match.groups()
    size = field.high - field.low + 1
    step = 1
    if step_text is not None:
        step = int(step_text)
        if not 1 <= step <= size:
            raise _fail(field, text, f"has step {step}; a {field.name} step is 1 to {size}")
    if star:
        return set(range(field.low, field.high + 1, step))
    low = _value(field, text, item, first)
    if last is None:
        if step_text is None:
            return {low % 7 if field.top == 7 else low}
        high = field.high  # '5/15' is '5-59/15'
    else:
        high = _value(field, text, item, last)
    if low <= high:
        values = set(range(low, high + 1, step))
    else:  # a range that wraps around the cycle ('fri-mon', '7-2'): count on past the top
        span = (high - low) % size
        values = {field.low + (low - field.low + k) % size for k in range(0, span + 1, step)}
    return {v % 7 for v in values} if field.top == 7 else values


def _is_name(field: _Field, match: re.Match[str]) -> bool:
    """Whether the item's words are all names of the field ('thu', 'jul' hold 'h', 'l')."""
    words = [w for w in match.group(2, 3) if w is not None and not w.isdigit()]
    return bool(words) and all(w in field.names for w in words)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _expand_field(index: int, text: str) -> frozenset[int]:
    """One field's values; cached on its own, since most fields repeat across jobs."""
    field = _FIELDS[index]
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _fail(
                field, text, "has an empty list item (two commas in a row, or one at an end)"
            )
        values |= _expand_item(field, text, item)
    return frozenset(values)


def _five_fields(expr: str) -> list[str]:
    if not isinstance(expr, str):
        raise CronError(f"a cron expression must be a string, not {type(expr).__name__}")
    text = expr.strip(" \t")
    if not text:
        raise CronError(
            f"the cron expression is empty; write {_FIVE} fields, or a macro like '@daily'"
        )
    if text.startswith("@"):
        if text.lower() in MACROS:
            text = MACROS[text.lower()]
        else:
            hint = " (jobfsm fires on a clock, not at boot)" if text.lower() == "@reboot" else ""
            raise CronError(
                f"unknown macro {expr!r}{hint}; use one of {', '.join(MACROS)}, or five fields"
            )
    fields = _SPLIT.split(text)
    if len(fields) != 5:
        count = len(fields)
        extra = ""
        if count == 6:
            extra = " — seconds are not supported"
        elif count == 7:
            extra = " — seconds and years are not supported"
        raise CronError(
            f"cron expression {expr!r} has {count} field{'s' * (count != 1)}; "
            f"jobfsm takes {_FIVE}{extra}"
        )
    return fields


def _never_fires(expr: str, days: frozenset[int], months: frozenset[int]) -> CronError:
    months_text = [_MONTH_TITLES[m - 1] for m in sorted(months)]
    days_sorted = [str(d) for d in sorted(days)]
    days_text = (
        days_sorted[0]
        if len(days_sorted) == 1
        else ", ".join(days_sorted[:-1]) + " or " + days_sorted[-1]
    )
    if len(months_text) == 1:
        why = f"{months_text[0]} has no day {days_text}"
    else:
        why = f"none of {', '.join(months_text)} has a day {days_text}"
    return CronError(
        f"cron expression {expr!r} never fires: {why}; choose days that exist in those "
        "months (February has 29 in leap years)",
        field="day-of-month",
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(expr: str) -> _Spec:
    fields = _five_fields(expr)
    minutes, hours, days, months, weekdays = (
        _expand_field(index, text) for index, text in enumerate(fields)
    )
    fields = [f.lower() for f in fields]
    days_star = fields[2].startswith("*")
    weekdays_star = fields[4].startswith("*")
    day_or = not days_star and not weekdays_star
    if weekdays_star and not any(d <= _DAYS_IN_MONTH[m - 1] for d in days for m in months):
        # Only a day-of-week field that starts with '*' makes the days a must; with any other
        # day-of-week the weekdays fire on their own (Vixie OR), and croniter's strict check,
        # which ignores day-of-week, would wrongly reject '0 0 31 2 mon'.
        raise _never_fires(expr, days, months)
    return _Spec(
        expression=" ".join(fields),
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=days,
        months=months,
        weekdays=weekdays,
        day_or=day_or,
        wildcard_hour=fields[1].startswith("*"),
    )


def validate_expression(expr: str) -> None:
    """Raise :class:`~jobfsm.errors.CronError` unless ``expr`` is a valid, firing expression.

    ``CronError.field`` names the field at fault (one of :data:`FIELD_NAMES`), or is ``None``
    when the expression as a whole is wrong (field count, unknown macro). Results are cached.
    """
    _compile(expr)


def is_wildcard_hour(expr: str) -> bool:
    """Whether the hour field starts with ``*``: such schedules fire in both halves of a fold."""
    return _compile(expr).wildcard_hour


@functools.lru_cache(maxsize=_CACHE_SIZE)
def describe(expr: str) -> str:
    """The expression in plain words ("At 02:30", "Every 15 minutes, Monday through Friday")."""
    from cron_descriptor import ExpressionDescriptor, Options

    spec = _compile(expr)
    options = Options()
    options.use_24hour_time_format = True
    try:
        descriptor = ExpressionDescriptor(spec.expression, options)
        text = descriptor.get_description()
        days_field, weekdays_field = spec.expression.split()[2::2]
        if not spec.day_or and days_field != "*" and weekdays_field != "*":
            # Vixie: a '*'-led day field makes the two an AND; cron_descriptor would say "or".
            alone = spec.expression.split()
            alone[2] = "*"
            weekdays = ExpressionDescriptor(" ".join(alone), options).get_day_of_week_description()
            text = (
                descriptor.get_time_of_day_description()
                + descriptor.get_day_of_month_description()
                + weekdays
                + descriptor.get_month_description()
            )
            text = text[:1].upper() + text[1:]
    except Exception:  # a describer failure must never break a valid schedule
        log.warning("cannot describe cron expression %r", expr, exc_info=True)
        return f"cron schedule {spec.expression}"
    return str(text)


# ---------------------------------------------------------------------------------------
# Time zones and DST


@functools.lru_cache(maxsize=1024)
def _zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from exc


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


def _fires_at(spec: _Spec, tz: tzinfo, wall: datetime) -> list[tuple[datetime, Fire]]:
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


def _out_of_range(expression: str | None = None) -> FireTimeRangeError:
    span = f"{EARLIEST.date().isoformat()} to {LATEST.date().isoformat()} (UTC)"
    if expression is not None:
        return FireTimeRangeError(
            f"cron expression {expression!r} has no later fire within the times jobfsm computes, {span}"
        )
    return FireTimeRangeError(f"the time is outside the times jobfsm computes fires for, {span}")


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
        raise _out_of_range() from None
    if not _EARLIEST_NAIVE <= instant <= _LATEST_NAIVE:
        raise _out_of_range()
    return instant


def _next(spec: _Spec, tz: tzinfo, after: datetime) -> tuple[datetime, Fire]:
    """The first fire strictly after ``after`` (naive UTC), with its instant (naive UTC)."""
    if after > _LATEST_NAIVE:  # iterating on from a fire late in the last year
        raise _out_of_range(spec.expression)
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
    return _next(_compile(expr), tz, instant)[1].at


def iter_fires(expr: str, tz: str | tzinfo, after: datetime) -> Iterator[Fire]:
    """Every fire strictly after ``after``, ascending and distinct, without end."""
    spec, where = _compile(expr), zone(tz)
    instant = _aware_utc(after, "after")
    while True:
        instant, fire = _next(spec, where, instant)
        yield fire


def fires_between(
    expr: str, tz: str | tzinfo, start: datetime, end: datetime, limit: int | None = None
) -> list[datetime]:
    """The fires ``f`` with ``start < f <= end``, ascending, at most ``limit`` of them."""
    spec, where = _compile(expr), zone(tz)
    instant, stop = _aware_utc(start, "start"), _aware_utc(end, "end")
    out: list[datetime] = []
    while limit is None or len(out) < limit:
        instant, fire = _next(spec, where, instant)
        if instant > stop:
            break
        out.append(fire.at)
    return out


Expansion = _Spec
"""A validated expression's fields as sets of values (see :func:`expand`)."""


def expand(expr: str) -> Expansion:
    """The fields of ``expr`` expanded to sets of values (cached; :class:`CronError` when it is
    invalid), for code that reasons about a schedule as a whole rather than its next fire (the
    linter, :mod:`jobfsm.config.lint`). ``day_matches(date)`` applies the Vixie day rule."""
    return _compile(expr)
