"""Reading job files: JSON, then the schema, then the checks a schema cannot express.

The loader never raises for a bad file. Every problem comes back as a
:class:`~jobfsm.problems.Problem` naming the file, the JSON path and what would fix it, in
the order a person fixes them: the file cannot be read → it is not JSON → it does not match
the schema (every error, sorted by path) → cron syntax, time zone, file name, duplicates.
A missing working directory is a *warning*: it is a fact of the host that runs the job,
and ``jobfsm validate`` usually runs in CI, elsewhere (DESIGN.md §1).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jobfsm.errors import JobsDirectoryError
from jobfsm.model import JobConfig
from jobfsm.problems import Problem, Severity, sort_problems
from jobfsm.schema import job_schema, quick_valid, validator

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class FileReport:
    """What validating one file found."""

    path: str
    config: JobConfig | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.config is not None and not any(p.is_error for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]


@dataclass
class LoadResult:
    """The good jobs of a folder, and everything wrong with the rest."""

    jobs: dict[str, JobConfig]
    reports: list[FileReport]
    problems: list[Problem]
    """Every problem, errors and warnings, sorted by file and path."""
    files: dict[str, str] = field(default_factory=dict)
    """Job name → the file it came from."""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


def decode_text(raw: bytes, path: str) -> tuple[str | None, Problem | None]:
    """The file's text, or a problem saying how to save it correctly."""
    if raw.startswith(_UTF8_BOM):
        return None, Problem(
            path, "$", "file starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without BOM"
        )
    if raw.startswith(_UTF16_BOMS):
        return None, Problem(path, "$", "file is UTF-16; save it as UTF-8")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, Problem(
            path,
            "$",
            f"file is not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8",
        )


def parse_document(text: str, path: str) -> tuple[Any, Problem | None]:
    """JSON with duplicate keys refused (the last one silently winning hides mistakes)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys), None
    except _DuplicateKeyError as exc:
        key = exc.args[0]
        return None, Problem(path, f"$.{key}", f"duplicate key {key!r}; keep only one")
    except json.JSONDecodeError as exc:
        return None, Problem(
            path, "$", f"invalid JSON: {exc.msg}", line=exc.lineno, column=exc.colno
        )


def _schema_message(error: Any) -> tuple[str, str]:
    """A (json_path, message) for one jsonschema error, phrased for people."""
    path: str = error.json_path
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{path}.{missing}" if path != "$" else f"$.{missing}", "required field is missing"
    if kind == "oneOf" and path == "$.command":
        return path, "must be a non-empty string (run by /bin/sh -c) or a non-empty list of strings"
    if kind == "pattern":
        return path, f"{error.instance!r} {_pattern_hint(path)}"
    if kind == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        return path, f"{error.instance!r} is not one of {choices}"
    if kind == "type":
        return path, f"must be of type {error.validator_value}, not {type(error.instance).__name__}"
    return path, error.message


def _pattern_hint(path: str) -> str:
    if path == "$.name":
        return (
            "is not a valid job name: use lowercase letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 64 characters"
        )
    if path == "$.working_directory":
        return "is not an absolute path; start it with '/'"
    if path.startswith("$.env"):
        return "is not a valid environment variable name (letters, digits, '_'; not starting with a digit)"
    return "does not match the expected format"


def schema_problems(document: Any, path: str) -> list[Problem]:
    if not isinstance(document, dict):
        kind = type(document).__name__ if document is not None else "null"
        kind = {"list": "an array", "str": "a string", "int": "a number", "float": "a number"}.get(
            kind, kind
        )
        return [Problem(path, "$", f"a job file must contain one JSON object, not {kind}")]
    if quick_valid(document):
        return []
    problems = []
    for error in validator().iter_errors(document):
        if error.validator == "additionalProperties" and not error.path:
            allowed = set(job_schema()["properties"])
            for key in sorted(set(document) - allowed):
                hint = difflib.get_close_matches(key, list(allowed), n=1)
                fix = f"did you mean {hint[0]!r}?" if hint else "remove it"
                problems.append(Problem(path, f"$.{key}", f"unknown key {key!r}; {fix}"))
            continue
        json_path, message = _schema_message(error)
        problems.append(Problem(path, json_path, message))
    return sort_problems(problems)


@cache
def _zone_problem(name: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        hint = _zone_hint(name)
        return f"unknown time zone {name!r}{hint}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
    return None


def _zone_hint(name: str) -> str:
    from zoneinfo import available_timezones

    match = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def semantic_problems(
    document: Mapping[str, Any], path: str, *, stem: str | None, skip: frozenset[str] = frozenset()
) -> list[Problem]:
    """What the schema cannot say: cron syntax, time zone, the file name; the working directory.

    A field in ``skip`` (the schema already reported it), missing or not a string is not
    checked here, so a file that fails the schema still gets these checks for its other fields:
    every problem in one pass, not one fix at a time."""
    from jobfsm.cron import validate_expression
    from jobfsm.errors import CronError

    def checkable(key: str, default: str | None = None) -> str | None:
        value = document.get(key, default)
        return value if isinstance(value, str) and f"$.{key}" not in skip else None

    problems = []
    schedule = checkable("schedule")
    if schedule is not None:
        try:
            validate_expression(schedule)
        except CronError as exc:
            problems.append(Problem(path, "$.schedule", str(exc)))
    zone = checkable("timezone", "UTC")
    zone_message = _zone_problem(zone) if zone is not None else None
    if zone_message:
        problems.append(Problem(path, "$.timezone", zone_message))
    name = checkable("name")
    if stem is not None and name is not None and name != stem:
        problems.append(
            Problem(
                path,
                "$.name",
                f"name {name!r} does not match the file name {stem + '.json'!r}; "
                f"rename the file to {name + '.json'!r} or change the name",
            )
        )
    workdir = checkable("working_directory")
    if workdir is not None and not os.path.isdir(workdir):
        problems.append(
            Problem(
                path,
                "$.working_directory",
                f"directory {workdir!r} does not exist on this host; runs here would fail",
                Severity.WARNING,
            )
        )
    return problems


def validate_document(document: Any, path: str = "<job>", *, stem: str | None = None) -> FileReport:
    """Validate one parsed job document: the schema, then what it cannot express (for a
    document the schema rejected, on the fields it did not already report)."""
    problems = schema_problems(document, path)
    if problems:
        if isinstance(document, Mapping):
            reported = frozenset(p.json_path.split("[", 1)[0] for p in problems)
            problems += semantic_problems(document, path, stem=stem, skip=reported)
        return FileReport(path, None, sort_problems(problems))
    problems = semantic_problems(document, path, stem=stem)
    config: JobConfig | None = JobConfig.from_dict(document)
    if any(p.is_error for p in problems):
        config = None
    return FileReport(path, config, sort_problems(problems))


def validate_file(path: Path | str, *, display: str | None = None) -> FileReport:
    """Read and validate one file; never raises."""
    path = Path(path)
    shown = display if display is not None else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return FileReport(shown, None, [Problem(shown, "$", f"cannot read file: {exc.strerror}")])
    text, problem = decode_text(raw, shown)
    if problem is not None or text is None:
        return FileReport(shown, None, [problem] if problem else [])
    document, problem = parse_document(text, shown)
    if problem is not None:
        return FileReport(shown, None, [problem])
    return validate_document(document, shown, stem=path.stem)


def job_files(directory: Path) -> list[Path]:
    """The ``*.json`` files of a folder, sorted; raises OSError if it cannot be listed."""
    with os.scandir(directory) as entries:
        return sorted(
            Path(e.path) for e in entries if e.name.endswith(".json") and e.is_file()
        )


def collect(reports: Iterable[FileReport]) -> LoadResult:
    """Combine file reports, refusing a name defined by more than one file."""
    reports = list(reports)
    jobs: dict[str, JobConfig] = {}
    files: dict[str, str] = {}
    for report in reports:
        config = report.config
        if config is None or not report.valid:
            continue
        if config.name in jobs:
            report.problems.append(
                Problem(
                    report.path,
                    "$.name",
                    f"duplicate job name {config.name!r}, also defined in {files[config.name]}; "
                    "names must be unique",
                )
            )
            report.config = None
            continue
        jobs[config.name] = config
        files[config.name] = report.path
    problems = sort_problems([p for r in reports for p in r.problems])
    return LoadResult(jobs=jobs, reports=reports, problems=problems, files=files)


class ConfigLoader:
    """Loads every ``*.json`` of a jobs folder.

    ``load()`` raises :class:`FileNotFoundError`/:class:`NotADirectoryError`/:class:`PermissionError`
    (as :class:`JobsDirectoryError`) only for the folder itself; bad files become problems.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def load(self) -> LoadResult:
        try:
            files = job_files(self.directory)
        except OSError as exc:
            raise JobsDirectoryError(self.directory, exc) from exc
        return collect(validate_file(f) for f in files)

