"""``jobfsm kill``, ``pause``, ``resume`` and ``logs --follow``: thin adapters over the service
(:mod:`jobfsm.service.control`). Errors (an unknown job, nothing running) propagate to
:func:`jobfsm.cli.run`: one line, exit 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from jobfsm.cli.jobs import _service, _time, _user, _when
from jobfsm.problems import one_line

if TYPE_CHECKING:
    from jobfsm.service import JobView
    from jobfsm.store.control import Pause


def cmd_kill(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Exit 0 once every run asked for ended killed; 1 when nothing was running (or a run ended
    by itself before the kill reached it)."""
    with _service(args) as service:
        runs = service.kill_run(args.name, _user(args), run_id=args.run, how="jobfsm kill")
    if args.format == "json":
        out.write(json.dumps([r.to_dict() for r in runs], indent=2) + "\n")
    else:
        for r in runs:
            what = r.outcome.value if r.outcome else r.status.value
            out.write(f"run {r.id} of job {args.name!r}: {r.status.value} ({what}) on {r.node}"
                      f"{': ' + one_line(r.message) if r.message else ''}\n")
    killed = all(r.outcome is not None and r.outcome.value == "killed" for r in runs)
    if not killed:
        err.write(f"jobfsm kill: a run of job {args.name!r} ended by itself before it was killed\n")
    return 0 if killed else 1


def cmd_pause(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    until = _time(args.until, "--until", "pause")
    with _service(args) as service:
        pause = service.pause_job(args.name, _user(args), until=until, reason=args.reason)
    out.write(f"job {args.name!r} paused {_until(pause)}{_why(pause)}; its fires are recorded as skipped\n")
    return 0


def cmd_resume(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _service(args) as service:
        was = service.resume_job(args.name, _user(args))
    out.write(f"job {args.name!r} resumed\n" if was is not None else f"job {args.name!r} was not paused\n")
    return 0


def follow_logs(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the run's output as it is written (stdout to stdout, stderr to stderr), then one
    line on stderr with how it ended. Ctrl-C stops following (the run goes on)."""
    with _service(args) as service:
        if args.run is None and not any(r.status.value == "running" for r in service.get_job_history(args.name, limit=20)):
            err.write(f"waiting for the next run of job {args.name!r} (Ctrl-C stops)\n")
            err.flush()
        for piece in service.follow_output(args.name, run_id=args.run):
            if piece.stream == "stdout":
                out.write(piece.text)
                out.flush()
            elif piece.stream == "stderr":
                err.write(piece.text)
                err.flush()
            elif piece.stream == "start" and piece.run is not None:
                err.write(f"== run {piece.run.id} of job {args.name!r} ({piece.run.status.value}, "
                          f"{_when(piece.run.started_at)}, node {piece.run.node}) ==\n")
                err.flush()
            elif piece.stream == "end" and piece.run is not None:
                r = piece.run
                code = "" if r.exit_code is None else f", exit {r.exit_code}"
                outcome = f", {r.outcome.value}" if r.outcome else ""
                err.write(f"== run {r.id} ended: {r.status.value}{outcome}{code}"
                          f"{': ' + one_line(r.message) if r.message else ''} ==\n")
    return 0


def print_pauses(out: TextIO, views: Iterable[JobView]) -> None:
    """After ``jobfsm status``'s table: one line per paused job, with its end and reason."""
    paused = [v for v in views if v.pause is not None]
    if paused:
        out.write("\n")
    for v in paused:
        assert v.pause is not None
        out.write(f"paused: {one_line(v.name)} {_until(v.pause)} (by {one_line(v.pause.user)}){_why(v.pause)}\n")


def _until(pause: Pause) -> str:
    return f"until {_when(pause.until)}" if pause.until is not None else "until resumed"


def _why(pause: Pause) -> str:
    return f": {one_line(pause.reason)}" if pause.reason else ""
