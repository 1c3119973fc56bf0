"""The argument parser: commands, global options, and one-line usage errors.

Global options (``--jobs``, ``--logs``, ``--store``, ``--format``) are accepted before and
after the command: the top-level parser and every sub-parser declare them, the sub-parsers with
``argparse.SUPPRESS`` defaults so they do not override a value given before the command.
Each command names its handler as ``"module:function"``, imported only when it runs.

Numbers and times are bounded here, so a hostile value is one line and exit 2 instead of a
gigabyte of output or an ``OverflowError`` deep in the store (the bounds are in the README's
command table and in each option's ``--help``).
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from jobfsm import __version__
from jobfsm.cron.spec import EARLIEST, LATEST
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS, NODES_SEEN_WITHIN_SECONDS
from jobfsm.places import DEFAULT_JOBS, DEFAULT_LOGS, default_store_url
from jobfsm.store.abc import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_RUNS

MAX_NEXT = 1000
"""``jobfsm next -n``: fire times listed at most."""
MAX_LIMIT = 10_000
"""``--limit`` of ``history`` and ``audit``: records at most (each run carries its output tails)."""
MAX_LOGS_LIMIT = 100
"""``logs --limit``: runs at most (each run's output is read, up to 2 MiB a stream)."""
MAX_RUN_ID = 2**63 - 1
"""Run ids are 64-bit integers in the store."""
MAX_KEEP_RUNS = 1_000_000_000
MAX_KEEP_DAYS = 36_500
"""``start --keep-days``: a hundred years (more would move the cut-off before year 1)."""
MAX_GRACE_SECONDS = 86_400
MAX_SEEN_WITHIN = 100 * 365 * 86_400
"""``nodes --seen-within`` and ``--dead-after``: a hundred years."""
MAX_WORKERS = 4096
PATH_QUOTE_CHARS = 4096
"""A path given on the command line is quoted whole up to PATH_MAX, shortened beyond."""
EARLIEST_TIME, LATEST_TIME = EARLIEST, LATEST
"""Time options are taken between these: the span :mod:`jobfsm.cron` computes fires in."""


class UsageError(Exception):
    """Bad usage: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # "argument -n: must be ..." from a bounded type reads better as "-n must be ..."
        message = re.sub(r"^argument ([^:]+): (must|cannot) ", r"\1 \2 ", message)
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + f"… ({len(text):,} characters)"


def _admin_options() -> Any:
    from jobfsm.cli import admin

    return admin


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``low`` to ``high``, else a one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text) if len(text.strip()) <= 40 else None  # int() refuses 4,300 digits
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {_shown(text)}") from None
        if value is not None and value < low:
            raise argparse.ArgumentTypeError(
                "cannot be negative" if low == 0 else f"must be at least {low:,}"
            )
        if value is None or value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,}, not {_shown(text)}")
        return value

    return parse


def real_number(low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type``: a finite number from ``low`` to ``high`` (nan and inf refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {_shown(text)}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {_shown(text)}")
        if value < low:
            raise argparse.ArgumentTypeError("cannot be negative" if low == 0 else f"must be at least {low:g}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,g}, not {_shown(text)}")
        return value

    return parse


def parse_time(value: str, option: str, command: str, zone: tzinfo = UTC) -> datetime:
    """An ISO 8601 option value as an aware time (no offset: in ``zone``), between
    :data:`EARLIEST_TIME` and :data:`LATEST_TIME`; else a :class:`UsageError`."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"jobfsm {command}: error: {option} {_shown(value)} is not an ISO 8601 time "
            "(e.g. 2026-03-29, 2026-03-29T14:00 or 2026-03-29T14:00+02:00)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        inside = EARLIEST_TIME <= parsed <= LATEST_TIME
    except OverflowError:  # its UTC offset takes it past year 1 or 9999
        inside = False
    if not inside:
        raise UsageError(
            f"jobfsm {command}: error: {option} {_shown(value)} is out of range: times go from "
            f"{EARLIEST_TIME.date().isoformat()} to {LATEST_TIME.date().isoformat()} (UTC)"
        )
    return parsed


def _globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--jobs", metavar="DIR", default=default, help=f"jobs folder (env JOBFSM_JOBS; default ./{DEFAULT_JOBS})"
    )
    group.add_argument(
        "--logs", metavar="DIR", default=default, help=f"logs folder (env JOBFSM_LOGS; default ./{DEFAULT_LOGS})"
    )
    group.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help="store URL: sqlite:///file.db or postgresql://… (env JOBFSM_STORE; "
        f"default {default_store_url('<logs>')})",
    )


def _git_commit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--git-commit", action="store_true",
        help="commit each change of a job file in the jobs folder's git work tree, authored by "
        "the acting user; a file with uncommitted changes is refused",
    )


def _format(parser: argparse.ArgumentParser, *choices: str) -> None:
    parser.add_argument(
        "--format", choices=("text", *choices), default="text", help="output format (default text)"
    )


def _operations(p: argparse.ArgumentParser) -> None:
    """``jobfsm start``'s notification and metrics options (checked in :mod:`jobfsm.cli.daemon`)."""
    group = p.add_argument_group("notifications and metrics")
    group.add_argument("--notify-webhook", metavar="URL",
                       help="POST every job's notifications here unless its notify says otherwise "
                       "(env JOBFSM_NOTIFY_WEBHOOK; signed when JOBFSM_WEBHOOK_SECRET is set)")
    group.add_argument("--notify-email", metavar="ADDR", action="append", default=[],
                       help="mail every job's notifications here unless its notify says otherwise (repeatable)")
    group.add_argument("--smtp", metavar="URL",
                       help="mail server: smtp://user:password@host:port, STARTTLS when offered, or smtps://… "
                       "(env JOBFSM_SMTP_URL)")
    group.add_argument("--metrics", metavar="HOST:PORT",
                       help="serve Prometheus metrics at http://HOST:PORT/metrics (default: off)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jobfsm",
        description="jobfsm: cron jobs as JSON files, run by a small daemon; every job a state machine.",
        epilog="Exit codes: 0 ok, 1 invalid input or failed check, 2 bad usage. "
        "`jobfsm COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"jobfsm {__version__}")
    _globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, handler: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _globals(p, top=False)
        p.set_defaults(handler=handler)
        return p

    p = command("validate", "jobfsm.cli.validate:cmd_validate", "check job files and folders")
    p.add_argument("paths", nargs="+", metavar="PATH", help="job files or folders of *.json files")
    p.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    p.add_argument(
        "--as-of", metavar="ISO-TIME",
        help="lint as of this time (DST changes of the next year, the coming week's minutes; default now)",
    )
    p.add_argument(
        "--max-same-minute", type=whole_number(1, 1_000_000), default=None, metavar="N",
        help="warn when more than N enabled jobs are due in one minute (default 32, "
        "jobfsm start's default --max-workers)",
    )
    _format(p, "json", "github")

    p = command("next", "jobfsm.cli.schedule:cmd_next", "show the next fire times of a job or expression")
    p.add_argument("target", metavar="NAME|EXPR", help="a job name, or a cron expression in quotes")
    p.add_argument(
        "-n", type=whole_number(1, MAX_NEXT), default=5, metavar="N",
        help=f"how many fire times (default 5, at most {MAX_NEXT:,})",
    )
    p.add_argument("--tz", metavar="TZ", help="time zone (default: the job's, else UTC)")
    p.add_argument(
        "--after", metavar="ISO-TIME",
        help="start after this time (default now; no offset = in --tz; years 1 to 9998)",
    )
    _format(p, "json")

    command("schema", "jobfsm.cli.schedule:cmd_schema", "print the job file JSON Schema")

    p = command("start", "jobfsm.cli.daemon:cmd_start", "run the scheduler daemon in the foreground")
    p.add_argument(
        "--max-workers", type=whole_number(1, MAX_WORKERS), default=None, metavar="N",
        help=f"runs at once (default 32, at most {MAX_WORKERS:,})",
    )
    p.add_argument(
        "--grace-seconds", type=real_number(0, MAX_GRACE_SECONDS), default=30.0, metavar="S",
        help="at shutdown, how long running jobs may finish before they are killed "
        f"(default 30, at most {MAX_GRACE_SECONDS:,})",
    )
    p.add_argument("--node", metavar="NAME", help="this daemon's name in the store (default host:pid)")
    p.add_argument(
        "--dead-after", type=real_number(1, 3600), default=DEFAULT_DEAD_AFTER_SECONDS, metavar="SECONDS",
        help=f"several hosts on one store: a node with no heartbeat for this long, by the database's clock, "
        f"is dead; its running runs are marked lost and retried elsewhere (default {DEFAULT_DEAD_AFTER_SECONDS:g})",
    )
    p.add_argument(
        "--keep-runs", type=whole_number(0, MAX_KEEP_RUNS), default=DEFAULT_KEEP_RUNS, metavar="N",
        help=f"retention: keep at least the last N runs of every job (default {DEFAULT_KEEP_RUNS:,}, "
        f"at most {MAX_KEEP_RUNS:,})",
    )
    p.add_argument(
        "--keep-days", type=real_number(0, MAX_KEEP_DAYS), default=DEFAULT_KEEP_DAYS, metavar="D",
        help=f"retention: and every run of the last D days (default {DEFAULT_KEEP_DAYS:g}, at most "
        f"{MAX_KEEP_DAYS:,}); older runs beyond the last N are deleted with their output files, "
        "hourly and at start-up",
    )
    _operations(p)

    p = command("check", "jobfsm.cli.check:cmd_check",
                "exit 1 if no daemon is alive, a job missed fires or is failing (one line each)")
    _format(p, "json")

    p = command("status", "jobfsm.cli.jobs:cmd_status", "every job: state, schedule, last and next run")
    _format(p, "json")

    p = command("history", "jobfsm.cli.jobs:cmd_history", "past runs of a job, newest first")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--status", choices=("running", "succeeded", "failed", "skipped", "lost"))
    p.add_argument("--since", metavar="ISO-TIME", help="runs started at or after (no offset = UTC)")
    p.add_argument("--until", metavar="ISO-TIME", help="runs started at or before (no offset = UTC)")
    p.add_argument(
        "--limit", type=whole_number(1, MAX_LIMIT), default=20, metavar="N",
        help=f"at most N runs (default 20, at most {MAX_LIMIT:,})",
    )
    _format(p, "json")

    p = command("logs", "jobfsm.cli.jobs:cmd_logs", "the output of a job's runs")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--run", type=whole_number(1, MAX_RUN_ID), metavar="ID", help="only this run")
    p.add_argument("--grep", metavar="TEXT", help="only lines containing TEXT")
    p.add_argument("--status", choices=("running", "succeeded", "failed", "skipped", "lost"))
    p.add_argument(
        "--limit", type=whole_number(1, MAX_LOGS_LIMIT), default=5, metavar="N",
        help=f"the newest N runs (default 5, at most {MAX_LOGS_LIMIT:,})",
    )
    _format(p, "json")

    p.add_argument(
        "--follow", "-f", action="store_true",
        help="print the running (or next) run's output as it is written, until the run ends",
    )

    _control_commands(command)

    p = command("run", "jobfsm.cli.jobs:cmd_run", "run a job now, wait, print the result")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--user", default=None, help="who asks, for the audit log (default: your login name)")
    _format(p, "json")

    for verb in ("enable", "disable"):
        p = command(verb, f"jobfsm.cli.jobs:cmd_{verb}", f"{verb} a job (edits its file atomically)")
        p.add_argument("name", metavar="NAME")
        p.add_argument("--user", default=None, help="who asks, for the audit log (default: your login name)")
        _git_commit(p)

    p = command("create", "jobfsm.cli.jobs:cmd_create", "add a job from a JSON file (validated)")
    p.add_argument("file", metavar="FILE", help="a job file, or - for standard input")
    p.add_argument("--user", default=None, help="who asks, for the audit log (default: your login name)")
    _git_commit(p)

    p = command("delete", "jobfsm.cli.jobs:cmd_delete", "delete a job's file")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--user", default=None, help="who asks, for the audit log (default: your login name)")
    _git_commit(p)

    p = command("audit", "jobfsm.cli.jobs:cmd_audit", "who did what")
    p.add_argument("--user", dest="audit_user", metavar="USER")
    p.add_argument("--job", metavar="NAME")
    p.add_argument("--since", metavar="ISO-TIME", help="entries at or after (no offset = UTC)")
    p.add_argument(
        "--limit", type=whole_number(1, MAX_LIMIT), default=50, metavar="N",
        help=f"at most N entries (default 50, at most {MAX_LIMIT:,})",
    )
    _format(p, "json")

    p = command("import", "jobfsm.cli.importer:cmd_import", "convert a crontab into job files")
    kinds = p.add_subparsers(dest="import_kind", metavar="KIND", parser_class=_Parser, required=True)
    crontab = kinds.add_parser(
        "crontab", help="one job file per crontab line (written disabled unless --enabled)",
        description="one job file per crontab line (written disabled unless --enabled)",
    )
    _globals(crontab, top=False)
    crontab.add_argument("file", metavar="FILE|-", help="a crontab (crontab -l, /etc/crontab, /etc/cron.d/*), or - for stdin")
    crontab.add_argument("--out", metavar="DIR", help="where to write the job files (default the jobs folder)")
    crontab.add_argument("--enabled", action="store_true", help="write the jobs enabled (default disabled)")
    crontab.add_argument(
        "--user-column", action=argparse.BooleanOptionalAction, default=None,
        help="whether a user stands between schedule and command (default: a system crontab by its "
        "path, or when every line names a user of this host)",
    )

    p = command("init", "jobfsm.cli.init:cmd_init", "start a jobs repository: an example job, a systemd unit, a CI workflow")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="where (default the current folder)")

    p = command("nodes", "jobfsm.cli.nodes:cmd_nodes", "every node seen recently: alive or not, what it runs")
    p.add_argument(
        "--seen-within", type=real_number(0, MAX_SEEN_WITHIN), default=NODES_SEEN_WITHIN_SECONDS, metavar="S",
        help=f"nodes heard from within S seconds, and every node running something (default "
        f"{NODES_SEEN_WITHIN_SECONDS:g}, at most {MAX_SEEN_WITHIN:,})",
    )
    p.add_argument(
        "--dead-after", type=real_number(0, MAX_SEEN_WITHIN), default=DEFAULT_DEAD_AFTER_SECONDS, metavar="S",
        help=f"a node is alive with a heartbeat at most S seconds old, by the store's clock (default "
        f"{DEFAULT_DEAD_AFTER_SECONDS:g}, as `jobfsm start --dead-after`; at most {MAX_SEEN_WITHIN:,})",
    )
    _format(p, "json")

    p = command("admin", "jobfsm.cli.admin:cmd_admin", "serve the admin page")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=whole_number(0, 65535), default=7860, help="port (default 7860)")
    p.add_argument("--users-file", metavar="FILE", help="accounts file (default <logs>/users.json)")
    p.add_argument(
        "--secure-cookies", action="store_true",
        help="mark the session cookie Secure (only sent over HTTPS; use behind a TLS proxy)",
    )
    _git_commit(p)
    p.add_argument(  # type and defaults: jobfsm/cli/admin.py
        "--forwarded-allow-ips", metavar="IPS", default="", type=_admin_options().forwarded_ips,
        help="comma-separated proxy addresses or networks whose X-Forwarded-For is trusted (default: none)",
    )
    p.add_argument(
        "--idle-timeout", metavar="SECONDS", type=whole_number(60, 30 * 86400),
        default=_admin_options().DEFAULT_IDLE_SECONDS,
        help="end a session after this long without a request (default 3600; an open page keeps it alive)",
    )

    p = command("users", "jobfsm.cli.admin:cmd_users", "manage admin-page accounts")
    p.add_argument("--users-file", metavar="FILE", help="accounts file (default <logs>/users.json)")
    users = p.add_subparsers(dest="users_command", metavar="ACTION", parser_class=_Parser, required=True)
    add = users.add_parser("add", help="add or replace an account (password from a prompt or stdin)")
    add.add_argument("username", metavar="NAME")
    add.add_argument("--role", choices=("admin", "viewer"), required=True)
    users.add_parser("list", help="list accounts")
    rm = users.add_parser("remove", help="remove an account")
    rm.add_argument("username", metavar="NAME")
    return parser


MAX_REASON_CHARS = 1000
"""``pause --reason``: characters at most."""


def _reason(text: str) -> str:
    if len(text) > MAX_REASON_CHARS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_REASON_CHARS:,} characters, not {len(text):,}")
    return " ".join(text.split())  # one line: it is shown in tables and log lines


def _control_commands(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """``kill``, ``pause``, ``resume`` (jobfsm.cli.control)."""
    who = "who asks, for the audit log (default: your login name)"
    p = command("kill", "jobfsm.cli.control:cmd_kill",
                "end a running run (its whole process group) on whichever node runs it")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--run", type=whole_number(1, MAX_RUN_ID), metavar="ID",
                   help="only this run (default: every run of the job in progress)")
    p.add_argument("--user", default=None, help=who)
    _format(p, "json")
    p = command("pause", "jobfsm.cli.control:cmd_pause",
                "skip a job's fires (recorded as skipped, with the reason) until a time or a resume")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--until", metavar="ISO-TIME", help="resume by itself then (no offset = UTC)")
    p.add_argument("--reason", type=_reason, default="", metavar="TEXT",
                   help=f"why, shown in status and in each skipped fire (at most {MAX_REASON_CHARS:,} characters)")
    p.add_argument("--user", default=None, help=who)
    p = command("resume", "jobfsm.cli.control:cmd_resume", "end a job's pause now")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--user", default=None, help=who)


def resolve_globals(args: argparse.Namespace) -> None:
    """Fill the global options from the environment and defaults."""
    for name, env, default in (("jobs", "JOBFSM_JOBS", DEFAULT_JOBS), ("logs", "JOBFSM_LOGS", DEFAULT_LOGS)):
        value = getattr(args, name, None) or os.environ.get(env) or default
        setattr(args, name, Path(value))
    store = getattr(args, "store", None) or os.environ.get("JOBFSM_STORE")
    args.store = store or default_store_url(args.logs)
