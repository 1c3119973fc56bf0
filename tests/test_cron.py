"""Tests for :mod:`jobfsm.cron`: syntax, Vixie day rules, and the DST policy.

Expected fire times in the tables are worked out by hand from the 2026 transitions
(Europe/Berlin 2026-03-29 02:00→03:00 and 2026-10-25 03:00→02:00; America/New_York
2026-03-08 02:00→03:00 and 2026-11-01 02:00→01:00; Australia/Lord_Howe 2026-04-05
02:00→01:30 and 2026-10-04 02:00→02:30) and compared as ISO strings, so the UTC offset of
every fire is checked too. The properties check generated expressions against an
independent model of what each field means, and, in UTC, against croniter itself.
"""

from __future__ import annotations

import calendar
import functools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobfsm import cron
from jobfsm.errors import CronError

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def iso(values: list[datetime]) -> list[str]:
    return [v.isoformat() for v in values]


def first_fires(expr: str, tz: str, after: str, count: int) -> list[cron.Fire]:
    fires = cron.iter_fires(expr, tz, datetime.fromisoformat(after))
    return [next(fires) for _ in range(count)]


# ---------------------------------------------------------------------------------------
# Hand-checked fire times

# id | expression | zone | after | the next fires, in order
# fmt: off
TABLE = """
berlin-spring-0230     | 30 2 * * *            | Europe/Berlin       | 2026-03-28T00:00+01:00 | 2026-03-28T02:30+01:00 2026-03-29T03:00+02:00 2026-03-30T02:30+02:00
berlin-spring-0200     | 0 2 * * *             | Europe/Berlin       | 2026-03-28T00:00+01:00 | 2026-03-28T02:00+01:00 2026-03-29T03:00+02:00 2026-03-30T02:00+02:00
berlin-spring-every15  | */15 * * * *          | Europe/Berlin       | 2026-03-29T01:30+01:00 | 2026-03-29T01:45+01:00 2026-03-29T03:00+02:00 2026-03-29T03:15+02:00
berlin-spring-hourly   | 0 * * * *             | Europe/Berlin       | 2026-03-29T00:30+01:00 | 2026-03-29T01:00+01:00 2026-03-29T03:00+02:00 2026-03-29T04:00+02:00
berlin-spring-20-50    | 20,50 * * * *         | Europe/Berlin       | 2026-03-29T01:40+01:00 | 2026-03-29T01:50+01:00 2026-03-29T03:00+02:00 2026-03-29T03:20+02:00 2026-03-29T03:50+02:00
berlin-spring-0130     | 30 1 * * *            | Europe/Berlin       | 2026-03-28T12:00+01:00 | 2026-03-29T01:30+01:00 2026-03-30T01:30+02:00
berlin-after-the-gap   | 30 2 * * *            | Europe/Berlin       | 2026-03-29T03:10+02:00 | 2026-03-30T02:30+02:00
berlin-at-the-gap      | 30 2 * * *            | Europe/Berlin       | 2026-03-29T03:00+02:00 | 2026-03-30T02:30+02:00
berlin-before-the-gap  | 30 2 * * *            | Europe/Berlin       | 2026-03-29T01:59+01:00 | 2026-03-29T03:00+02:00
berlin-fall-0230       | 30 2 * * *            | Europe/Berlin       | 2026-10-24T12:00+02:00 | 2026-10-25T02:30+02:00 2026-10-26T02:30+01:00
berlin-fall-0200       | 0 2 * * *             | Europe/Berlin       | 2026-10-24T12:00+02:00 | 2026-10-25T02:00+02:00 2026-10-26T02:00+01:00
berlin-fall-every15    | */15 * * * *          | Europe/Berlin       | 2026-10-25T01:50+02:00 | 2026-10-25T02:00+02:00 2026-10-25T02:15+02:00 2026-10-25T02:30+02:00 2026-10-25T02:45+02:00 2026-10-25T02:00+01:00 2026-10-25T02:15+01:00 2026-10-25T02:30+01:00 2026-10-25T02:45+01:00 2026-10-25T03:00+01:00
berlin-fall-hourly     | 0 * * * *             | Europe/Berlin       | 2026-10-25T00:30+02:00 | 2026-10-25T01:00+02:00 2026-10-25T02:00+02:00 2026-10-25T02:00+01:00 2026-10-25T03:00+01:00
berlin-in-first-half   | 30 2 * * *            | Europe/Berlin       | 2026-10-25T02:40+02:00 | 2026-10-26T02:30+01:00
berlin-in-second-half  | */15 * * * *          | Europe/Berlin       | 2026-10-25T02:10+01:00 | 2026-10-25T02:15+01:00 2026-10-25T02:30+01:00
berlin-end-first-half  | */15 * * * *          | Europe/Berlin       | 2026-10-25T02:50+02:00 | 2026-10-25T02:00+01:00
berlin-hourly-second   | 0 * * * *             | Europe/Berlin       | 2026-10-25T02:30+01:00 | 2026-10-25T03:00+01:00
berlin-fall-0130       | 30 1 * * *            | Europe/Berlin       | 2026-10-24T12:00+02:00 | 2026-10-25T01:30+02:00 2026-10-26T01:30+01:00
ny-spring-0230         | 30 2 * * *            | America/New_York    | 2026-03-07T00:00-05:00 | 2026-03-07T02:30-05:00 2026-03-08T03:00-04:00 2026-03-09T02:30-04:00
ny-spring-0200         | 0 2 * * *             | America/New_York    | 2026-03-07T00:00-05:00 | 2026-03-07T02:00-05:00 2026-03-08T03:00-04:00 2026-03-09T02:00-04:00
ny-spring-every15      | */15 * * * *          | America/New_York    | 2026-03-08T01:40-05:00 | 2026-03-08T01:45-05:00 2026-03-08T03:00-04:00 2026-03-08T03:15-04:00
ny-spring-hourly       | 0 * * * *             | America/New_York    | 2026-03-08T00:30-05:00 | 2026-03-08T01:00-05:00 2026-03-08T03:00-04:00 2026-03-08T04:00-04:00
ny-spring-0130         | 30 1 * * *            | America/New_York    | 2026-03-07T12:00-05:00 | 2026-03-08T01:30-05:00 2026-03-09T01:30-04:00
ny-fall-0130           | 30 1 * * *            | America/New_York    | 2026-10-31T12:00-04:00 | 2026-11-01T01:30-04:00 2026-11-02T01:30-05:00
ny-fall-0230           | 30 2 * * *            | America/New_York    | 2026-10-31T12:00-04:00 | 2026-11-01T02:30-05:00 2026-11-02T02:30-05:00
ny-fall-0200           | 0 2 * * *             | America/New_York    | 2026-10-31T12:00-04:00 | 2026-11-01T02:00-05:00 2026-11-02T02:00-05:00
ny-fall-every15        | */15 * * * *          | America/New_York    | 2026-11-01T00:50-04:00 | 2026-11-01T01:00-04:00 2026-11-01T01:15-04:00 2026-11-01T01:30-04:00 2026-11-01T01:45-04:00 2026-11-01T01:00-05:00 2026-11-01T01:15-05:00 2026-11-01T01:30-05:00 2026-11-01T01:45-05:00 2026-11-01T02:00-05:00
ny-fall-hourly         | 0 * * * *             | America/New_York    | 2026-11-01T00:30-04:00 | 2026-11-01T01:00-04:00 2026-11-01T01:00-05:00 2026-11-01T02:00-05:00
lordhowe-spring-15     | */15 * * * *          | Australia/Lord_Howe | 2026-10-04T01:30+10:30 | 2026-10-04T01:45+10:30 2026-10-04T02:30+11:00 2026-10-04T02:45+11:00
lordhowe-spring-0200   | 0 2 * * *             | Australia/Lord_Howe | 2026-10-03T12:00+10:30 | 2026-10-04T02:30+11:00 2026-10-05T02:00+11:00
lordhowe-fall-15       | */15 * * * *          | Australia/Lord_Howe | 2026-04-05T01:10+11:00 | 2026-04-05T01:15+11:00 2026-04-05T01:30+11:00 2026-04-05T01:45+11:00 2026-04-05T01:30+10:30 2026-04-05T01:45+10:30 2026-04-05T02:00+10:30
lordhowe-fall-0145     | 45 1 * * *            | Australia/Lord_Howe | 2026-04-04T12:00+11:00 | 2026-04-05T01:45+11:00 2026-04-06T01:45+10:30
leap-day               | 0 0 29 2 *            | UTC                 | 2026-01-01T00:00+00:00 | 2028-02-29T00:00+00:00 2032-02-29T00:00+00:00
dom-or-dow             | 0 0 13 * fri          | UTC                 | 2026-03-01T00:00+00:00 | 2026-03-06T00:00+00:00 2026-03-13T00:00+00:00 2026-03-20T00:00+00:00 2026-03-27T00:00+00:00 2026-04-03T00:00+00:00 2026-04-10T00:00+00:00 2026-04-13T00:00+00:00 2026-04-17T00:00+00:00
star-led-dow-is-and    | 0 0 13 * */2          | UTC                 | 2026-01-01T00:00+00:00 | 2026-01-13T00:00+00:00 2026-06-13T00:00+00:00
names                  | 0 9 * jan,jul mon-fri | UTC                 | 2026-06-30T12:00+00:00 | 2026-07-01T09:00+00:00 2026-07-02T09:00+00:00 2026-07-03T09:00+00:00 2026-07-06T09:00+00:00
names-upper-year-wrap  | 0 9 * JAN,JUL MON-FRI | UTC                 | 2026-07-31T10:00+00:00 | 2027-01-01T09:00+00:00 2027-01-04T09:00+00:00
seven-is-sunday        | 0 12 * * 7            | UTC                 | 2026-01-01T00:00+00:00 | 2026-01-04T12:00+00:00 2026-01-11T12:00+00:00
range-to-seven         | 0 12 * * 5-7          | UTC                 | 2026-01-01T00:00+00:00 | 2026-01-02T12:00+00:00 2026-01-03T12:00+00:00 2026-01-04T12:00+00:00 2026-01-09T12:00+00:00
dow-start-with-step    | 0 12 * * 1/2          | UTC                 | 2026-01-01T00:00+00:00 | 2026-01-02T12:00+00:00 2026-01-05T12:00+00:00 2026-01-07T12:00+00:00 2026-01-09T12:00+00:00
dow-range-from-seven   | 0 12 * * 7-1          | UTC                 | 2026-01-01T00:00+00:00 | 2026-01-04T12:00+00:00 2026-01-05T12:00+00:00 2026-01-11T12:00+00:00
dow-wrap-fri-mon       | 0 12 * * fri-mon      | UTC                 | 2026-01-01T00:00+00:00 | 2026-01-02T12:00+00:00 2026-01-03T12:00+00:00 2026-01-04T12:00+00:00 2026-01-05T12:00+00:00 2026-01-09T12:00+00:00
hour-range-wraps       | 0 22-2 * * *          | UTC                 | 2026-01-01T21:00+00:00 | 2026-01-01T22:00+00:00 2026-01-01T23:00+00:00 2026-01-02T00:00+00:00 2026-01-02T01:00+00:00 2026-01-02T02:00+00:00 2026-01-02T22:00+00:00
equal-range-one-value  | 5-5 * * * *           | UTC                 | 2026-01-01T00:00+00:00 | 2026-01-01T00:05+00:00 2026-01-01T01:05+00:00
start-with-step        | 50/4 * * * *          | UTC                 | 2026-01-01T00:00+00:00 | 2026-01-01T00:50+00:00 2026-01-01T00:54+00:00 2026-01-01T00:58+00:00 2026-01-01T01:50+00:00
utc-mid-minute         | */15 * * * *          | UTC                 | 2026-01-01T00:07:30+00:00 | 2026-01-01T00:15+00:00 2026-01-01T00:30+00:00
after-in-another-zone  | 0 0 * * *             | UTC                 | 2026-01-01T08:00+09:00 | 2026-01-01T00:00+00:00 2026-01-02T00:00+00:00
after-exactly-on-fire  | 0 0 * * *             | UTC                 | 2026-01-01T00:00+00:00 | 2026-01-02T00:00+00:00
macro-hourly           | @hourly               | UTC                 | 2026-03-04T10:00+00:00 | 2026-03-04T11:00+00:00 2026-03-04T12:00+00:00
macro-daily            | @daily                | UTC                 | 2026-03-04T10:00+00:00 | 2026-03-05T00:00+00:00
macro-midnight         | @midnight             | UTC                 | 2026-03-04T10:00+00:00 | 2026-03-05T00:00+00:00
macro-weekly           | @weekly               | UTC                 | 2026-03-04T10:00+00:00 | 2026-03-08T00:00+00:00 2026-03-15T00:00+00:00
macro-monthly          | @monthly              | UTC                 | 2026-03-04T10:00+00:00 | 2026-04-01T00:00+00:00 2026-05-01T00:00+00:00
macro-yearly           | @yearly               | UTC                 | 2026-03-04T10:00+00:00 | 2027-01-01T00:00+00:00 2028-01-01T00:00+00:00
macro-annually-case    | @Annually             | UTC                 | 2026-03-04T10:00+00:00 | 2027-01-01T00:00+00:00
"""
# fmt: on
CASES = [
    pytest.param(expr, tz, after, expected.split(), id=name)
    for name, expr, tz, after, expected in (
        [cell.strip() for cell in line.split("|")] for line in TABLE.strip().splitlines()
    )
]


@pytest.mark.parametrize(("expr", "tz", "after", "expected"), CASES)
def test_hand_checked_fire_times(expr: str, tz: str, after: str, expected: list[str]) -> None:
    want = iso([datetime.fromisoformat(e) for e in expected])  # the offsets must match too
    fires = first_fires(expr, tz, after, len(expected))
    assert iso([f.at for f in fires]) == want
    assert cron.next_fire(expr, tz, datetime.fromisoformat(after)).isoformat() == want[0]
    by_zone = cron.next_fire(expr, ZoneInfo(tz), datetime.fromisoformat(after))
    assert by_zone.isoformat() == want[0]


def test_dst_notes_say_what_happened() -> None:
    gap = first_fires("30 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00+01:00", 1)[0]
    assert gap.wall == datetime(2026, 3, 29, 2, 30)
    assert gap.note == (
        "02:30 does not exist on 2026-03-29 in Europe/Berlin (clocks jump from 02:00 to 03:00); "
        "runs at 03:00 CEST"
    )
    fold = first_fires("30 2 * * *", "Europe/Berlin", "2026-10-25T00:00:00+02:00", 1)[0]
    assert fold.note == (
        "02:30 happens twice on 2026-10-25 in Europe/Berlin (clocks go back at 03:00); "
        "runs once, at the first (CEST)"
    )
    ny = first_fires("30 1 * * *", "America/New_York", "2026-11-01T00:00:00-04:00", 1)[0]
    assert ny.note is not None and "(clocks go back at 02:00)" in ny.note
    walk = first_fires("*/15 * * * *", "Europe/Berlin", "2026-10-25T02:00:00+02:00", 5)
    assert [f.note for f in walk[:3]] == [None, None, None]
    assert walk[3].at.isoformat() == "2026-10-25T02:00:00+01:00"
    assert walk[4].note == (
        "second 02:15 of the day (clocks went back); the schedule keeps its real interval"
    )
    # Wall times that fall into one gap fire once, reported as the earliest of them.
    merged = first_fires("*/15 * * * *", "Europe/Berlin", "2026-03-29T01:45:00+01:00", 2)
    assert merged[0].at.isoformat() == "2026-03-29T03:00:00+02:00"
    assert merged[0].wall == datetime(2026, 3, 29, 2, 0)
    assert merged[0].note is not None and merged[0].note.startswith("02:00 does not exist")
    assert merged[1].at.isoformat() == "2026-03-29T03:15:00+02:00"
    plain = first_fires("30 2 * * *", "Europe/Berlin", "2026-06-01T00:00:00+02:00", 1)[0]
    assert plain.note is None
    assert plain.wall == plain.at.replace(tzinfo=None)


def test_every_minute_through_both_berlin_transitions_keeps_one_minute_apart() -> None:
    for day in ("2026-03-29", "2026-10-25"):
        start = datetime.fromisoformat(f"{day}T00:00:00+00:00") - timedelta(hours=1)
        fires = cron.fires_between("* * * * *", "Europe/Berlin", start, start + timedelta(hours=6))
        stamps = [f.timestamp() for f in fires]
        assert len(stamps) == 6 * 60
        assert {b - a for a, b in pairwise(stamps)} == {60.0}


# ---------------------------------------------------------------------------------------
# Real intervals through DST


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize(
    ("expr", "minutes"), [("*/15 * * * *", 15), ("*/5 * * * *", 5), ("0 * * * *", 60)]
)
def test_a_whole_year_of_fires_is_exactly_the_real_interval_apart(
    expr: str, minutes: int, tz: str
) -> None:
    zone = ZoneInfo(tz)
    start, end = datetime(2026, 1, 1, tzinfo=zone), datetime(2027, 1, 1, tzinfo=zone)
    stamps = [f.timestamp() for f in cron.fires_between(expr, tz, start, end)]
    # 2026 has 365 days of real time between two January midnights (same offset).
    assert len(stamps) == 365 * 24 * 60 // minutes
    assert stamps[0] == start.timestamp() + minutes * 60
    assert stamps[-1] == end.timestamp()
    assert {b - a for a, b in pairwise(stamps)} == {minutes * 60.0}


# Zones with the minute steps that divide the offsets their transitions happen at.
INTERVAL_ZONES = {
    "Europe/Berlin": (5, 6, 10, 12, 15, 20, 30, 60),
    "America/New_York": (5, 6, 10, 12, 15, 20, 30, 60),
    "Europe/London": (5, 10, 15, 30, 60),
    "Europe/Dublin": (5, 15, 60),  # "negative DST": winter is the saving time
    "Australia/Sydney": (5, 15, 60),
    "America/Santiago": (5, 15, 60),  # transitions at midnight
    "Australia/Lord_Howe": (5, 6, 10, 15, 30),  # 30-minute DST
    "Pacific/Chatham": (5, 15),  # transitions at 02:45 standard time
}


@functools.cache
def transitions(tz: str) -> tuple[datetime, ...]:
    """The UTC instants (aware) at which ``tz`` changes its offset, 2020-2035."""
    zone = ZoneInfo(tz)

    def offset(at: datetime) -> timedelta | None:
        return at.astimezone(zone).utcoffset()

    found = []
    day = datetime(2020, 1, 1, tzinfo=UTC)
    while day.year < 2036:
        nxt = day + timedelta(days=1)
        if offset(day) != offset(nxt):
            low, high = day, nxt
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
            found.append(high.replace(second=0, microsecond=0))
        day = nxt
    return tuple(found)


@st.composite
def interval_walks(draw: st.DrawFn) -> tuple[str, int, str, datetime]:
    tz = draw(st.sampled_from(sorted(INTERVAL_ZONES)))
    minutes = draw(st.sampled_from(INTERVAL_ZONES[tz]))
    expr = "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"
    switch = draw(st.sampled_from(transitions(tz)))
    start = switch + timedelta(seconds=draw(st.integers(-4 * 3600, 3600)))
    return expr, minutes, tz, start


@PROPERTY
@given(interval_walks())
def test_stepped_schedules_keep_their_real_interval_through_transitions(
    walk: tuple[str, int, str, datetime],
) -> None:
    expr, minutes, tz, start = walk
    fires = cron.fires_between(expr, tz, start, start + timedelta(hours=6))
    stamps = [f.timestamp() for f in fires]
    assert 0 < stamps[0] - start.timestamp() <= minutes * 60
    assert {b - a for a, b in pairwise(stamps)} == {minutes * 60.0}
    for fire in fires:  # each fire is in the job's zone, on a whole minute
        assert fire.tzinfo == ZoneInfo(tz) and fire.second == 0


# ---------------------------------------------------------------------------------------
# Generated expressions and an independent model of their meaning


@dataclass(frozen=True)
class FieldModel:
    name: str
    low: int
    high: int  # what '*' covers
    top: int  # the largest number one may write
    names: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return self.high - self.low + 1


MODELS = (
    FieldModel("minute", 0, 59, 59),
    FieldModel("hour", 0, 23, 23),
    FieldModel("day-of-month", 1, 31, 31),
    FieldModel(
        "month",
        1,
        12,
        12,
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
    FieldModel("day-of-week", 0, 6, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


@dataclass(frozen=True)
class GenField:
    text: str
    values: frozenset[int]
    star_led: bool
    croniter_text: str  # the same set, spelled so croniter's parser reads it as Vixie does


@dataclass(frozen=True)
class GenExpr:
    fields: tuple[GenField, ...]
    separator: str = " "

    @property
    def text(self) -> str:
        return self.separator.join(f.text for f in self.fields)

    @property
    def croniter_text(self) -> str:
        return " ".join(f.croniter_text for f in self.fields)

    def matches(self, wall: datetime) -> bool:
        minute, hour, dom, month, dow = self.fields
        in_dom = wall.day in dom.values
        in_dow = wall.isoweekday() % 7 in dow.values
        days = (in_dom and in_dow) if dom.star_led or dow.star_led else (in_dom or in_dow)
        return (
            wall.minute in minute.values
            and wall.hour in hour.values
            and wall.month in month.values
            and days
        )

    def can_fire(self) -> bool:
        """Whether some real date satisfies the day rule (a leap year has every day)."""
        dom, month, dow = self.fields[2:]
        if not dow.star_led:
            return True  # OR with weekdays, or a '*'-led day-of-month that holds the 1st
        return any(
            d.month in month.values and d.day in dom.values
            for d in (date(2028, 1, 1) + timedelta(days=i) for i in range(366))
        )


def cycle(model: FieldModel, first: int, last: int, step: int) -> frozenset[int]:
    """first, first+step, ... up to last, counting around the cycle when last < first."""
    distance = last - first if first <= last else (last - first) % model.size
    return frozenset(
        model.low + (first - model.low + k) % model.size for k in range(0, distance + 1, step)
    )


def spell(draw: st.DrawFn, model: FieldModel, value: int) -> str:
    if model.names and model.low <= value < model.low + len(model.names) and draw(st.booleans()):
        name = model.names[value - model.low]
        return draw(st.sampled_from([name, name.upper(), name.title()]))
    return str(value)


@st.composite
def gen_items(draw: st.DrawFn, model: FieldModel) -> tuple[str, frozenset[int], bool]:
    kind = draw(st.sampled_from(["star", "star-step", "value", "value-step", "range", "range"]))
    value = st.integers(model.low, model.top)
    step = draw(st.integers(1, model.size))
    if kind == "star":
        return "*", frozenset(range(model.low, model.high + 1)), True
    if kind == "star-step":
        return f"*/{step}", frozenset(range(model.low, model.high + 1, step)), True
    first = draw(value)
    if kind == "value":
        return spell(draw, model, first), frozenset({first % 7 if model.top == 7 else first}), False
    if kind == "value-step":
        return f"{spell(draw, model, first)}/{step}", cycle(model, first, model.high, step), False
    last = draw(value)
    text = f"{spell(draw, model, first)}-{spell(draw, model, last)}"
    if draw(st.booleans()):
        return f"{text}/{step}", cycle(model, first, last, step), False
    return text, cycle(model, first, last, 1), False


@st.composite
def gen_fields(draw: st.DrawFn, model: FieldModel) -> GenField:
    items = draw(st.lists(gen_items(model), min_size=1, max_size=3))
    values = frozenset().union(*(v for _, v, _ in items))
    # croniter reads '*' inside a list as "the field is '*'"; Vixie only looks at the first item.
    croniter_items = [
        text if star and i == 0 else ",".join(map(str, sorted(v)))
        for i, (text, v, star) in enumerate(items)
    ]
    return GenField(
        ",".join(text for text, _, _ in items), values, items[0][2], ",".join(croniter_items)
    )


# Hour fields that cover the local hours at which the zones below change their clocks.
DST_HOURS = ["*", "*/2", "0-4", "1-3", "2", "1", "23,0", "0", "3"]


def star(model: FieldModel) -> GenField:
    return GenField("*", frozenset(range(model.low, model.high + 1)), True, "*")


@st.composite
def gen_exprs(draw: st.DrawFn, fixed_hours: bool = False, every_day: bool = False) -> GenExpr:
    fields = [draw(gen_fields(model)) for model in MODELS]
    if every_day:  # fires on the days and in the hours where clocks change
        hours = draw(st.sampled_from(DST_HOURS))
        values: set[int] = set()
        for item in hours.split(","):
            first, _, rest = item.partition("-")
            if first.startswith("*"):
                values |= set(range(0, 24, int(first[2:] or 1)))
            else:
                values |= set(range(int(first), int(rest or first) + 1))
        fields[1] = GenField(hours, frozenset(values), hours.startswith("*"), hours)
        fields[2:] = [star(m) for m in MODELS[2:]]
    if fixed_hours:  # a few listed times a day, every day
        for index, top in ((0, 59), (1, 23)):
            listed = draw(st.lists(st.integers(0, top), min_size=1, max_size=3, unique=True))
            text = ",".join(map(str, listed))
            fields[index] = GenField(text, frozenset(listed), False, text)
        fields[2:] = [star(m) for m in MODELS[2:]]
    return GenExpr(tuple(fields), draw(st.sampled_from([" ", "  ", "\t", " \t "])))


ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Europe/Dublin",
    "America/Santiago",
    "Pacific/Chatham",
    "Asia/Kolkata",
]
afters = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@st.composite
def zones_and_afters(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone, and an instant that is half the time within 5 h of one of its transitions."""
    tz = draw(st.sampled_from(ZONES))
    moments = transitions(tz)
    near_one = draw(st.booleans())
    if moments and near_one:
        near = timedelta(seconds=draw(st.integers(-5 * 3600, 5 * 3600)))
        return tz, draw(st.sampled_from(moments)) + near
    return tz, draw(afters)


def wall_instants(expr: GenExpr, zone: ZoneInfo, wall: datetime) -> list[float]:
    """The model of the DST policy: the UTC timestamps a matching wall time fires at."""
    first, second = wall.replace(tzinfo=zone), wall.replace(tzinfo=zone, fold=1)
    exists = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
    if first.utcoffset() == second.utcoffset():
        return [first.timestamp()]
    if not exists:  # the gap: the first instant whose wall time is past it
        stamp = min(first.timestamp(), second.timestamp())
        while datetime.fromtimestamp(stamp, zone).replace(tzinfo=None) < wall:
            stamp += 60
        return [stamp]
    twice = expr.fields[1].text.startswith("*")
    return [first.timestamp(), second.timestamp()] if twice else [first.timestamp()]


@PROPERTY
@given(gen_exprs(), zones_and_afters())
def test_next_fire_of_any_generated_expression_is_the_first_matching_time(
    expr: GenExpr, zone_and_after: tuple[str, datetime]
) -> None:
    tz, after = zone_and_after
    if not expr.can_fire():
        with pytest.raises(CronError, match="never fires") as caught:
            cron.validate_expression(expr.text)
        assert caught.value.field == "day-of-month"
        return
    cron.validate_expression(expr.text)
    zone = ZoneInfo(tz)
    fire = next(cron.iter_fires(expr.text, tz, after))
    assert fire.at.timestamp() > after.timestamp()
    assert expr.matches(fire.wall)
    assert fire.at.timestamp() in wall_instants(expr, zone, fire.wall)
    assert cron.next_fire(expr.text, zone, after).isoformat() == fire.at.isoformat()
    if fire.note is None:
        assert fire.at.replace(tzinfo=None) == fire.wall
    # Nothing earlier: in UTC croniter (reading the same sets) agrees exactly; in any zone
    # no matching wall time from 3 h before ``after`` on fires between ``after`` and it.
    if tz == "UTC":
        reference = croniter(
            expr.croniter_text,
            after.replace(tzinfo=None),
            implement_cron_bug=True,
            max_years_between_matches=100,
        ).get_next(datetime)
        assert fire.wall == reference
    walls = croniter(
        expr.croniter_text,
        (after - timedelta(hours=3)).astimezone(zone).replace(tzinfo=None),
        implement_cron_bug=True,
        max_years_between_matches=100,
    ).all_next(datetime)
    for _ in range(400):
        wall = next(walls)
        if wall >= fire.wall:
            break
        assert all(
            not after.timestamp() < stamp < fire.at.timestamp()
            for stamp in wall_instants(expr, zone, wall)
        )


@PROPERTY
@given(
    st.one_of(gen_exprs(), gen_exprs(every_day=True)),
    st.sampled_from(sorted(INTERVAL_ZONES)),
    st.data(),
)
def test_fires_around_a_transition_are_exactly_what_the_dst_policy_says(
    expr: GenExpr, tz: str, data: st.DataObject
) -> None:
    if not expr.can_fire():
        return
    zone = ZoneInfo(tz)
    switch = data.draw(st.sampled_from(transitions(tz)))
    start = switch + timedelta(seconds=data.draw(st.integers(-2 * 3600, 3600)))
    end = start + timedelta(hours=3)
    # Every wall time within the window (and 4 h either side), through the model.
    first_wall = start.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    first_wall -= timedelta(hours=4)
    walls = (first_wall + timedelta(minutes=k) for k in range(11 * 60))
    expected = sorted(
        {
            stamp
            for wall in walls
            if expr.matches(wall)
            for stamp in wall_instants(expr, zone, wall)
            if start.timestamp() < stamp <= end.timestamp()
        }
    )
    got = cron.fires_between(expr.text, tz, start, end)
    assert [f.timestamp() for f in got] == expected
    walked = fires_until(cron.iter_fires(expr.text, tz, start), end)
    assert iso([f.at for f in walked]) == iso(got)


@PROPERTY
@given(gen_exprs(fixed_hours=True), st.sampled_from(sorted(INTERVAL_ZONES)), st.data())
def test_fixed_hour_schedules_fire_at_most_once_a_day_per_listed_time(
    expr: GenExpr, tz: str, data: st.DataObject
) -> None:
    switch = data.draw(st.sampled_from(transitions(tz)))
    start = switch - timedelta(days=2)
    fires = fires_until(cron.iter_fires(expr.text, tz, start), switch + timedelta(days=2))
    stamps = [f.at.timestamp() for f in fires]
    assert stamps == sorted(set(stamps)), "fires are strictly increasing"
    per_day = Counter((f.wall.date(), f.wall.hour, f.wall.minute) for f in fires)
    assert max(per_day.values()) == 1
    local_days = Counter((f.at.date(), f.wall.hour, f.wall.minute) for f in fires)
    assert max(local_days.values()) == 1
    for fire in fires:
        assert expr.matches(fire.wall)


def fires_until(fires: Iterator[cron.Fire], end: datetime) -> list[cron.Fire]:
    out = []
    for fire in fires:
        if fire.at.timestamp() > end.timestamp():
            break
        out.append(fire)
    return out


@PROPERTY
@given(
    gen_exprs(),
    zones_and_afters(),
    st.integers(0, 72 * 60),
    st.one_of(st.none(), st.integers(0, 20)),
)
def test_fires_between_agrees_with_repeated_next_fire(
    expr: GenExpr, zone_and_start: tuple[str, datetime], minutes: int, limit: int | None
) -> None:
    tz, start = zone_and_start
    if not expr.can_fire():
        return
    end = start + timedelta(minutes=minutes)
    expected: list[datetime] = []
    at = cron.next_fire(expr.text, tz, start)
    while at.timestamp() <= end.timestamp() and (limit is None or len(expected) < limit):
        expected.append(at)
        at = cron.next_fire(expr.text, tz, at)
    got = cron.fires_between(expr.text, tz, start, end, limit)
    assert iso(got) == iso(expected)


def test_fires_between_excludes_start_and_includes_end() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    got = cron.fires_between("0 * * * *", "UTC", start, start + timedelta(hours=2))
    assert iso(got) == ["2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00"]
    assert cron.fires_between("0 * * * *", "UTC", start, start + timedelta(hours=9), limit=3) == [
        start + timedelta(hours=h) for h in (1, 2, 3)
    ]


# ---------------------------------------------------------------------------------------
# Validation


# Property 5: cron validation
@PROPERTY
@given(gen_exprs(), st.data())
def test_validation_accepts_generated_expressions_and_names_the_bad_field(
    expr: GenExpr, data: st.DataObject
) -> None:
    if expr.can_fire():
        cron.validate_expression(expr.text)
    texts = [f.text for f in expr.fields]
    kind = data.draw(st.sampled_from(["field", "field", "field", "count", "macro"]))
    if kind == "count":
        count = data.draw(st.sampled_from([1, 2, 3, 4, 6, 7]))
        wrong = " ".join((texts * 2)[:count])
        with pytest.raises(CronError, match=f"has {count} fields?; jobfsm takes exactly five") as e:
            cron.validate_expression(wrong)
        assert e.value.field is None
        if count == 6:
            assert "seconds are not supported" in str(e.value)
        return
    if kind == "macro":
        word = data.draw(st.from_regex(r"\A@[a-z]{1,10}\Z", fullmatch=True))
        if word in cron.MACROS:
            cron.validate_expression(word.upper())
            return
        with pytest.raises(CronError, match=r"unknown macro.*@hourly, @daily") as e:
            cron.validate_expression(word)
        assert e.value.field is None
        return
    index = data.draw(st.integers(0, 4))
    model = MODELS[index]
    texts[index] = data.draw(bad_fields(model))
    with pytest.raises(CronError) as e:
        cron.validate_expression(" ".join(texts))
    assert e.value.field == model.name
    assert str(e.value).startswith(f"{model.name} field {texts[index]!r}")


# fmt: off
BAD_TOKENS = [
    "x", "foo", "1-", "-1", "1--2", "*/", "/5", "1.5", "**", "*-1", "1-2-3", "L", "15W", "5#2",
    "?", "H", "H/5", "1,", ",1", "1,,2", "1;2", "\uff10", "\u00bd",  # full-width 0, one half
]
# fmt: on


@st.composite
def bad_fields(draw: st.DrawFn, model: FieldModel) -> str:
    kind = draw(st.sampled_from(["range", "token", "step"]))
    if kind == "token":
        return draw(st.sampled_from(BAD_TOKENS))
    if kind == "step":
        step = draw(st.one_of(st.just(0), st.integers(model.size + 1, 999)))
        return draw(st.sampled_from([f"*/{step}", f"{model.low}-{model.high}/{step}"]))
    too_big = st.integers(model.top + 1, 999)
    bad = draw(st.one_of(too_big, st.just(0)) if model.low == 1 else too_big)
    return draw(st.sampled_from([str(bad), f"{model.low},{bad}", f"{model.low}-{bad}", f"{bad}/2"]))


@pytest.mark.parametrize(
    "expr",
    ["0 0 31 2 *", "0 0 30 2 *", "0 0 30,31 feb *", "0 0 31 apr,jun,sep,nov *", "0 0 31 2 */2"],
)
def test_expressions_that_never_fire_are_rejected_naming_day_of_month(expr: str) -> None:
    with pytest.raises(CronError, match="never fires") as e:
        cron.validate_expression(expr)
    assert e.value.field == "day-of-month"


def test_never_fires_message_names_the_month_and_day() -> None:
    with pytest.raises(CronError, match="never fires: February has no day 31"):
        cron.validate_expression("0 0 31 2 *")
    with pytest.raises(CronError, match="none of April, June has a day 31"):
        cron.validate_expression("0 0 31 4,6 *")


@pytest.mark.parametrize("expr", ["0 0 31 2 mon", "0 0 29 2 *", "0 0 30,31 1-2 *", "0 0 31 * *"])
def test_rare_but_possible_days_are_valid(expr: str) -> None:
    cron.validate_expression(expr)


def test_vixie_or_lets_a_february_31st_expression_fire_on_mondays() -> None:
    fires = cron.fires_between(
        "0 0 31 2 mon", "UTC", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    )
    assert iso(fires) == [f"2026-02-{d:02d}T00:00:00+00:00" for d in (2, 9, 16, 23)]


@pytest.mark.parametrize(
    ("expr", "field", "message"),
    [
        ("0 0 32 * *", "day-of-month", "day-of-month field '32' is out of range (1-31)"),
        ("60 * * * *", "minute", "minute field '60' is out of range (0-59)"),
        ("0 24 * * *", "hour", "hour field '24' is out of range (0-23)"),
        ("0 0 * 13 *", "month", "month field '13' is out of range (1-12)"),
        ("0 0 * * 8", "day-of-week", "day-of-week field '8' is out of range (0-7"),
        ("0 0 * Jam *", "month", "month field 'Jam' has 'Jam', which is neither a number nor"),
        ("0 0 L * *", "day-of-month", "the 'L', 'W', '#', '?' and 'H' extensions are not"),
        ("*/0 * * * *", "minute", "minute field '*/0' has step 0"),
        ("0 0 1,32 * *", "day-of-month", "day-of-month field '1,32' has 32, out of range"),
        (
            "* * * * * *",
            None,
            "has 6 fields; jobfsm takes exactly five (minute hour "
            "day-of-month month day-of-week) — seconds are not supported",
        ),
        ("* * * *", None, "has 4 fields; jobfsm takes exactly five"),
        ("", None, "the cron expression is empty"),
        ("@reboot", None, "unknown macro '@reboot' (jobfsm fires on a clock, not at boot)"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 16 else None,
)
def test_error_messages_name_the_field_and_the_fix(
    expr: str, field: str | None, message: str
) -> None:
    with pytest.raises(CronError) as e:
        cron.validate_expression(expr)
    assert message in str(e.value)
    assert e.value.field == field


def test_macros_and_field_names_are_the_documented_ones() -> None:
    assert cron.MACROS == {
        "@hourly": "0 * * * *",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *",
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
    }
    assert cron.FIELD_NAMES == ("minute", "hour", "day-of-month", "month", "day-of-week")


def test_is_wildcard_hour() -> None:
    assert cron.is_wildcard_hour("*/15 * * * *")
    assert cron.is_wildcard_hour("0 */2 * * *")
    assert cron.is_wildcard_hour("@hourly")
    assert not cron.is_wildcard_hour("30 2 * * *")
    assert not cron.is_wildcard_hour("@daily")
    assert not cron.is_wildcard_hour("0 0-23 * * *")


def test_bad_inputs_to_the_time_functions() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cron.next_fire("* * * * *", "UTC", datetime(2026, 1, 1))
    with pytest.raises(CronError, match="unknown time zone 'Mars/Olympus'"):
        cron.next_fire("* * * * *", "Mars/Olympus", datetime(2026, 1, 1, tzinfo=UTC))


# ---------------------------------------------------------------------------------------
# Words


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("*/15 * * * *", "Every 15 minutes"),
        ("30 2 * * *", "At 02:30"),
        ("0 9 * * mon-fri", "At 09:00, Monday through Friday"),
        ("0 0 13 * fri", "At 00:00, on day 13 of the month, or on Friday"),
        ("0 0 */2 * mon", "At 00:00, every 2 days, only on Monday"),  # Vixie AND, not "or"
        ("@daily", "At 00:00"),
        ("@weekly", "At 00:00, only on Sunday"),
        ("0 12 * * 7", "At 12:00, only on Sunday"),
        ("0 0 1 1 *", "At 00:00, on day 1 of the month, only in January"),
    ],
)
def test_describe_says_it_in_words(expr: str, words: str) -> None:
    assert cron.describe(expr) == words


@PROPERTY
@given(gen_exprs())
def test_describe_never_raises_for_a_valid_expression(expr: GenExpr) -> None:
    if expr.can_fire():
        words = cron.describe(expr.text)
        assert isinstance(words, str) and words.strip()


# ---------------------------------------------------------------------------------------
# Speed: the daemon computes 10,000 next fires at start-up (whole start-up target: 2 s)


def test_ten_thousand_distinct_jobs_validate_and_get_their_next_fire_quickly() -> None:
    exprs = [f"{i % 60} {i // 60 % 24} * * {('*', 'mon-fri', 'sun')[i % 3]}" for i in range(4320)]
    exprs += [f"*/{1 + i % 59} {i % 24}-23 {1 + i % 28} * *" for i in range(5680)]
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]
    after = datetime(2026, 6, 10, 12, 7, 30, tzinfo=UTC)
    began = time.process_time()  # CPU time: other processes on a busy CI host do not count
    for i, expr in enumerate(exprs):
        cron.validate_expression(expr)
        cron.next_fire(expr, zones[i % 4], after)
    assert time.process_time() - began < 2.0


def test_calendar_sanity_of_the_table() -> None:
    # The weekdays the hand-checked table relies on.
    assert calendar.weekday(2026, 3, 13) == calendar.FRIDAY
    assert calendar.weekday(2026, 4, 13) == calendar.MONDAY
    assert calendar.weekday(2026, 1, 13) == calendar.TUESDAY
    assert calendar.weekday(2026, 6, 13) == calendar.SATURDAY
    assert calendar.weekday(2027, 1, 1) == calendar.FRIDAY


def test_next_fire_tells_the_two_wall_times_of_a_fold_apart() -> None:
    # 01:30 happens twice in New York on 2026-11-01; the two times compare equal as datetimes,
    # so whatever next_fire remembers must not mix them up.
    new_york = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)  # EDT, 05:30 UTC
    second = first.replace(fold=1)  # EST, 06:30 UTC
    assert first == second and first.astimezone(UTC) != second.astimezone(UTC)
    for after in (first, second, first):
        got = cron.next_fire("*/15 * * * *", new_york, after)
        assert got.astimezone(UTC) == after.astimezone(UTC) + timedelta(minutes=15)
