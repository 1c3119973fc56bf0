"""A cron expression in plain words, for the command line and the admin page."""

from __future__ import annotations

import functools
import logging

from jobfsm.cron.syntax import expand

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=32768)
def describe(expr: str) -> str:
    """The expression in plain words ("At 02:30", "Every 15 minutes, Monday through Friday")."""
    from cron_descriptor import ExpressionDescriptor, Options

    spec = expand(expr)
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
