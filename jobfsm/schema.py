"""The job file's JSON Schema: where it lives and the one validator built from it.

``schemas/job.schema.json`` at the top of the repository is the file people and editors point
at (through ``$schema``); the package ships an identical copy as package data, so an installed
jobfsm finds it too (a test proves the two are identical). jsonschema is imported here, lazily,
so that ``jobfsm --help`` stays fast.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

SCHEMA_RESOURCE = "job.schema.json"


@cache
def schema_text() -> str:
    return resources.files("jobfsm").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


@cache
def job_schema() -> dict[str, Any]:
    """The parsed schema. Treat it as read-only: it is shared."""
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


@cache
def validator() -> Validator:
    """The draft 2020-12 validator, built once per process."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(job_schema())


def property_schema(name: str) -> dict[str, Any]:
    """The schema of one top-level property (title, description, default, enum, examples)."""
    prop: dict[str, Any] = job_schema()["properties"][name]
    return prop
