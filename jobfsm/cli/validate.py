"""``jobfsm validate PATH…``: every problem of every file, in text, JSON or GitHub annotations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from jobfsm.cli.parser import UsageError
from jobfsm.loader import FileReport, collect, job_files, validate_file
from jobfsm.problems import Problem


def _reports(paths: list[str]) -> list[FileReport]:
    files: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            try:
                found = job_files(path)
            except OSError as exc:
                raise UsageError(f"jobfsm validate: cannot read folder {raw!r}: {exc.strerror}") from None
            files.extend((f, str(f)) for f in found)
        elif path.exists():
            files.append((path, raw))
        else:
            raise UsageError(f"jobfsm validate: no such file or folder: {raw!r}")
    return collect(validate_file(f, display=shown) for f, shown in files).reports


def _github(problem: Problem) -> str:
    kind = "error" if problem.is_error else "warning"
    line = f",line={problem.line},col={problem.column or 1}" if problem.line else ""

    def esc(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    return f"::{kind} file={esc(problem.path)}{line},title=jobfsm validate::{esc(problem.json_path)}: {esc(problem.message)}"


def cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    reports = _reports(args.paths)
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
            errors = sum(len(r.errors) for r in reports)
            warnings = sum(len(r.warnings) for r in reports)
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
