"""The job file's JSON Schema: where it lives and the one validator built from it.

``schemas/job.schema.json`` at the top of the repository is the file people and editors point
at (through ``$schema``); the package ships an identical copy as package data, so an installed
jobfsm finds it too (a test proves the two are identical). jsonschema is imported here, lazily,
so that ``jobfsm --help`` stays fast.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
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


VALUE_CACHE_SIZE = 1024
"""Entries of each value cache. Values shared by many files (schedules, zones, folders, flags)
are looked up by every file, so they stay among the most recent; values unique to a file (its
name, its command) would only fill a bigger cache: 8,192 held about 3.8 MB for nothing."""

_TOP_LEVEL_KEYWORDS = {
    "$schema", "$id", "title", "description", "type", "additionalProperties", "required", "properties",
}


@cache
def _property_validators() -> dict[str, Validator] | None:
    """One validator per top-level property, or None when the schema's top level uses more
    than ``type: object`` + ``required`` + ``properties`` + ``additionalProperties: false``
    (then the fast path would not be exact, and is off)."""
    schema = job_schema()
    if set(schema) - _TOP_LEVEL_KEYWORDS or schema.get("additionalProperties") is not False:
        return None
    base = validator()
    return {name: base.evolve(schema=sub) for name, sub in schema["properties"].items()}


@cache
def _required() -> frozenset[str]:
    return frozenset(job_schema()["required"])


@lru_cache(maxsize=VALUE_CACHE_SIZE)
def _value_valid(name: str, text: str) -> bool:
    validators = _property_validators()
    assert validators is not None
    return bool(validators[name].is_valid(json.loads(text)))


@lru_cache(maxsize=VALUE_CACHE_SIZE)
def _scalar_valid(name: str, kind: str, value: object) -> bool:
    """:func:`_value_valid` for a string, number, boolean or null, keyed by the value itself
    (and its type, so that ``1``, ``1.0`` and ``true`` stay apart): no JSON text to build."""
    validators = _property_validators()
    assert validators is not None
    return bool(validators[name].is_valid(value))


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _valid(name: str, value: Any) -> bool:
    kind = type(value)
    if kind in _SCALARS:
        return _scalar_valid(name, kind.__name__, value)
    return _value_valid(name, json.dumps(value, sort_keys=True))


def quick_valid(document: Any) -> bool:
    """True only if ``document`` certainly matches the schema, decided property by property
    with a cache keyed by each value's JSON text: the job files of an estate share most values
    (schedules, zones, folders, policies), so this skips most of jsonschema's work. False means
    "run the full validation" (which also gives the messages), not necessarily invalid."""
    validators = _property_validators()
    if validators is None or not isinstance(document, dict):
        return False
    keys = document.keys()
    if not (_required() <= keys and keys <= validators.keys()):
        return False
    return all(_valid(name, value) for name, value in document.items())
