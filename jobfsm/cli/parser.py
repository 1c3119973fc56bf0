"""The argument parser: commands, global options, and one-line usage errors.

Global options (``--jobs``, ``--logs``, ``--store``, ``--format``) are accepted before and
after the command: the top-level parser and every sub-parser declare them, the sub-parsers with
``argparse.SUPPRESS`` defaults so they do not override a value given before the command.
Each command names its handler as ``"module:function"``, imported only when it runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from jobfsm import __version__
from jobfsm.store.abc import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_RUNS


class UsageError(Exception):
    """Bad usage: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def _globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--jobs", metavar="DIR", default=default, help="jobs folder (env JOBFSM_JOBS; default ./jobs)"
    )
    group.add_argument(
        "--logs", metavar="DIR", default=default, help="logs folder (env JOBFSM_LOGS; default ./logs)"
    )
    group.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help="store URL: sqlite:///file.db or postgresql://… (env JOBFSM_STORE; "
        "default sqlite:///<logs>/jobfsm.db)",
    )


def _format(parser: argparse.ArgumentParser, *choices: str) -> None:
    parser.add_argument(
        "--format", choices=("text", *choices), default="text", help="output format (default text)"
    )


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
    _format(p, "json", "github")

    p = command("next", "jobfsm.cli.schedule:cmd_next", "show the next fire times of a job or expression")
    p.add_argument("target", metavar="NAME|EXPR", help="a job name, or a cron expression in quotes")
    p.add_argument("-n", type=int, default=5, metavar="N", help="how many fire times (default 5)")
    p.add_argument("--tz", metavar="TZ", help="time zone (default: the job's, else UTC)")
    p.add_argument(
        "--after", metavar="ISO-TIME", help="start after this time (default now; no offset = in --tz)"
    )
    _format(p, "json")

    command("schema", "jobfsm.cli.schedule:cmd_schema", "print the job file JSON Schema")

    p = command("start", "jobfsm.cli.daemon:cmd_start", "run the scheduler daemon in the foreground")
    p.add_argument("--max-workers", type=int, default=None, metavar="N", help="runs at once (default 32)")
    p.add_argument(
        "--grace-seconds", type=float, default=30.0, metavar="S",
        help="at shutdown, how long running jobs may finish before they are killed (default 30)",
    )
    p.add_argument("--node", metavar="NAME", help="this daemon's name in the store (default host:pid)")
    p.add_argument(
        "--keep-runs", type=int, default=DEFAULT_KEEP_RUNS, metavar="N",
        help=f"retention: keep at least the last N runs of every job (default {DEFAULT_KEEP_RUNS:,})",
    )
    p.add_argument(
        "--keep-days", type=float, default=DEFAULT_KEEP_DAYS, metavar="D",
        help=f"retention: and every run of the last D days (default {DEFAULT_KEEP_DAYS:g}); older runs "
        "beyond the last N are deleted with their output files, hourly and at start-up",
    )

    p = command("status", "jobfsm.cli.jobs:cmd_status", "every job: state, schedule, last and next run")
    _format(p, "json")

    p = command("history", "jobfsm.cli.jobs:cmd_history", "past runs of a job, newest first")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--status", choices=("running", "succeeded", "failed", "skipped", "lost"))
    p.add_argument("--since", metavar="ISO-TIME")
    p.add_argument("--until", metavar="ISO-TIME")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    _format(p, "json")

    p = command("logs", "jobfsm.cli.jobs:cmd_logs", "the output of a job's runs")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--run", type=int, metavar="ID", help="only this run")
    p.add_argument("--grep", metavar="TEXT", help="only lines containing TEXT")
    p.add_argument("--status", choices=("running", "succeeded", "failed", "skipped", "lost"))
    p.add_argument("--limit", type=int, default=5, metavar="N", help="the newest N runs (default 5)")
    _format(p, "json")

    p = command("run", "jobfsm.cli.jobs:cmd_run", "run a job now, wait, print the result")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--user", default=None, help="who asks, for the audit log (default: your login name)")
    _format(p, "json")

    for verb in ("enable", "disable"):
        p = command(verb, f"jobfsm.cli.jobs:cmd_{verb}", f"{verb} a job (edits its file atomically)")
        p.add_argument("name", metavar="NAME")
        p.add_argument("--user", default=None, help="who asks, for the audit log (default: your login name)")

    p = command("create", "jobfsm.cli.jobs:cmd_create", "add a job from a JSON file (validated)")
    p.add_argument("file", metavar="FILE", help="a job file, or - for standard input")
    p.add_argument("--user", default=None, help="who asks, for the audit log (default: your login name)")

    p = command("delete", "jobfsm.cli.jobs:cmd_delete", "delete a job's file")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--user", default=None, help="who asks, for the audit log (default: your login name)")

    p = command("audit", "jobfsm.cli.jobs:cmd_audit", "who did what")
    p.add_argument("--user", dest="audit_user", metavar="USER")
    p.add_argument("--job", metavar="NAME")
    p.add_argument("--since", metavar="ISO-TIME")
    p.add_argument("--limit", type=int, default=50, metavar="N")
    _format(p, "json")

    p = command("admin", "jobfsm.cli.admin:cmd_admin", "serve the admin page")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--users-file", metavar="FILE", help="accounts file (default <logs>/users.json)")
    p.add_argument(
        "--secure-cookies", action="store_true",
        help="mark the session cookie Secure (only sent over HTTPS; use behind a TLS proxy)",
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


def resolve_globals(args: argparse.Namespace) -> None:
    """Fill the global options from the environment and defaults."""
    for name, env, default in (("jobs", "JOBFSM_JOBS", "jobs"), ("logs", "JOBFSM_LOGS", "logs")):
        value = getattr(args, name, None) or os.environ.get(env) or default
        setattr(args, name, Path(value))
    store = getattr(args, "store", None) or os.environ.get("JOBFSM_STORE")
    args.store = store or f"sqlite:///{args.logs / 'jobfsm.db'}"
    if getattr(args, "n", 1) is not None and getattr(args, "n", 1) < 1:
        raise UsageError("jobfsm: error: -n must be at least 1 (see 'jobfsm --help')")
