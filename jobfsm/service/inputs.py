"""What callers send, made into what the service checks: JSON-normal documents, a run status
filter, and the path that problems of a document name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobfsm.config.limits import nesting_message
from jobfsm.config.names import NAME_PATTERN
from jobfsm.errors import ValidationError
from jobfsm.model import RunStatus
from jobfsm.problems import Problem, quote

__all__ = ["document_path", "plain", "run_status"]


def plain(value: Any) -> Any:
    """JSON-normal data (enums to strings, tuples to lists, keys to strings); anything that is
    not JSON becomes a ValidationError."""
    try:
        return json.loads(json.dumps(value))
    except RecursionError:  # nested far deeper than the loader's limit: json recursed out
        raise ValidationError([Problem("<job>", "$", nesting_message())]) from None
    except (TypeError, ValueError) as exc:
        raise ValidationError([Problem("<job>", "$", f"not JSON data: {exc}")]) from None


def run_status(status: RunStatus | str | None) -> RunStatus | None:
    """A run status filter as given (an enum or its value); a ValidationError naming the choices."""
    if status is None or isinstance(status, RunStatus):
        return status
    try:
        return RunStatus(status)
    except ValueError:
        choices = ", ".join(repr(s.value) for s in RunStatus)
        raise ValidationError(
            [Problem("<query>", "$.status", f"{quote(status)} is not one of {choices}")],
            subject="filter",
        ) from None


def document_path(jobs_directory: Path, name: str | None, doc: Any = None) -> str:
    """The path that problems of a job's document name: ``<jobs>/<name>.json`` (the name taken
    from the document when none is given)."""
    if name is None and isinstance(doc, dict) and isinstance(doc.get("name"), str):
        name = doc["name"]
    if name and not NAME_PATTERN.fullmatch(name):  # every problem repeats it: keep it short
        name = name[:60] + "…" if len(name) > 60 else name
    return str(jobs_directory / f"{name or '<new job>'}.json")
