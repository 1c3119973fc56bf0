"""Cron math: strict five-field expressions, their next fire times, and what DST does to them.

Pure functions only. Nothing here reads the clock: every question comes with the instant it
is asked ``after``, so the scheduler, ``jobfsm next``, the loader and the admin page (all of
which use only this package for cron) can be tested by walking through years in milliseconds.

One module per concern: :mod:`~jobfsm.cron.syntax` (the language, its validation and its error
messages), :mod:`~jobfsm.cron.spec` (an expression expanded, the wall times it matches, the
span fires are computed in), :mod:`~jobfsm.cron.fires` (wall times mapped to instants, the DST
policy, the next-fire search) and :mod:`~jobfsm.cron.words` (an expression described in words).
Import from here; the modules are the package's own.

Times: ``after`` must be timezone-aware. Results are aware datetimes in the job's zone with
``fold`` set correctly. Python compares and subtracts two datetimes that share a ``tzinfo``
by their wall times, ignoring ``fold`` (02:00 CET then compares *equal* to 02:00 CEST), so
compare fires through :meth:`datetime.timestamp` or :func:`jobfsm.clock.utc`, never directly.
"""

from __future__ import annotations

from jobfsm.cron.fires import Fire, fires_between, iter_fires, next_fire, zone
from jobfsm.cron.spec import EARLIEST, LATEST, Expansion
from jobfsm.cron.syntax import FIELD_NAMES, MACROS, expand, is_wildcard_hour, validate_expression
from jobfsm.cron.words import describe
from jobfsm.errors import CronError, FireTimeRangeError

__all__ = [
    "EARLIEST",
    "FIELD_NAMES",
    "LATEST",
    "MACROS",
    "CronError",
    "Expansion",
    "Fire",
    "FireTimeRangeError",
    "describe",
    "expand",
    "fires_between",
    "is_wildcard_hour",
    "iter_fires",
    "next_fire",
    "validate_expression",
    "zone",
]
