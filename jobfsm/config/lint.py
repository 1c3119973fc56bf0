"""The linter of ``jobfsm validate``: files that are valid but probably do not do what their
author means (DESIGN.md §7).

Every finding is a :class:`~jobfsm.problems.Problem` of severity ``warning`` (``validate`` exits
0 unless ``--strict``) naming the file, the field and the fix, with its :class:`Rule` in
``Problem.rule``. The rules are pure: each takes the instant it is asked at (``now``), so a test
pins a date, and what DST does to a fire is asked of :mod:`jobfsm.cron` (its DST policy is the
one place of that rule), never worked out again here.

- :attr:`Rule.DST_GAP`, :attr:`Rule.DST_FOLD`: a fire whose wall time falls into a DST gap or
  fold of the job's zone within :data:`DST_HORIZON`, and what jobfsm does then. Not reported
  where nothing changes: a gap whose fires fold into a fire the schedule has anyway (the wall
  time right after the gap: ``*/15 * * * *``, ``0 * * * *``), a fold of a schedule whose hour
  field is ``*`` (it keeps its real interval).
- :attr:`Rule.TIMEOUT_SKIPS_FIRES`: ``overlap: skip`` with a timeout longer than the shortest
  time between two fires. Only a timeout the file sets (other than the default): with the
  default every job that fires more often than hourly would be warned about.
- :attr:`Rule.SKIPPED_MONTHS`: listed months that have none of the listed days (``0 0 31 * *``
  never fires in February, April, June, September, November), and February 29.
- :attr:`Rule.CROWDED_MINUTE` (over all jobs checked together): more than ``max_same_minute``
  enabled jobs due in one minute of :data:`CROWD_WINDOW`. Counted once per distinct
  (schedule, zone), so the cost grows with the fires of the distinct schedules, not with the
  square of the number of jobs.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from itertools import pairwise

from jobfsm.cron import Expansion, expand, iter_fires, zone
from jobfsm.errors import JobfsmError
from jobfsm.model import DEFAULT_TIMEOUT_SECONDS, JobConfig, Overlap
from jobfsm.problems import Problem, Severity

__all__ = ["CROWD_WINDOW", "DST_HORIZON", "MAX_SAME_MINUTE", "Rule", "lint_job", "lint_jobs"]

DST_HORIZON = timedelta(days=365)
"""How far ahead DST gaps and folds are looked for."""
CROWD_WINDOW = timedelta(days=7)
"""The fires counted for :attr:`Rule.CROWDED_MINUTE`: the coming week (weekday jobs included)."""
MAX_SAME_MINUTE = 32
"""Default of ``validate --max-same-minute``: ``jobfsm start``'s default ``--max-workers``, so
beyond it some runs of that minute wait for a worker."""

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_EPOCH = date(1970, 1, 1).toordinal()
_NEAR = timedelta(hours=3)  # longer than any DST shift


class Rule(StrEnum):
    """What the linter warns about; the value is ``Problem.rule`` and the JSON output's ``rule``."""

    DST_GAP = "dst-gap"
    """A fire's wall time does not exist on a spring-forward day of the job's zone."""
    DST_FOLD = "dst-fold"
    """A fire's wall time happens twice on a fall-back day of the job's zone."""
    TIMEOUT_SKIPS_FIRES = "timeout-skips-fires"
    """``overlap: skip`` and a timeout longer than the time between two fires."""
    SKIPPED_MONTHS = "skipped-months"
    """Listed months that lack every listed day of the month."""
    CROWDED_MINUTE = "crowded-minute"
    """Many enabled jobs due in the same minute."""

    @property
    def heading(self) -> str:
        """A short heading (GitHub's annotation title)."""
        return _TITLES[self]


_TITLES = {
    Rule.DST_GAP: "DST gap",
    Rule.DST_FOLD: "DST fold",
    Rule.TIMEOUT_SKIPS_FIRES: "timeout longer than the interval",
    Rule.SKIPPED_MONTHS: "months without that day",
    Rule.CROWDED_MINUTE: "crowded minute",
}


def _warning(path: str, json_path: str, message: str, rule: Rule) -> Problem:
    return Problem(path, json_path, message, Severity.WARNING, rule=rule)


_Finding = tuple[str, Rule, str]
"""(JSON path, rule, message): a warning before it is given its file."""


def lint_job(config: JobConfig, path: str, now: datetime) -> list[Problem]:
    """The warnings of one valid job as of ``now`` (aware)."""
    timeout = config.timeout_seconds if config.overlap is Overlap.SKIP else None
    found = _findings(config.schedule, config.timezone, timeout, now.astimezone(UTC))
    return [_warning(path, json_path, message, rule) for json_path, rule, message in found]


@functools.lru_cache(maxsize=16384)  # an estate repeats its schedules, zones and timeouts
def _findings(
    schedule: str, timezone: str, skip_timeout: int | None, now: datetime
) -> tuple[_Finding, ...]:
    try:
        spec = expand(schedule)
        found = _dst_findings(schedule, timezone, now)
    except JobfsmError:  # a valid file always expands; a fire beyond year 9998 has no DST to lint
        return ()
    return (*found, *_timeout_findings(schedule, spec, skip_timeout, now),
            *_month_findings(schedule, spec))


def lint_jobs(
    jobs: Iterable[tuple[str, JobConfig]], now: datetime, *, max_same_minute: int = MAX_SAME_MINUTE
) -> list[Problem]:
    """Every warning of the valid jobs given as (file, config), checked together as one jobs
    folder: each one's own and the crowded minutes."""
    jobs = list(jobs)
    now = now.astimezone(UTC)
    problems = [p for path, config in jobs for p in lint_job(config, path, now)]
    return problems + _crowd_problems(jobs, now, max_same_minute)


# -- DST -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Transition:
    at: datetime
    """The first instant (naive UTC) of the new offset."""
    before: timedelta
    after: timedelta

    @property
    def gap(self) -> bool:
        return self.after > self.before

    @property
    def walls(self) -> tuple[datetime, datetime]:
        """The naive local wall times [low, high) that do not exist (gap) or happen twice (fold)."""
        one, two = self.at + self.before, self.at + self.after
        return (one, two) if self.gap else (two, one)


def _offset(tz: tzinfo, instant: datetime) -> timedelta:
    offset = instant.replace(tzinfo=UTC).astimezone(tz).utcoffset()
    assert offset is not None
    return offset


@functools.lru_cache(maxsize=256)
def _transitions(tz: tzinfo, start: datetime, days: int) -> tuple[_Transition, ...]:
    """The offset changes of ``tz`` within ``days`` days after the naive UTC ``start``: a look
    every day, then a bisection to the second (cached: every job of a zone asks the same)."""
    found = []
    low, low_offset = start, _offset(tz, start)
    for _ in range(days):
        high = low + timedelta(days=1)
        high_offset = _offset(tz, high)
        if high_offset != low_offset:
            a, b = 0, 86_400  # whole seconds after ``low``
            while b - a > 1:
                middle = (a + b) // 2
                a, b = (middle, b) if _offset(tz, low + timedelta(seconds=middle)) == low_offset else (a, middle)
            found.append(_Transition(low + timedelta(seconds=b), low_offset, high_offset))
        low, low_offset = high, high_offset
    return tuple(found)


def _matches(spec: Expansion, wall: datetime) -> bool:
    return spec.day_matches(wall.date()) and wall.hour in spec.hours and wall.minute in spec.minutes


def _walls_between(spec: Expansion, low: datetime, high: datetime) -> list[datetime]:
    """The schedule's wall times in [low, high) (a DST shift: an hour or less)."""
    out: list[datetime] = []
    day = low.date()
    while day <= high.date():
        if spec.day_matches(day):
            first = low.hour if day == low.date() else 0
            last = high.hour if day == high.date() else 23
            for hour in spec.hours:
                if not first <= hour <= last:
                    continue
                for minute in spec.minutes:
                    wall = datetime(day.year, day.month, day.day, hour, minute)
                    if low <= wall < high:
                        out.append(wall)
        day += timedelta(days=1)
    return out


def _hhmm(wall: datetime) -> str:
    return wall.strftime("%H:%M")


def _dst_findings(schedule: str, timezone: str, now: datetime) -> list[_Finding]:
    spec, tz = expand(schedule), zone(timezone)
    start = now.replace(tzinfo=None)
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    for shift in _transitions(tz, day, DST_HORIZON.days + 1):
        if not start < shift.at <= start + DST_HORIZON:
            continue
        low, high = shift.walls
        walls = _walls_between(spec, low, high)
        if not walls:
            continue
        if shift.gap and _matches(spec, high):
            continue  # the gap's fires are the fire right after it, which the schedule has anyway
        if not shift.gap and spec.wildcard_hour and len(spec.hours) == 24:
            continue  # every hour: it fires in both halves and keeps its real interval
        fires = []
        for fire in iter_fires(schedule, tz, (shift.at - _NEAR).replace(tzinfo=UTC)):
            if fire.at.astimezone(UTC).replace(tzinfo=None) > shift.at + _NEAR:
                break
            if fire.note:
                fires.append(fire)
        if fires:
            found.append(("$.schedule", *_dst_message(spec, timezone, shift, walls, fires[0].at)))
    return found


def _dst_message(
    spec: Expansion, timezone: str, shift: _Transition, walls: list[datetime], at: datetime
) -> tuple[Rule, str]:
    first, low, high = walls[0], *shift.walls
    many = len(walls) > 1
    when = f"{first.date().isoformat()} {_hhmm(first)}"
    if many:
        when += f"-{_hhmm(walls[-1])} ({len(walls)} fire times)"
    fix = (
        f"to avoid it, schedule it outside {_hhmm(low)}-{_hhmm(high)} local time "
        "or set timezone to 'UTC'"
    )
    if shift.gap:
        runs = f"at {_hhmm(at)} {at.tzname()}"
        what = f"they all run {runs}, as one fire" if many else f"the fire runs {runs}"
        return Rule.DST_GAP, (
            f"{when} {'do' if many else 'does'} not exist in {timezone} (clocks jump from {_hhmm(low)} "
            f"to {_hhmm(high)}); {what}; {fix}"
        )
    tz = zone(timezone)
    names = f"{_tzname(tz, shift.at - _NEAR)} and {_tzname(tz, shift.at + _NEAR)}"
    what = (
        f"{'each fires' if many else 'it fires'} at both ({names})" if spec.wildcard_hour
        else f"{'each fires' if many else 'it fires'} once, at the first ({_tzname(tz, shift.at - _NEAR)})"
    )
    return Rule.DST_FOLD, (
        f"{when} {'happen' if many else 'happens'} twice in {timezone} (clocks go back from {_hhmm(high)} "
        f"to {_hhmm(low)}); {what}; {fix}"
    )


def _tzname(tz: tzinfo, instant: datetime) -> str:
    return instant.replace(tzinfo=UTC).astimezone(tz).tzname() or ""


# -- timeout and overlap -------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _day_minutes(expression: str) -> tuple[int, ...]:
    """A firing day's fires, as minutes after midnight (wall clock), ascending."""
    spec = expand(expression)
    return tuple(sorted(h * 60 + m for h in spec.hours for m in spec.minutes))


@functools.lru_cache(maxsize=4096)
def _day_shape(expression: str) -> tuple[int | None, int]:
    """(the shortest time between two fires of one day or None, minutes from its first to its last fire)."""
    times = _day_minutes(expression)
    return min((b - a for a, b in pairwise(times)), default=None), times[-1] - times[0]


def _day_gap(spec: Expansion, today: date) -> int | None:
    """The fewest days between two matching days (the next two years are looked at), or None."""
    if spec.expression.split()[2:] == ["*", "*", "*"]:
        return 1
    best, last, day = None, None, today
    for _ in range(2 * 366):
        if spec.day_matches(day):
            if last is not None:
                gap = (day - last).days
                best = gap if best is None else min(best, gap)
                if best == 1:
                    break
            last = day
        day += timedelta(days=1)
    return best


def _shortest_gap(spec: Expansion, today: date, limit: float) -> int | None:
    """The shortest wall-clock time in minutes between two fires, when it is under ``limit``
    minutes; else None (the days are only looked at when a day's own fires cannot decide)."""
    within, span = _day_shape(spec.expression)
    if within is not None and within <= 1440 - span:
        return within if within < limit else None  # a gap across midnight is at least 1440 - span
    if 1440 - span >= limit:
        return within if within is not None and within < limit else None
    days = _day_gap(spec, today)
    across = days * 1440 - span if days is not None else None
    shortest = min((g for g in (within, across) if g is not None), default=None)
    return shortest if shortest is not None and shortest < limit else None


def _duration(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440} day{'s' * (minutes != 1440)}"
    if minutes % 60 == 0:
        return f"{minutes // 60} hour{'s' * (minutes != 60)}"
    return f"{minutes} minute{'s' * (minutes != 1)}"


def _timeout_findings(schedule: str, spec: Expansion, timeout: int | None, now: datetime) -> list[_Finding]:
    """``timeout``: the timeout of a job with ``overlap: skip``, else None."""
    if timeout is None or timeout == DEFAULT_TIMEOUT_SECONDS:
        return []
    gap = _shortest_gap(spec, now.date(), timeout / 60)
    if gap is None:
        return []
    return [(
        "$.timeout_seconds", Rule.TIMEOUT_SKIPS_FIRES,
        f"timeout of {timeout:,} s is longer than the {_duration(gap)} between fires of "
        f"{schedule!r}; with overlap 'skip' a run that takes that long makes the next fires "
        f"skip; set timeout_seconds to at most {gap * 60:,}, or overlap to 'queue' or 'allow'",
    )]


# -- days of month -------------------------------------------------------------------------


def _and_list(items: Sequence[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def _month_findings(schedule: str, spec: Expansion) -> list[_Finding]:
    fields = spec.expression.split()
    if fields[2].startswith("*") or spec.day_or:
        return []  # every day, or weekdays that fire in every month anyway (Vixie: either matches)
    first = min(spec.days)
    months = sorted(spec.months)
    skipped = [m for m in months if first > _DAYS_IN_MONTH[m - 1]]
    leap = 2 in spec.months and first == 29
    if not skipped and not leap:
        return []
    days = _and_list([str(d) for d in sorted(spec.days)], "or")
    parts = []
    if skipped:
        parts.append(
            f"never fires in {_and_list([_MONTHS[m - 1] for m in skipped])} (no day {days} there), "
            f"so in {len(months) - len(skipped)} of the {len(months)} months it lists"
        )
    if leap:
        parts.append("fires in February only in leap years (on the 29th)")
    return [(
        "$.schedule", Rule.SKIPPED_MONTHS,
        f"{schedule!r} {' and '.join(parts)}; to fire in every month it lists, use days "
        "from 1 to 28, or list only the months that have the day",
    )]


# -- crowded minutes -----------------------------------------------------------------------


def _day_offsets(tz: tzinfo, day: date) -> int | tuple[int, ...]:
    """The UTC offset in minutes of a local day, or of each of its hours on a day it changes
    (each hour counted with the offset at its start: a DST day to within its shift)."""
    offsets = []
    for hour in range(24):
        offset = tz.utcoffset(datetime(day.year, day.month, day.day, hour))
        offsets.append(int(offset.total_seconds()) // 60 if offset is not None else 0)
    return offsets[0] if len(set(offsets)) == 1 else tuple(offsets)


def _fire_minutes(
    spec: Expansion, tz: tzinfo, start: int, end: int, offsets: dict[date, int | tuple[int, ...]]
) -> list[int]:
    """Minutes since the epoch (UTC) in (start, end] at which the schedule fires; ``offsets``
    caches :func:`_day_offsets` for the zone."""
    daily = _day_minutes(spec.expression)
    out: list[int] = []
    day = date.fromordinal(_EPOCH + start // 1440) - timedelta(days=1)
    last = date.fromordinal(_EPOCH + end // 1440) + timedelta(days=1)
    while day <= last:
        if spec.day_matches(day):
            base = (day.toordinal() - _EPOCH) * 1440
            shift = offsets.get(day)
            if shift is None:
                shift = offsets[day] = _day_offsets(tz, day)
            if isinstance(shift, int):
                base -= shift
                if start < base and base + 1439 <= end:
                    out += [base + t for t in daily]
                else:
                    out += [base + t for t in daily if start < base + t <= end]
            else:
                out += [at for t in daily if start < (at := base + t - shift[t // 60]) <= end]
        day += timedelta(days=1)
    return out


def _crowd_problems(
    jobs: Sequence[tuple[str, JobConfig]], now: datetime, limit: int
) -> list[Problem]:
    groups: dict[tuple[str, str], list[tuple[str, JobConfig]]] = {}
    for path, config in jobs:
        if config.enabled:
            groups.setdefault((config.schedule, config.timezone), []).append((path, config))
    if sum(len(g) for g in groups.values()) <= limit:
        return []
    start = int(now.timestamp()) // 60
    end = start + int(CROWD_WINDOW.total_seconds()) // 60
    minutes: dict[tuple[str, str], list[int]] = {}
    counts: Counter[int] = Counter()
    offsets: dict[str, dict[date, int | tuple[int, ...]]] = {}
    for key, group in groups.items():
        try:
            fired = _fire_minutes(expand(key[0]), zone(key[1]), start, end, offsets.setdefault(key[1], {}))
        except JobfsmError:
            continue
        minutes[key] = fired
        if len(group) == 1:
            counts.update(fired)  # counted in C
        else:
            weight = len(group)
            for minute in fired:
                counts[minute] += weight
    crowded = {m for m, n in counts.items() if n > limit}
    if not crowded:
        return []
    problems = []
    for key, fired in minutes.items():
        hits = [m for m in fired if m in crowded]
        if not hits:
            continue
        worst = max(hits, key=lambda m: (counts[m], -m))
        message = _crowd_message(groups[key][0][1], worst, counts, limit)
        problems += [_warning(path, "$.schedule", message, Rule.CROWDED_MINUTE) for path, _ in groups[key]]
    return problems


def _crowd_message(config: JobConfig, worst: int, counts: dict[int, int], limit: int) -> str:
    when = datetime.fromtimestamp(worst * 60, UTC)
    hour = worst - worst % 60
    spec = expand(config.schedule)
    offset = zone(config.timezone).utcoffset(when.replace(tzinfo=None))
    shift = int(offset.total_seconds()) // 60 if offset is not None else 0
    free = [k for k in range(60) if (k + shift) % 60 not in spec.minutes]
    fields = spec.expression.split()
    example = ""
    if free and (fields[0].isdigit() or fields[0].startswith("*/")):
        spare = min(free, key=lambda k: (counts.get(hour + k, 0), k))  # the quietest minute of that hour
        local = (spare + shift) % 60
        minute = str(local) if fields[0].isdigit() else f"{local % int(fields[0][2:])}-59/{fields[0][2:]}"
        example = f", e.g. {' '.join([minute, *fields[1:]])!r}"
    return (
        f"{counts[worst]:,} enabled jobs are due at {when:%Y-%m-%d %H:%M} UTC, this one among them "
        f"(more than {limit} in one minute start together and wait for workers); stagger them "
        f"with a different minute{example}"
    )
