"""One form for everything that can be wrong with a job file.

The loader, ``jobfsm validate``, the management service and the admin page all report
problems as :class:`Problem` objects, so a message reads the same wherever it shows up:
``jobs/x.json: $.schedule: day-of-month value 31 never occurs in February``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{where}: {self.json_path}: {prefix}{self.message}"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "path": self.json_path,
            "message": self.message,
            "severity": self.severity.value,
        }
        if self.line is not None:
            out["line"] = self.line
            out["column"] = self.column
        return out


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Errors sorted by file, then JSON path, then message (stable for CI diffs)."""
    return sorted(problems, key=lambda p: (p.path, p.json_path, p.message))
