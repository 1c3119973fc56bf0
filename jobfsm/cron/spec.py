"""A validated expression expanded to its values, and the wall times it matches.

Fire times are computed between :data:`EARLIEST` and :data:`LATEST` (a day inside what
``datetime`` represents, so no step can overflow); a question outside them, or a schedule whose
next fire lies beyond them, raises :class:`~jobfsm.errors.FireTimeRangeError`.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from jobfsm.errors import CronError, FireTimeRangeError

EARLIEST = datetime(1, 1, 3, tzinfo=UTC)
"""The earliest instant fires are computed after: two days of margin, for UTC offsets and the
six hours the DST search reads around a time."""
LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The latest instant fires are computed after (and the last year a fire may fall in, ending a
year early: local times of 9999 plus the offset would leave what ``datetime`` represents)."""

SEARCH_YEARS = 400
"""How far the day search looks before it calls a schedule one that never fires (the Gregorian
calendar repeats every 400 years)."""

_ONE_DAY = timedelta(days=1)


def out_of_range(expression: str | None = None) -> FireTimeRangeError:
    """The error for a time outside :data:`EARLIEST` .. :data:`LATEST`, or, given the
    expression, for a schedule with no fire left inside them."""
    span = f"{EARLIEST.date().isoformat()} to {LATEST.date().isoformat()} (UTC)"
    if expression is not None:
        return FireTimeRangeError(
            f"cron expression {expression!r} has no later fire within the times jobfsm computes, {span}"
        )
    return FireTimeRangeError(f"the time is outside the times jobfsm computes fires for, {span}")


@dataclass(frozen=True, slots=True)
class Expansion:
    """A validated expression's fields as sets of values: immutable, cached, shared between
    threads. :meth:`day_matches` applies the Vixie day rule."""

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
        limit = day.year + SEARCH_YEARS
        while True:
            if day.year > LATEST.year:
                raise out_of_range(self.expression)
            if day.month not in self.months:
                year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
                if year > limit:
                    raise CronError(
                        f"cron expression {self.expression!r} does not fire within "
                        f"{SEARCH_YEARS} years; check its day and month fields",
                        field="day-of-month",
                    )
                day = date(year, month, 1)
                continue
            if self.day_matches(day):
                return day
            day += _ONE_DAY
