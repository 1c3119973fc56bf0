"""What a job name may be: the schema's ``name`` pattern, and the one message for a name that
breaks it (the loader's ``$.name`` problem, and :func:`check_name` before a name becomes a path).
"""

from __future__ import annotations

import re

from jobfsm.config.schema import property_schema
from jobfsm.errors import ValidationError
from jobfsm.problems import Problem, quote

__all__ = ["NAME_PATTERN", "NAME_RULE", "check_name"]

NAME_PATTERN = re.compile(property_schema("name")["pattern"])
"""Use with ``fullmatch``."""
NAME_RULE = (
    "is not a valid job name: use lowercase letters, digits, '.', '_' and '-', "
    "starting with a letter or digit, at most 64 characters"
)
"""Follows the name, quoted, in every message about a name that breaks the pattern."""


def check_name(name: object, *, path: str = "<job>") -> str:
    """``name`` if it is a valid job name, else :class:`ValidationError` at ``$.name``. Names are
    checked before they become paths: ``../x``, ``a/b``, ``X``, ``""`` never do."""
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return name
    shown = quote(name) if isinstance(name, str) and name else "an empty name"
    raise ValidationError([Problem(path, "$.name", f"{shown} {NAME_RULE}")])
