"""``jobfsm next`` (fire times, marked where a DST change moved them) and ``jobfsm schema``."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from jobfsm.cli.parser import parse_time
from jobfsm.errors import CronError, FireTimeRangeError, JobNotFoundError, ValidationError
from jobfsm.problems import quote

MAX_EXPRESSION_CHARS = 255
"""As the schema's ``maxLength`` of ``schedule``."""


def _looks_like_expression(target: str) -> bool:
    return target.startswith("@") or len(target.split()) > 1


def _job_schedule(args: argparse.Namespace) -> tuple[str, str]:
    from jobfsm.config.loader import validate_file
    from jobfsm.config.names import NAME_PATTERN

    if not NAME_PATTERN.fullmatch(args.target):  # never a path: '../x', a name too long to open
        raise JobNotFoundError(args.target)
    path = args.jobs / f"{args.target}.json"
    if not path.is_file():
        raise JobNotFoundError(args.target)
    report = validate_file(path)
    if report.config is None:
        raise ValidationError(report.errors, subject=str(path))
    return report.config.schedule, report.config.timezone


def _after(args: argparse.Namespace, zone: ZoneInfo) -> datetime:
    from jobfsm.clock import SystemClock

    if args.after is None:
        return SystemClock().now()
    return parse_time(args.after, "--after", "next", zone)


def cmd_next(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jobfsm import cron
    from jobfsm.zones import find_zone, unknown_zone

    if _looks_like_expression(args.target):
        expression, zone_name = args.target, "UTC"
    else:
        expression, zone_name = _job_schedule(args)
    zone_name = args.tz or zone_name
    zone = find_zone(zone_name)
    if zone is None:
        err.write(f"jobfsm next: {unknown_zone(zone_name)}\n")
        return 1
    if len(expression) > MAX_EXPRESSION_CHARS:
        err.write(f"jobfsm next: {quote(expression)}: a cron expression is at most {MAX_EXPRESSION_CHARS} "
                  "characters (five short fields, or a macro such as '@daily')\n")
        return 1
    try:
        cron.validate_expression(expression)
    except CronError as exc:
        err.write(f"jobfsm next: {expression!r}: {exc}\n")
        return 1
    after = _after(args, zone)
    fires = []
    ended: FireTimeRangeError | None = None
    try:
        for fire in cron.iter_fires(expression, zone, after):
            fires.append(fire)
            if len(fires) == args.n:
                break
    except FireTimeRangeError as exc:  # the schedule ran past the last year computed: say so, keep what came
        ended = exc
    description = cron.describe(expression)
    if args.format == "json":
        doc = {
            "expression": expression,
            "timezone": zone_name,
            "description": description,
            "times": [f.at.isoformat() for f in fires],
            "fires": [{"time": f.at.isoformat(), "note": f.note} for f in fires],
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        out.write(f"{expression}  ({zone_name})\n{description}\n")
        for fire in fires:
            line = f"  {fire.at.isoformat()}  {fire.at:%a}"
            if fire.note:
                line += f"  ← {fire.note}"
            out.write(line + "\n")
    if ended is not None:
        err.write(f"jobfsm next: {len(fires)} of {args.n} fire time{'s' if args.n != 1 else ''}: {ended}\n")
    return 0


def cmd_schema(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jobfsm.config.schema import schema_text

    out.write(schema_text())
    return 0


__all__ = ["cmd_next", "cmd_schema"]
