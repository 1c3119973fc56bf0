"""``jobfsm validate PATH…``: every problem of every file, in text, JSON or GitHub annotations.

Folders contribute their regular ``*.json`` files (a symbolic link to a regular file counts,
under the link's name, as for the daemon). A file named twice, by any spelling (``jobs/``
and ``jobs/a.json``, ``./jobs/../jobs/a.json``, a linked folder), is checked once: it is
known by the file it is (device and inode) and the name it is read under. In text and GitHub
output a path holding a newline or another control character is shown quoted and escaped;
JSON output keeps the real path.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TextIO

from jobfsm.cli.parser import PATH_QUOTE_CHARS, UsageError, parse_time
from jobfsm.clock import SystemClock
from jobfsm.config.lint import MAX_SAME_MINUTE, Rule, lint_jobs
from jobfsm.config.loader import FileReport, collect, job_files, validate_file
from jobfsm.problems import Problem, one_line, quote, shown_path, sort_problems


def _identity(path: Path) -> tuple[object, str]:
    """What makes two spellings the same job file: the file itself (its device and inode, as a
    link resolves) and the name it is read under (a link named ``b.json`` to ``a.json`` is
    another job file, and fails as one)."""
    try:
        info = os.stat(path)
    except OSError:  # a dangling link, no permission: its real path says which file it is
        return os.path.realpath(path), path.name
    return (info.st_dev, info.st_ino), path.name


def _reports(paths: list[str]) -> list[FileReport]:
    files: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if os.path.isdir(path):
            try:
                found = job_files(path)
            except OSError as exc:
                raise UsageError(
                    f"jobfsm validate: cannot read folder {quote(raw, PATH_QUOTE_CHARS)}: {exc.strerror or exc}"
                ) from None
            files.extend((f, str(f)) for f in found)
        elif os.path.lexists(path):
            files.append((path, raw))
        else:
            raise UsageError(f"jobfsm validate: no such file or folder: {quote(raw, PATH_QUOTE_CHARS)}")
    if len(paths) > 1:  # one folder's names are unique: only several arguments can repeat a file
        seen: set[tuple[object, str]] = set()
        unique = []
        for path, shown in files:
            identity = _identity(path)
            if identity not in seen:
                seen.add(identity)
                unique.append((path, shown))
        files = unique
    return collect(validate_file(f, display=shown) for f, shown in files).reports


def _lint(reports: list[FileReport], args: argparse.Namespace) -> None:
    """Add the linter's warnings (:mod:`jobfsm.config.lint`) to the valid files' reports; all
    files given are checked together as one jobs folder (the crowded minutes)."""
    as_of = getattr(args, "as_of", None)
    now = parse_time(as_of, "--as-of", "validate") if as_of else SystemClock().now()
    limit = getattr(args, "max_same_minute", None) or MAX_SAME_MINUTE
    valid = {r.path: r for r in reports if r.valid and r.config is not None}
    found = lint_jobs(((path, r.config) for path, r in valid.items() if r.config), now, max_same_minute=limit)
    if not found:
        return
    for problem in found:
        valid[problem.path].problems.append(problem)
    for report in {id(valid[p.path]): valid[p.path] for p in found}.values():
        report.problems = sort_problems(report.problems)


def _github(problem: Problem) -> str:
    """A workflow command: ``::error file=…,line=…::message``. Property values escape ``,``
    and ``:`` as well (GitHub's toolkit does the same), or a path holding one would end the
    property early."""
    kind = "error" if problem.is_error else "warning"
    line = f",line={problem.line},col={problem.column or 1}" if problem.line else ""

    def esc(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return esc(text).replace(":", "%3A").replace(",", "%2C")

    message = esc(f"{one_line(problem.json_path)}: {one_line(problem.message)}")
    title = f"{Rule(problem.rule).heading} (jobfsm validate)" if problem.rule else "jobfsm validate"
    return f"::{kind} file={prop(shown_path(problem.path))}{line},title={prop(title)}::{message}"


def cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    reports = _reports(args.paths)
    _lint(reports, args)
    failed = [r for r in reports if not r.valid or (args.strict and r.warnings)]
    if args.format == "json":
        doc = {
            "files": [
                {
                    "path": r.path,
                    "valid": r.valid and not (args.strict and r.warnings),
                    "errors": [p.to_dict() for p in r.errors],
                    "warnings": [p.to_dict() for p in r.warnings],
                }
                for r in reports
            ],
            "valid": not failed,
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        for report in reports:
            for problem in report.problems:
                out.write((_github(problem) if args.format == "github" else str(problem)) + "\n")
        if args.format == "text":
            # A capped file's last line stands for the problems it did not list.
            errors = sum(p.omitted or 1 for r in reports for p in r.errors)
            warnings = sum(p.omitted or 1 for r in reports for p in r.warnings)
            invalid = sum(1 for r in reports if not r.valid)
            out.write(
                f"{len(reports)} file{'s' if len(reports) != 1 else ''} checked: "
                f"{len(reports) - invalid} valid, {invalid} invalid "
                f"({errors} error{'s' if errors != 1 else ''}, "
                f"{warnings} warning{'s' if warnings != 1 else ''})"
                + (" — warnings fail with --strict" if args.strict and warnings else "")
                + "\n"
            )
    return 1 if failed else 0
