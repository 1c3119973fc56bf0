"""Reading job files: JSON, then the schema, then the checks a schema cannot express.

The loader never raises for a bad file. Every problem comes back as a
:class:`~jobfsm.problems.Problem` naming the file, the JSON path and what would fix it, in
the order a person fixes them: the file cannot be read (or is not a regular file, or is too
big) → it is not JSON (or is nested too deeply) → it does not match the schema (every error,
sorted by path) → cron syntax, time zone, file name, what the operating system would refuse
to start, duplicates. A missing working directory is a *warning*: it is a fact of the host
that runs the job, and ``jobfsm validate`` usually runs in CI, elsewhere.
A file reports at most :data:`~jobfsm.problems.MAX_PROBLEMS_PER_FILE` problems, and values
are quoted shortened (:func:`~jobfsm.problems.quote`); the bounds are in :mod:`jobfsm.config.limits`.
"""

from __future__ import annotations

import difflib
import errno
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jobfsm.config.folder import job_entries
from jobfsm.config.limits import (
    MAX_FILE_BYTES,
    exec_problems,
    nested_too_deeply,
    nesting_message,
    text_nesting_offset,
)
from jobfsm.config.names import NAME_RULE
from jobfsm.config.schema import VALUE_CACHE_SIZE, job_schema, quick_valid, validator
from jobfsm.errors import JobsDirectoryError
from jobfsm.model import JobConfig
from jobfsm.problems import QUOTE_CHARS, Problem, Severity, cap_problems, quote, sort_problems

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
_MAX_INT_DIGITS = 100
"""Longer integers are refused while parsing (Python refuses beyond 4,300 digits with a
``ValueError``, and no field of a job file takes more than a few)."""
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
"""What the schema's patterns refuse in strings: NUL, and lone surrogates."""
_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


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


def _not_regular(mode: int, shown: str) -> Problem:
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    return Problem(shown, "$", f"is {kind}, not a regular file; a job file must be a regular file")


def _too_big(size: int, shown: str) -> Problem:
    return Problem(
        shown, "$",
        f"file is {size:,} bytes; a job file may be at most {MAX_FILE_BYTES:,} bytes (1 MiB)",
    )


def read_job_bytes(path: Path | str, shown: str) -> tuple[bytes, Problem | None]:
    """The bytes of a job file, or ``(b"", problem)`` when it is not a regular file (a FIFO, a
    device, a link to one) or is bigger than :data:`~jobfsm.config.limits.MAX_FILE_BYTES`.

    Raises :class:`OSError` when it cannot be opened or read (missing, no permission; a folder
    raises :class:`IsADirectoryError`). Opened non-blocking, so a FIFO cannot hang the reader,
    and judged by the ``fstat`` of the open descriptor, so a file swapped after a check cannot
    slip through; at most one byte beyond the limit is ever read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(info.st_mode):
            return b"", _not_regular(info.st_mode, shown)
        if info.st_size > MAX_FILE_BYTES:
            return b"", _too_big(info.st_size, shown)
        chunks, size = [], 0
        want = info.st_size + 1  # the whole file, then the end: two reads
        while size <= MAX_FILE_BYTES:  # to the end, which may not be where fstat said it was
            chunk = os.read(fd, min(want, MAX_FILE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            want = 64 * 1024
        if size > MAX_FILE_BYTES:
            return b"", _too_big(size, shown)
        return b"".join(chunks), None
    finally:
        os.close(fd)


def read_job_stream(stream: Any, shown: str) -> tuple[bytes, Problem | None]:
    """:func:`read_job_bytes` for an open binary stream (standard input): at most one byte
    beyond the limit is read."""
    raw: bytes = stream.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        return b"", Problem(
            shown, "$", f"input is over {MAX_FILE_BYTES:,} bytes; a job file may be at most 1 MiB"
        )
    return raw, None


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


class _NumberTooLongError(ValueError):
    pass


def _parse_int(digits: str) -> int:
    if len(digits) > _MAX_INT_DIGITS:
        raise _NumberTooLongError(len(digits))
    return int(digits)


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def parse_document(text: str, path: str) -> tuple[Any, Problem | None]:
    """JSON with duplicate keys refused (the last one silently winning hides mistakes), and
    nesting deeper than :data:`~jobfsm.config.limits.MAX_NESTING` refused before parsing (Python's
    parser recurses, and ends in ``RecursionError`` at about a thousand levels)."""
    deep = text_nesting_offset(text)
    if deep is not None:
        line, column = _line_column(text, deep)
        return None, Problem(path, "$", nesting_message(), line=line, column=column)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_int=_parse_int), None
    except _DuplicateKeyError as exc:
        key = exc.args[0]
        return None, Problem(path, _member_path(key), f"duplicate key {quote(key)}; keep only one")
    except _NumberTooLongError as exc:
        return None, Problem(
            path, "$", f"invalid JSON: a number of {exc.args[0]:,} digits; "
            f"numbers in a job file have at most {_MAX_INT_DIGITS}",
        )
    except json.JSONDecodeError as exc:
        return None, Problem(
            path, "$", f"invalid JSON: {exc.msg}", line=exc.lineno, column=exc.colno
        )
    except RecursionError:  # only with a recursion limit set far below Python's default
        return None, Problem(path, "$", nesting_message())


def _member_path(key: str) -> str:
    """``$.key`` for a top-level key, the key shortened when it is long."""
    return f"$.{key}" if len(key) <= QUOTE_CHARS else f"$.{key[:QUOTE_CHARS]}…"


def _short_path(json_path: str) -> str:
    """A JSON path from jsonschema, shortened when a hostile key made it long."""
    return json_path if len(json_path) <= 2 * QUOTE_CHARS else json_path[: 2 * QUOTE_CHARS] + "…"


_COMMAND_SHAPE = "must be a non-empty string (run by /bin/sh -c) or a non-empty list of strings"
_TOO_LONG_HINTS = {
    "$.command": "; put the script in a file and run that file",
    "$.env": "; keep the value in a file and pass its path",
    "$.working_directory": " (PATH_MAX); use a shorter path",
    "$.schedule": "; a cron expression is five short fields or a macro such as '@daily'",
    "$.timezone": "; use an IANA name such as 'Europe/Berlin' or 'UTC'",
    "$.description": "; a sentence is enough",
}


def _schema_messages(error: Any) -> list[tuple[str, str]]:
    """(json_path, message) pairs for one jsonschema error, phrased for people. A value is
    quoted shortened, never whole (jsonschema's own messages repeat it)."""
    path: str = _short_path(error.json_path)
    kind = error.validator
    instance = error.instance
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [(f"{path}.{missing}" if path != "$" else f"$.{missing}", "required field is missing")]
    if kind == "oneOf" and path == "$.command":
        # The branch of the value's own type says what is wrong with it (a NUL, its length);
        # an empty string or list, or another type, gets the summary of both shapes.
        branch = 0 if isinstance(instance, str) else 1 if isinstance(instance, list) else None
        specific = [
            message
            for sub in error.context
            if sub.relative_schema_path and sub.relative_schema_path[0] == branch
            and not (sub.validator in ("minLength", "minItems") and sub.json_path == "$.command")
            for message in _schema_messages(sub)
        ]
        return specific or [(path, _COMMAND_SHAPE)]
    if kind == "pattern":
        bad = _FORBIDDEN.search(instance) if isinstance(instance, str) else None
        if bad is not None:
            return [(path, _forbidden_message(bad.group(), bad.start()))]
        return [(path, f"{quote(instance)} {_pattern_hint(path)}")]
    if kind == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        return [(path, f"{quote(instance)} is not one of {choices}")]
    if kind == "type":
        return [(path, f"must be of type {error.validator_value}, not {type(instance).__name__}")]
    if kind == "maxLength":
        field = next((f for f in _TOO_LONG_HINTS if path.startswith(f)), "")
        return [(path, f"is {len(instance):,} characters long; at most {error.validator_value:,}"
                       f"{_TOO_LONG_HINTS.get(field, '')}")]
    if kind == "minLength":
        what = "the program to run" if path == "$.command[0]" else "it"
        return [(path, f"must not be empty: {what} needs at least {error.validator_value} character")]
    if kind == "minimum":
        return [(path, f"{quote(instance)} is less than the minimum of {error.validator_value}")]
    if kind == "maximum":
        return [(path, f"{quote(instance)} is greater than the maximum of {error.validator_value}")]
    message: str = error.message
    return [(path, message if len(message) <= 4 * QUOTE_CHARS else message[: 4 * QUOTE_CHARS] + "…")]


def _forbidden_message(char: str, position: int) -> str:
    if char == "\x00":
        return (
            f"contains a NUL character (\\u0000) at position {position}: the operating system takes "
            "no NUL in a command, an argument, an environment value or a path, so the job could "
            "never start; remove it"
        )
    return (
        f"contains a lone surrogate ({char!r}) at position {position}: half of a UTF-16 pair, not a "
        "character (a broken \\u escape?), which cannot be written as UTF-8 or passed to the "
        "operating system; fix the escape or remove it"
    )


def _pattern_hint(path: str) -> str:
    if path == "$.name":
        return NAME_RULE
    if path == "$.working_directory":
        return "is not an absolute path; start it with '/'"
    if path == "$.env":
        return "is not a valid environment variable name (letters, digits, '_'; not starting with a digit)"
    if path == "$.notify.webhook":
        return "is not an http:// or https:// URL (no spaces)"
    if path.startswith("$.notify.email"):
        return "is not an e-mail address (name@host)"
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
    # What passes the schema is at most 2 levels deep; what does not may be deeper than
    # jsonschema's messages (repr) can recurse, when it did not come through parse_document.
    if nested_too_deeply(document):
        return [Problem(path, "$", nesting_message())]
    problems = []
    for error in validator().iter_errors(document):
        if error.validator == "additionalProperties" and not error.path:
            allowed = list(job_schema()["properties"])
            # difflib cannot match a key this much longer than every field name (its ratio
            # stays under the cutoff): skip it, so 10,000 long unknown keys cost nothing.
            longest = 3 * max(len(a) for a in allowed)
            for key in sorted(set(document) - set(allowed)):
                hint = difflib.get_close_matches(key, allowed, n=1) if len(key) <= longest else []
                fix = f"did you mean {hint[0]!r}?" if hint else "remove it"
                problems.append(Problem(path, _member_path(key), f"unknown key {quote(key)}; {fix}"))
            continue
        for json_path, message in _schema_messages(error):
            problems.append(Problem(path, json_path, message))
    return sort_problems(problems)


@lru_cache(maxsize=VALUE_CACHE_SIZE)  # bounded: a daemon meets arbitrary bad names over time
def _zone_problem(name: str) -> str | None:
    from jobfsm.zones import find_zone, unknown_zone

    return None if find_zone(name) is not None else unknown_zone(name)


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
                f"name {name!r} does not match the file name {quote(stem + '.json')}; "
                f"rename the file to {name + '.json'!r} or change the name",
            )
        )
    too_long = exec_problems(document, path, skip)
    problems += too_long
    workdir = checkable("working_directory")
    if (workdir is not None and not any(p.json_path == "$.working_directory" for p in too_long)
            and not os.path.isdir(workdir)):
        problems.append(
            Problem(
                path,
                "$.working_directory",
                f"directory {quote(workdir)} does not exist on this host; runs here would fail",
                Severity.WARNING,
            )
        )
    return problems


def validate_document(document: Any, path: str = "<job>", *, stem: str | None = None) -> FileReport:
    """Validate one parsed job document: the schema, then what it cannot express (for a
    document the schema rejected, on the fields it did not already report). At most
    :data:`~jobfsm.problems.MAX_PROBLEMS_PER_FILE` problems, then one line counting the rest."""
    problems = schema_problems(document, path)
    if problems:
        if isinstance(document, Mapping):
            reported = frozenset(p.json_path.split("[", 1)[0] for p in problems)
            problems += semantic_problems(document, path, stem=stem, skip=reported)
        return FileReport(path, None, cap_problems(sort_problems(problems)))
    problems = semantic_problems(document, path, stem=stem)
    config: JobConfig | None = JobConfig.from_dict(document)
    if any(p.is_error for p in problems):
        config = None
    return FileReport(path, config, cap_problems(sort_problems(problems)))


def validate_file(path: Path | str, *, display: str | None = None) -> FileReport:
    """Read and validate one file; never raises."""
    path = Path(path)
    shown = display if display is not None else str(path)
    try:
        raw, problem = read_job_bytes(path, shown)
    except OSError as exc:
        return FileReport(shown, None, [Problem(shown, "$", f"cannot read file: {exc.strerror or exc}")])
    if problem is not None:
        return FileReport(shown, None, [problem])
    text, problem = decode_text(raw, shown)
    if problem is not None or text is None:
        return FileReport(shown, None, [problem] if problem else [])
    document, problem = parse_document(text, shown)
    if problem is not None:
        return FileReport(shown, None, [problem])
    return validate_document(document, shown, stem=path.stem)


def job_files(directory: Path) -> list[Path]:
    """The job files of a folder (:mod:`jobfsm.config.folder`), sorted; raises OSError if it
    cannot be listed."""
    return [Path(e.path) for e in job_entries(directory)]


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

