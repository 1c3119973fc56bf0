"""The cron language: strict five-field expressions, checked and expanded to sets of values.

Exactly five fields, ``minute hour day-of-month month day-of-week``, separated by spaces or
tabs, or one of the macros in :data:`MACROS` (any case). A field is a comma list of items:
``*``, a number, a name (``jan``-``dec``, ``sun``-``sat``, any case), a range ``a-b``, and
any of those with a step ``/n`` (``*/15``, ``1-5/2``, ``5/15`` = ``5-59/15``). ``0`` and
``7`` are both Sunday. A range may wrap around its cycle (``22-2`` in hours is
22,23,0,1,2; ``fri-mon``; ``nov-feb``), a step then keeps counting around the cycle. A
sixth field (seconds, as croniter would read it) and the Quartz/Jenkins extensions (``L``,
``W``, ``#``, ``?``, ``H``) are errors, as is an expression that can never fire
(``0 0 31 2 *``): the loader rejects these at load time rather than at 3 a.m. Every error is a
:class:`~jobfsm.errors.CronError` naming the field at fault and what would fix it.

Day-of-month and day-of-week follow Vixie cron exactly: when both fields are restricted a day
matches if *either* matches (``0 0 13 * fri`` fires on every 13th and every Friday, so
``0 0 31 2 mon`` is valid: Mondays in February); a field whose text starts with ``*``
(``*``, ``*/2``) counts as unrestricted, and then a day must match both.

Why not croniter's own parser
    croniter (a dependency, and the reference the tests check this package against) reads
    ``5-5`` as "every minute", steps a wrapped range off by one (``50-10/7`` gives minute 5,
    not 4), and accepts the extensions above and a seconds field. So fields are expanded here
    into frozen sets (cached per expression, thread-safe because nothing is mutated).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from jobfsm.cron.spec import Expansion
from jobfsm.errors import CronError

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
def expand(expr: str) -> Expansion:
    """The fields of ``expr`` expanded to sets of values, or :class:`CronError` when it is
    invalid. Cached: the daemon, the linter and the admin page ask about the same expressions
    again and again."""
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
    return Expansion(
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
    expand(expr)


def is_wildcard_hour(expr: str) -> bool:
    """Whether the hour field starts with ``*``: such schedules fire in both halves of a fold."""
    return expand(expr).wildcard_hour
