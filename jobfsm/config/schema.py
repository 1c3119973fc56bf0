"""The job file's JSON Schema: where it lives and the one validator built from it.

``schemas/job.schema.json`` at the top of the repository is the file people and editors point
at (through ``$schema``); the package ships an identical copy as package data, so an installed
jobfsm finds it too (a test proves the two are identical). jsonschema is imported here, lazily,
so that ``jobfsm --help`` stays fast.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

SCHEMA_RESOURCE = "job.schema.json"


@cache
def schema_text() -> str:
    return resources.files("jobfsm.config").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


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
CACHED_VALUE_CHARS = 1024
"""Longer values (a string's length, a list's or object's JSON text) are validated without
being remembered: a cache of hostile 1 MiB values would hold a gigabyte."""

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


Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})
_STRING_KEYWORDS = frozenset({"type", "minLength", "maxLength", "pattern", "enum"})
_ARRAY_KEYWORDS = frozenset({"type", "items", "prefixItems", "minItems", "maxItems", "uniqueItems"})
_OBJECT_KEYWORDS = frozenset({"type", "propertyNames", "properties", "additionalProperties"})


def _types_of(value: Any) -> frozenset[str]:
    """The JSON Schema types ``value`` has under jsonschema's default type checker."""
    if value is None:
        return frozenset({"null"})
    if isinstance(value, bool):
        return frozenset({"boolean"})
    if isinstance(value, int):
        return frozenset({"integer", "number"})
    if isinstance(value, float):
        return frozenset({"integer", "number"} if value.is_integer() else {"number"})
    for kind, name in ((str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return frozenset({name})
    return frozenset()  # anything else: no type is certain, so no compiled check accepts it


def compile_check(schema: Mapping[str, Any]) -> Check | None:
    """A plain Python check for a subschema made of the few keywords job files use, which
    answers True only where jsonschema accepts the value (False: ask jsonschema), without
    jsonschema's per-keyword dispatch; None when the subschema uses any other keyword. It is
    what keeps validation fast as the schema grows patterns and lengths that every value of a
    file (descriptions and commands are mostly unique) must be checked against. Conservative:
    exact types (``type(v) is int``, no integral floats), string-only enums, ``oneOf`` only over
    branches that the value's type tells apart (a test holds it to jsonschema)."""
    keywords = set(schema) - _ANNOTATIONS
    if "oneOf" in keywords:
        return _one_of_check(schema) if keywords == {"oneOf"} else None
    kind = schema.get("type")
    if kind == "string" and keywords <= _STRING_KEYWORDS:
        return _string_check(schema)
    if kind == "boolean" and keywords == {"type"}:
        return lambda value: type(value) is bool
    if kind == "integer" and keywords <= {"type", "minimum", "maximum"}:
        minimum, maximum = schema.get("minimum"), schema.get("maximum")
        return lambda value: (
            type(value) is int
            and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)
        )
    if kind == "array" and keywords <= _ARRAY_KEYWORDS:
        return _array_check(schema)
    if kind == "object" and keywords <= _OBJECT_KEYWORDS:
        return _object_check(schema)
    return None


def _one_of_check(schema: Mapping[str, Any]) -> Check | None:
    branches = [(b.get("type"), compile_check(b)) for b in schema["oneOf"]]
    if any(not isinstance(t, str) or c is None for t, c in branches):
        return None
    typed: list[tuple[str, Check]] = [(t, c) for t, c in branches if c is not None]

    def one_of(value: Any) -> bool:
        # A branch whose type the value lacks certainly fails: exactly one may be left.
        kinds = _types_of(value)
        left = [check for kind, check in typed if kind in kinds]
        return len(left) == 1 and left[0](value)

    return one_of


def _string_check(schema: Mapping[str, Any]) -> Check | None:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None
    enum = schema.get("enum")
    if enum is not None and not all(isinstance(e, str) for e in enum):
        return None
    choices = frozenset(enum) if enum is not None else None

    def string(value: Any) -> bool:
        return (
            type(value) is str
            and low <= len(value)
            and (high is None or len(value) <= high)
            and (search is None or search(value) is not None)
            and (choices is None or value in choices)
        )

    return string


def _array_check(schema: Mapping[str, Any]) -> Check | None:
    items = compile_check(schema["items"]) if "items" in schema else (lambda _value: True)
    compiled = [compile_check(sub) for sub in schema.get("prefixItems", [])]
    prefix = [check for check in compiled if check is not None]
    if items is None or len(prefix) != len(compiled):
        return None
    each: Check = items
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    unique = schema.get("uniqueItems") is True

    def array(value: Any) -> bool:
        return (
            type(value) is list
            # Uniqueness is only decided here for strings (JSON equality is Python's).
            and (not unique or (all(type(v) is str for v in value) and len(set(value)) == len(value)))
            and low <= len(value)
            and (high is None or len(value) <= high)
            and all(check(item) for check, item in zip(prefix, value, strict=False))
            and all(each(item) for item in value[len(prefix):])
        )

    return array


def _object_check(schema: Mapping[str, Any]) -> Check | None:
    # Keys are strings, so "type": "string" changes nothing for them; it only lets the
    # string check compile (a key of another type makes the check answer False).
    names = (
        compile_check({"type": "string", **schema["propertyNames"]})
        if "propertyNames" in schema else (lambda _key: True)
    )
    extra = schema.get("additionalProperties", True)
    values = compile_check(extra) if isinstance(extra, dict) else (lambda _value: extra is True)
    named = {key: compile_check(sub) for key, sub in schema.get("properties", {}).items()}
    if names is None or values is None or None in named.values():
        return None
    key_check: Check = names
    value_check: Check = values
    by_key: dict[str, Check] = {key: check for key, check in named.items() if check is not None}
    return lambda value: (
        type(value) is dict
        and all(key_check(key) for key in value)
        and all(by_key.get(key, value_check)(item) for key, item in value.items())
    )


@cache
def _property_checks() -> dict[str, Check]:
    """The compiled checks of the top-level properties that have one (see :func:`compile_check`)."""
    if _property_validators() is None:
        return {}
    compiled = {name: compile_check(sub) for name, sub in job_schema()["properties"].items()}
    return {name: check for name, check in compiled.items() if check is not None}


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
    check = _property_checks().get(name)
    if check is not None and check(value):
        return True
    kind = type(value)
    if kind in _SCALARS:
        if kind is str and len(value) > CACHED_VALUE_CHARS:
            return bool(_validator_of(name).is_valid(value))
        return _scalar_valid(name, kind.__name__, value)
    try:
        text = json.dumps(value, sort_keys=True)
    except (ValueError, TypeError, RecursionError):  # not JSON, or nested too deeply to write
        return False
    if len(text) > CACHED_VALUE_CHARS:
        return bool(_validator_of(name).is_valid(value))
    return _value_valid(name, text)


def _validator_of(name: str) -> Validator:
    validators = _property_validators()
    assert validators is not None
    return validators[name]


def quick_valid(document: Any) -> bool:
    """True only if ``document`` certainly matches the schema, decided property by property:
    by a compiled check where the property's subschema allows one (:func:`compile_check`),
    else by jsonschema with a cache keyed by each value's JSON text (the job files of an
    estate share most values: schedules, zones, folders, policies). Either way most of
    jsonschema's work is skipped. False means "run the full validation" (which also gives the
    messages), not necessarily invalid."""
    validators = _property_validators()
    if validators is None or not isinstance(document, dict):
        return False
    keys = document.keys()
    if not (_required() <= keys and keys <= validators.keys()):
        return False
    return all(_valid(name, value) for name, value in document.items())
