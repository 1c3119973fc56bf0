"""``jobfsm import crontab FILE|-``: one job file per crontab line, written where none exists.

The crontab is read by :mod:`jobfsm.adopt.crontab` (pure); this module reads the file, decides
whether it has a user column, writes the valid documents with the jobs folder's atomic write
under its lock, and says what happened to each line in crontab order: a job written, a line not
converted or not applied (on stderr), a warning; then the counts and how to switch over. Exit 1
when any line was not converted or not applied, or a file existed.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import shutil
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TextIO

from jobfsm.adopt.crontab import (
    CrontabImport,
    ImportedJob,
    LineProblem,
    LineWarning,
    looks_like_system,
    parse_crontab,
)
from jobfsm.cli.parser import PATH_QUOTE_CHARS, UsageError
from jobfsm.places import DEFAULT_JOBS
from jobfsm.problems import quote

MAX_CRONTAB_BYTES = 16 * 1024 * 1024
"""A crontab larger than this is refused (cron's own limit is far lower)."""
SYSTEM_CRONTABS = ("/etc/crontab", "/etc/cron.d/")


def _read(path: str, err: TextIO) -> tuple[str, str]:
    """(the text, the name it is called by); a file that cannot be read is a usage error."""
    shown = "<stdin>" if path == "-" else quote(path, PATH_QUOTE_CHARS)
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_CRONTAB_BYTES + 1)
        else:
            with open(path, "rb") as f:
                raw = f.read(MAX_CRONTAB_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"jobfsm import crontab: error: cannot read {shown}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CRONTAB_BYTES:
        raise UsageError(f"jobfsm import crontab: error: {shown} is over {MAX_CRONTAB_BYTES:,} bytes; "
                         "is it a crontab?")
    return raw.decode("utf-8", errors="surrogateescape"), ("stdin" if path == "-" else Path(path).name)


def _known_user(name: str) -> bool:
    """A user of this host that is not also a program on PATH (Debian has users ``mail`` and
    ``backup``: ``0 7 * * 1 mail -s …`` in a user crontab is a command, not a user column)."""
    try:
        pwd.getpwnam(name)
    except (KeyError, UnicodeEncodeError, ValueError):
        if name != "root":
            return False
    return shutil.which(name) is None


def _home_of(user: str | None) -> str:
    """Cron runs a job in its user's home ('/' when the user is unknown here)."""
    try:
        home = pwd.getpwnam(user).pw_dir if user else os.path.expanduser("~")
    except (KeyError, UnicodeEncodeError, ValueError):
        return "/"
    return home if home.startswith("/") else "/"


def _user_column(args: argparse.Namespace, text: str) -> tuple[bool, str]:
    """Whether the crontab has a user column, and why it was read so."""
    if args.user_column is not None:
        return args.user_column, "as told"
    absolute = os.path.abspath(args.file) if args.file != "-" else ""
    if absolute == SYSTEM_CRONTABS[0] or absolute.startswith(SYSTEM_CRONTABS[1]):
        return True, "a system crontab by its path"
    if looks_like_system(text, _known_user):
        return True, "every line names a user of this host after its schedule"
    return False, "no line names a user of this host after its schedule"


def cmd_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    text, source = _read(args.file, err)
    user_column, why = _user_column(args, text)
    folder = Path(args.out) if args.out is not None else Path(args.jobs)
    result = parse_crontab(
        text, source=source, user_column=user_column, enabled=args.enabled, home_of=_home_of,
    )
    kind = "a system crontab, with a user column" if user_column else "a user crontab, with no user column"
    other = "--no-user-column if it has none" if user_column else "--user-column if it has one"
    hint = "" if args.user_column is not None else f"; pass {other}"
    out.write(f"read {source} as {kind} ({why}{hint})\n")
    written, existing = _write(result, folder, out, err)
    return _summary(result, folder, written, existing, args.enabled, out)


def _write(result: CrontabImport, folder: Path, out: TextIO, err: TextIO) -> tuple[list[str], list[str]]:
    """Write the jobs and say, line by line in crontab order, what became of each line: written
    (stdout), not converted or not applied (stderr), a warning (stdout). Each stream is flushed
    before the other is written to, so a terminal shows the lines in order."""
    from jobfsm.config.jobfiles import JobFiles, render_document, write_atomic

    files = JobFiles(folder)
    written: list[str] = []
    existing: list[str] = []
    entries: list[ImportedJob | LineProblem | LineWarning] = [*result.jobs, *result.problems, *result.warnings]
    entries.sort(key=lambda entry: entry.line)  # stable: a line's own entries keep their order

    def say(stream: TextIO, text: str) -> None:
        (err if stream is out else out).flush()
        stream.write(text)

    try:
        with files.locked() if result.jobs else nullcontext():  # no jobfsm writer between check and write
            for entry in entries:
                if isinstance(entry, LineProblem):
                    say(err, f"line {entry.line}: {entry.reason}: {quote(entry.text.strip(), 120)}\n")
                    continue
                if isinstance(entry, LineWarning):
                    say(out, f"{entry}\n")
                    continue
                path = files.path_for(entry.name)
                shown = quote(str(path), PATH_QUOTE_CHARS)
                if os.path.lexists(path):
                    say(err, f"line {entry.line}: {shown} exists; not written over (move it away, "
                             "or import into another --out)\n")
                    existing.append(entry.name)
                    continue
                write_atomic(path, render_document(entry.document).encode("utf-8"))
                written.append(entry.name)
                state = "enabled" if entry.document["enabled"] else "disabled"
                say(out, f"line {entry.line}: wrote {shown} ({state})\n")
                for warning in entry.warnings:
                    say(out, f"  warning: {warning}\n")
    except OSError as exc:
        raise UsageError(
            f"jobfsm import crontab: error: cannot write in {quote(str(folder), PATH_QUOTE_CHARS)}: "
            f"{exc.strerror or exc}"
        ) from None
    err.flush()
    return written, existing


def _jobs_option(folder: Path) -> str:
    """``--jobs DIR `` for a command run in this working directory, or nothing when ``folder`` is
    the one jobfsm uses without it (``JOBFSM_JOBS``, else ``./jobs``)."""
    implied = os.environ.get("JOBFSM_JOBS") or DEFAULT_JOBS
    if os.path.abspath(folder) == os.path.abspath(implied):
        return ""
    return f"--jobs {shlex.quote(str(folder))} "


def _summary(
    result: CrontabImport, folder: Path, written: list[str], existing: list[str], enabled: bool,
    out: TextIO,
) -> int:
    """The counts (job lines written or not converted, environment lines not applied: each line
    counted once, in one of them) and how to switch over; 1 when any line was not converted."""
    not_converted = sum(not p.environment for p in result.problems) + len(existing)
    not_applied = sum(p.environment for p in result.problems)
    out.write(f"\n{len(written)} of {result.lines} crontab job line(s) written to "
              f"{quote(str(folder), PATH_QUOTE_CHARS)}")
    failed = [f"{not_converted} not converted"] if not_converted else []
    failed += [f"{not_applied} environment line(s) not applied"] if not_applied else []
    out.write(f"; {', '.join(failed)} (named above)\n" if failed else "\n")
    if written and not enabled:
        out.write(
            "They are disabled, so cron and jobfsm never both run a job. To switch one over:\n"
            "  1. jobfsm enable NAME            (jobfsm runs it from its next fire)\n"
            "  2. remove its line from the crontab (crontab -e, or the file in /etc/cron.d)\n"
            f"For example: jobfsm {_jobs_option(folder)}enable {written[0]}\n"
        )
    elif written:
        out.write("They are enabled: remove their lines from the crontab now, or both will run them.\n")
    return 1 if failed else 0
