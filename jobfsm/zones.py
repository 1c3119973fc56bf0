"""Time zones by IANA name: the one lookup, and the one message for a name that is no zone
(the loader's ``$.timezone`` problem, ``jobfsm next --tz``, the cron module's error), and the
names the admin form offers."""

from __future__ import annotations

import difflib
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jobfsm.problems import quote

__all__ = ["find_zone", "unknown_zone", "zone_names"]


@lru_cache(maxsize=1024)  # bounded: a daemon meets arbitrary bad names over time
def find_zone(name: str) -> ZoneInfo | None:
    """The zone called ``name``, or None when there is none: an unknown name, a path, a folder
    of the zone database (``'Europe'``), a name too long to open."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def unknown_zone(name: str) -> str:
    """What to say of a ``name`` that :func:`find_zone` does not know: the nearest zone name
    when one is close, and what a zone name looks like."""
    return f"unknown time zone {quote(name)}{_hint(name)}; use an IANA name such as 'Europe/Berlin' or 'UTC'"


def _hint(name: str) -> str:
    if len(name) > 100:  # no zone name is that long, and difflib would only take its time
        return ""
    match = difflib.get_close_matches(name, zone_names(), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


@cache
def zone_names() -> tuple[str, ...]:
    """Every zone name this host knows, sorted (what the admin form offers)."""
    return tuple(sorted(available_timezones()))
