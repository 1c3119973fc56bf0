"""The job commands (``status history logs run enable disable create delete audit``): thin
adapters over :class:`jobfsm.service.JobManagementService`.

Each handler builds one service over ``--jobs``/``--logs``/``--store``, calls it, prints, and
closes it. Errors from the service (unknown job, invalid file, stale version) propagate to
:func:`jobfsm.cli.run`, which prints them as one line and exits 1; a bad ``--since``/``--until``
is a :class:`UsageError` (exit 2). Machine output (``--format json``) has the keys the README lists: times
are ISO 8601 with their offset. The confirmation prompt of ``delete`` goes to stderr, so stdout
stays clean for scripts.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from jobfsm.cli.parser import PATH_QUOTE_CHARS, UsageError, parse_time
from jobfsm.clock import duration_text
from jobfsm.errors import ValidationError
from jobfsm.model import RunStatus
from jobfsm.problems import one_line, quote

if TYPE_CHECKING:
    from jobfsm.service import JobManagementService, LogEntry
    from jobfsm.service.hooks import FileHook
    from jobfsm.store.abc import AuditEntry, RunRecord

OUTPUT_TAIL_LINES = 20
"""How many last lines of each stream ``jobfsm run`` prints."""


@contextlib.contextmanager
def _service(args: argparse.Namespace) -> Iterator[JobManagementService]:
    from jobfsm.service import JobManagementService
    from jobfsm.store import open_store

    hooks = file_hooks(args)
    store = open_store(args.store)
    service = JobManagementService(args.jobs, args.logs, store, file_hooks=hooks)
    try:
        yield service
    finally:
        service.close()
        store.close()


def file_hooks(args: argparse.Namespace) -> list[FileHook]:
    """``--git-commit``: the git hook over the jobs folder (a one-line error when it is no work tree)."""
    if not getattr(args, "git_commit", False):
        return []
    from jobfsm.service.gitcommit import GitCommitter

    return [GitCommitter(args.jobs)]


def _committed(args: argparse.Namespace) -> str:
    return "; committed in git" if getattr(args, "git_commit", False) else ""


def _user(args: argparse.Namespace) -> str:
    """``--user``, else the login name (``getpass`` reads LOGNAME/USER, then the password database)."""
    explicit = getattr(args, "user", None)
    if explicit:
        return str(explicit)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _time(value: str | None, option: str, command: str) -> datetime | None:
    """An ISO 8601 option value, aware UTC (a naive time is taken as UTC), within the bounds of
    :func:`~jobfsm.cli.parser.parse_time`."""
    if value is None:
        return None
    return parse_time(value, option, command).astimezone(UTC)


def _when(dt: datetime | None) -> str:
    return dt.isoformat(sep=" ", timespec="seconds") if dt else "-"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else duration_text(seconds)


def _table(out: TextIO, headers: list[str], rows: list[list[str]]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    for row in [headers, *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _json(out: TextIO, data: Any) -> None:
    """One JSON document, readable (no ``\\u`` escapes for accented letters). A lone surrogate
    (a file name that is not UTF-8 holds one) cannot be written as UTF-8, so it alone is
    written as its escape: the JSON still reads back to the same string."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    out.write(_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


# -- status / history / logs ---------------------------------------------------------------


def _jobs_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be listed as the jobs folder, or None."""
    shown = quote(str(folder), PATH_QUOTE_CHARS)
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        return f"jobs folder {shown} does not exist; create it or pass --jobs DIR"
    except OSError as exc:
        return f"cannot read jobs folder {shown}: {exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return f"jobs folder {shown} is not a folder; pass --jobs DIR"
    return None


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    unusable = _jobs_folder_problem(args.jobs)
    if unusable:  # "no jobs" would hide a typo in --jobs
        err.write(f"jobfsm status: error: {unusable}\n")
        return 1
    with _service(args) as service:
        views = service.list_jobs()
        alive = service.daemon_alive()
    if args.format == "json":
        _json(out, [v.to_dict() for v in views])
        return 0
    if not alive:  # a first run: what `jobfsm start` would load, and what to do when nothing runs
        from jobfsm.adopt.firstrun import status_note

        err.write(status_note(views, args.jobs))
    if not views:
        out.write(f"no jobs in '{args.jobs}'\n")
        return 0
    rows, broken = [], []
    for v in views:
        last = v.last_run
        last_text = f"{_when(last.started_at)} {last.status.value}" if last else "-"
        if v.config is None:
            rows.append([one_line(v.name), v.shown_state, "-", "-", "-", last_text, "-"])
            broken.append(v)
            continue
        rows.append([
            v.name,
            v.shown_state,
            "yes" if v.enabled else "no",
            v.config.schedule,
            _when(v.next_run),
            last_text,
            one_line(last.node) if last and last.status is RunStatus.RUNNING else "-",
        ])
    _table(out, ["NAME", "STATE", "ENABLED", "SCHEDULE", "NEXT RUN", "LAST RUN", "RUNNING ON"], rows)
    from jobfsm.cli.control import print_pauses

    print_pauses(out, views)
    for v in broken:  # what is wrong, and that the job has not stopped because of it
        out.write(f"\n{one_line(v.file)} is invalid:\n")
        for problem in (p for p in v.problems if p.is_error):
            out.write(f"  {one_line(problem.json_path)}: {one_line(problem.message)}\n")
        kept = f" (its state: {v.state.value})" if v.state else ""
        out.write(f"  a running daemon keeps job {one_line(v.name)!r} on its last good version{kept}\n")
    return 0


def _run_rows(runs: list[RunRecord]) -> list[list[str]]:
    return [
        [
            str(r.id),
            r.status.value,
            r.trigger.value,
            _when(r.started_at),
            _duration(r.duration_seconds),
            "-" if r.exit_code is None else str(r.exit_code),
            one_line(r.node),
            one_line(r.message)[:60],
        ]
        for r in runs
    ]


def cmd_history(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    since = _time(args.since, "--since", "history")
    until = _time(args.until, "--until", "history")
    with _service(args) as service:
        runs = service.get_job_history(
            args.name, status=args.status, since=since, until=until, limit=args.limit
        )
    if args.format == "json":
        _json(out, [r.to_dict() for r in runs])
        return 0
    if not runs:
        out.write(f"no runs of job {args.name!r}\n")
        return 0
    _table(out, ["ID", "STATUS", "TRIGGER", "STARTED", "DURATION", "EXIT", "NODE", "MESSAGE"], _run_rows(runs))
    return 0


def cmd_logs(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if getattr(args, "follow", False):
        from jobfsm.cli.control import follow_logs

        return follow_logs(args, out, err)
    with _service(args) as service:
        entries = service.get_job_logs(
            args.name, search=args.grep, status=args.status, run_id=args.run, limit=args.limit
        )
    if args.format == "json":
        _json(out, [{"run": e.run.to_dict(), "stdout": e.stdout, "stderr": e.stderr, "output": e.source.value,
                     "note": e.note} for e in entries])
        return 0
    if not entries:
        what = f" matching {args.grep!r}" if args.grep else ""
        out.write(f"no output of job {args.name!r}{what}\n")
        return 0
    for e in entries:
        r = e.run
        code = "" if r.exit_code is None else f", exit {r.exit_code}"
        out.write(f"== run {r.id} ({r.status.value}{code}, {_when(r.started_at)}, node {one_line(r.node)}) ==\n")
        if e.note:
            out.write(f"-- {one_line(e.note)} --\n")
        if e.stdout:
            out.write(e.stdout if e.stdout.endswith("\n") else e.stdout + "\n")
        if e.stderr:
            out.write("-- stderr --\n")
            out.write(e.stderr if e.stderr.endswith("\n") else e.stderr + "\n")
    return 0


# -- run / enable / disable ----------------------------------------------------------------


def _tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    kept = text.splitlines()[-lines:]
    return "".join(line + "\n" for line in kept)


def cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Trigger, wait for the run and for each retry the job's ``retries`` allow; print each
    attempt. The exit code is the last attempt's."""
    with _service(args) as service:
        run = service.wait_for_run(service.trigger_job(args.name, _user(args)))
        attempts = [(run, service.get_job_logs(args.name, run_id=run.id, limit=1))]
        while True:
            if args.format != "json":
                _print_attempt(out, args.name, *attempts[-1])
            retry = service.wait_for_retry(run)
            if retry is None:
                break
            run = retry
            attempts.append((run, service.get_job_logs(args.name, run_id=run.id, limit=1)))
    if args.format == "json":
        _json(out, run.to_dict())
    return run.exit_code if run.exit_code is not None else 1


def _print_attempt(out: TextIO, name: str, run: RunRecord, entries: list[LogEntry]) -> None:
    what = f"retry {run.attempt} (run {run.id})" if run.trigger == "retry" else f"run {run.id}"
    summary = f"{what} of job {name!r}: {run.status.value}"
    if run.exit_code is not None:
        summary += f" (exit {run.exit_code})"
    if run.duration_seconds is not None:
        summary += f" in {_duration(run.duration_seconds)}"
    if run.message:
        summary += f": {one_line(run.message)}"
    out.write(summary + "\n")
    if entries:
        stdout, stderr = _tail(entries[0].stdout), _tail(entries[0].stderr)
        if stdout:
            out.write("-- stdout (last lines) --\n" + stdout)
        if stderr:
            out.write("-- stderr (last lines) --\n" + stderr)
        if entries[0].note:
            out.write(f"-- {one_line(entries[0].note)} --\n")
    out.flush()


def _toggle(args: argparse.Namespace, out: TextIO, enable: bool) -> int:
    with _service(args) as service:
        before = service.get_job(args.name).enabled
        view = (service.enable_job if enable else service.disable_job)(args.name, _user(args))
    verb = "enabled" if enable else "disabled"
    if before == enable:
        out.write(f"job {args.name!r} was already {verb}\n")
    else:
        state = view.state.value if view.state else "-"
        out.write(f"job {args.name!r} {verb} (state: {state}){_committed(args)}\n")
    return 0


def cmd_enable(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _toggle(args, out, True)


def cmd_disable(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _toggle(args, out, False)


# -- create / delete -----------------------------------------------------------------------


def _problems(err: TextIO, exc: ValidationError) -> int:
    for problem in exc.problems:
        err.write(f"{problem}\n")
    return 1


def cmd_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jobfsm.config.loader import decode_text, parse_document, read_job_bytes, read_job_stream

    shown = "<stdin>" if args.file == "-" else args.file
    if args.file == "-":
        stream = sys.stdin
        if hasattr(stream, "buffer"):
            raw, problem = read_job_stream(stream.buffer, shown)
        else:  # a text stream (tests): bounded the same way, then encoded
            raw, problem = read_job_stream(stream, shown)
            raw = cast("str", raw).encode("utf-8", "surrogateescape")
    else:
        try:
            raw, problem = read_job_bytes(args.file, shown)
        except OSError as exc:
            raise UsageError(
                f"jobfsm create: error: cannot read {args.file!r}: {exc.strerror or exc}"
            ) from None
    text = document = None
    if problem is None:
        text, problem = decode_text(raw, shown)
    if text is not None:
        document, problem = parse_document(text, shown)
    if problem is not None:
        err.write(f"{problem}\n")
        return 1
    with _service(args) as service:
        try:
            # any JSON: the service validates it (a non-object is a failed, audited request)
            view = service.create_job(cast("dict[str, Any]", document), _user(args))
        except ValidationError as exc:
            return _problems(err, exc)
    out.write(f"created job {view.name!r} in {view.file}{_committed(args)}\n")
    for problem in view.problems:
        err.write(f"{problem}\n")
    return 0


def cmd_delete(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _service(args) as service:
        view = service.get_job(args.name)
        if not args.yes:
            err.write(f"Delete job {args.name!r}? [y/N] ")
            err.flush()
            answer = sys.stdin.readline()
            if answer.strip().lower() not in ("y", "yes"):
                err.write("\nnot deleted\n" if not answer else "not deleted\n")
                return 1
        service.delete_job(args.name, _user(args), expected_version=view.version)
    out.write(f"deleted job {args.name!r} ({view.file}){_committed(args)}\n")
    return 0


# -- audit ---------------------------------------------------------------------------------


def _details_text(entry: AuditEntry) -> str:
    d = entry.details
    if d.get("changes"):
        parts = [f"{k}: {json.dumps(v['old'])} -> {json.dumps(v['new'])}" for k, v in d["changes"].items()]
        text = "; ".join(parts)
    elif "reason" in d:
        text = str(d["reason"])
    elif "run_id" in d:
        text = f"run {d['run_id']}"
    else:
        text = ""
    return one_line(text)[:80]


def cmd_audit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    since = _time(args.since, "--since", "audit")
    with _service(args) as service:
        entries = service.list_audit(user=args.audit_user, job=args.job, since=since, limit=args.limit)
    if args.format == "json":
        _json(out, [e.to_dict() for e in entries])
        return 0
    if not entries:
        out.write("no audit entries\n")
        return 0
    rows = [
        [_when(e.time), one_line(e.user), e.action, one_line(e.job or "-"), e.outcome, _details_text(e)]
        for e in entries
    ]
    _table(out, ["TIME", "USER", "ACTION", "JOB", "OUTCOME", "DETAILS"], rows)
    return 0
