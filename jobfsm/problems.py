"""One form for everything that can be wrong with a job file.

The loader, ``jobfsm validate``, the management service and the admin page all report
problems as :class:`Problem` objects, so a message reads the same wherever it shows up:
``jobs/x.json: $.schedule: day-of-month value 31 never occurs in February``.

A message never repeats a hostile value whole: :func:`quote` shortens what a file says to
:data:`QUOTE_CHARS` characters, and :func:`cap_problems` keeps at most
:data:`MAX_PROBLEMS_PER_FILE` problems of one file (a file of 10,000 unknown keys is one
screen, not 10,000 lines). Printed, a problem is always one line: control characters of the
JSON path and message are escaped, and a file name holding any is shown quoted.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

QUOTE_CHARS = 60
"""A value quoted in a message shows at most this many characters, then ``… (N characters)``."""
MAX_PROBLEMS_PER_FILE = 50
"""Problems listed per file; the rest are counted in one last line."""


class Severity(StrEnum):
    ERROR = "error"
    """The file is invalid: the job will not be loaded (``validate`` exits 1)."""
    WARNING = "warning"
    """True only of this host or merely odd (``validate`` exits 0 unless ``--strict``)."""


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    """The file the problem was found in (as given to the loader)."""
    json_path: str
    """Where in the file: ``$`` for the whole document, ``$.schedule``, ``$.env.HOME``."""
    message: str
    severity: Severity = Severity.ERROR
    line: int | None = None
    column: int | None = None
    omitted: int = 0
    """Non-zero only on the last line of a capped list: how many problems it stands for."""
    rule: str | None = None
    """The linter rule that found it (``dst-gap``, ``crowded-minute``; :mod:`jobfsm.config.lint`), else None."""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = shown_path(self.path)
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{where}: {one_line(self.json_path)}: {prefix}{one_line(self.message)}"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "path": self.json_path,
            "message": self.message,
            "severity": self.severity.value,
        }
        if self.line is not None:
            out["line"] = self.line
            out["column"] = self.column
        if self.omitted:
            out["omitted"] = self.omitted
        if self.rule is not None:
            out["rule"] = self.rule
        return out


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Errors sorted by file, then JSON path, then message (stable for CI diffs); the line
    that counts omitted problems stays last in its file."""
    return sorted(problems, key=lambda p: (p.path, p.omitted > 0, p.json_path, p.message))


def cap_problems(problems: list[Problem], limit: int = MAX_PROBLEMS_PER_FILE) -> list[Problem]:
    """At most ``limit`` problems (of one file, already sorted), then one line counting the rest.
    That line is an error if any problem it stands for is one."""
    if len(problems) <= limit:
        return problems
    kept, rest = problems[:limit], problems[limit:]
    omitted = sum(p.omitted or 1 for p in rest)
    severity = Severity.ERROR if any(p.is_error for p in rest) else Severity.WARNING
    summary = f"… and {omitted:,} more problem{'s' if omitted != 1 else ''} in this file"
    return [*kept, Problem(kept[0].path, "$", summary, severity, omitted=omitted)]


class _ShortRepr(reprlib.Repr):
    """``repr`` with long strings cut after :data:`QUOTE_CHARS` and containers bounded in
    length and depth (so a deeply nested value cannot exhaust the stack either)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 6
        self.maxother = self.maxlong = QUOTE_CHARS

    def repr_str(self, x: str, level: int) -> str:
        return _shortened(x, QUOTE_CHARS)


def _shortened(text: str, limit: int) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text):,} characters)"


_short_repr = _ShortRepr()


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``value`` as a message shows it: ``repr``, with a string longer than ``limit`` shortened
    to ``'its first characters'… (N characters)`` and big containers elided. A file's values
    get the default; a job name (up to 64 characters) or a path someone typed a longer one."""
    if isinstance(value, str):
        return _shortened(value, limit)
    return _short_repr.repr(value)


def one_line(text: str) -> str:
    """``text`` with control characters (and anything else not printable, such as the lone
    surrogates an undecodable file name becomes) escaped, so it prints as one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown_path(path: str) -> str:
    """A file name as text output shows it: as is, or quoted and escaped when it holds a
    newline or another character that is not printable."""
    return path if path.isprintable() else repr(path)
