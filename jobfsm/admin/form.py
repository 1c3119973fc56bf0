"""The job form of the admin page, derived from the job schema and :class:`~jobfsm.model.JobConfig`.

One :class:`FormField` per top-level property of the schema, in the schema's order, with its
title, help, default and choices from the schema and the :class:`JobConfig` attribute that holds
it; a property added to both appears in the form with no edit here. Values go in and out by field
key, never by position. Nothing here imports Gradio: :mod:`jobfsm.admin.layout` makes the
components. See docs/architecture.md (the admin page) for how the parts fit.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

from jobfsm.config.schema import job_schema
from jobfsm.model import JobConfig, document_key, document_value
from jobfsm.zones import zone_names

__all__ = ["FieldKind", "FormField", "JobForm", "derive_form", "job_form"]


class FieldKind(Enum):
    """How a field is edited, from the type its schema gives it."""

    TEXT = "text"
    """A string, as typed."""
    CHOICE = "choice"
    """A string picked from ``choices`` (the schema's ``enum``; a few fields take others too)."""
    FLAG = "flag"
    """A boolean, as a checkbox."""
    NUMBER = "number"
    """An integer within the schema's ``minimum`` and ``maximum``."""
    OBJECT = "object"
    """An object, written as JSON text."""
    COMMAND = "command"
    """A string, or a list of strings written as a JSON array (the schema's ``oneOf``)."""


OPEN_CHOICES: dict[str, Any] = {"timezone": zone_names}
"""What a schema cannot list: fields offered choices from elsewhere, any other value allowed."""

SKELETON: dict[str, Any] = {"command": "echo hello", "enabled": True}
"""Values of the raw JSON editor's new job where the schema's default is no valid value."""

NEW_JOB_VALUES: dict[str, Any] = {"enabled": True}
"""A new job's form values that differ from the schema's defaults. The schema's ``enabled``
defaults to false (a file that leaves it out is off), but a person who creates a job on the
page means to run it: Trigger right after Create must work."""


@dataclass(frozen=True)
class FormField:
    """One field: the document's key, the :class:`JobConfig` attribute and what the schema says."""

    key: str
    attribute: str
    title: str
    help: str
    default: Any
    """The schema's default, as the job file holds it."""
    required: bool
    kind: FieldKind
    choices: tuple[str, ...] = ()
    open_choices: bool = False
    """Whether a value outside ``choices`` may be typed."""
    minimum: int | None = None
    maximum: int | None = None
    examples: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        return self.title + (" *" if self.required else "")

    @property
    def placeholder(self) -> str | None:
        return next((e for e in self.examples if isinstance(e, str)), None)

    @property
    def hint(self) -> str:
        """The schema's help, and how to write the value where the widget is plain text."""
        if self.kind is FieldKind.OBJECT:
            shape: Any = next((e for e in self.examples if isinstance(e, dict)), {})
            return f"{self.help} Write a JSON object, e.g. {json.dumps(shape)}."
        if self.kind is FieldKind.COMMAND:
            argv: Any = next((e for e in self.examples if isinstance(e, list)), ["/bin/true"])
            return f"{self.help} Write a JSON array ({json.dumps(argv)}) to run without a shell."
        return self.help

    @property
    def blank_means_default(self) -> bool:
        """An optional text field left empty is left out of the file (``$schema``: the file may
        not have one, whatever the schema's default says)."""
        return self.kind is FieldKind.TEXT and not self.required

    @property
    def starting_value(self) -> Any:
        """A new job's value: the default, or empty where empty means it (the placeholder shows
        an example)."""
        return "" if self.blank_means_default else self.shown(self.default)

    def shown(self, value: Any) -> Any:
        """A document's (or config's) value as the widget shows it; None is what the file
        leaves out."""
        if value is None:
            return self.starting_value
        if isinstance(value, Enum):
            return value.value
        if self.kind is FieldKind.OBJECT:
            return json.dumps(document_value(value) or {}, indent=2, sort_keys=True)
        if self.kind is FieldKind.COMMAND:
            return command_text(value)
        if self.kind is FieldKind.FLAG:
            return bool(value)
        return value

    def parsed(self, raw: Any) -> Any:
        """The widget's value as the document holds it; None for an empty number (its default).
        :class:`ValueError` with a message for the field when it cannot be read."""
        if self.kind is FieldKind.FLAG:
            return bool(raw)
        if self.kind is FieldKind.NUMBER:
            return whole_number(raw)
        if self.kind is FieldKind.OBJECT:
            return parse_object(raw or "", self.examples)
        if self.kind is FieldKind.COMMAND:
            return parse_command(raw or "")
        return raw  # as typed: the validator judges it, and an untouched field round-trips


@dataclass(frozen=True)
class JobForm:
    """The fields in the schema's order, and the conversions between a job and the form."""

    fields: tuple[FormField, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    def field(self, key: str) -> FormField:
        return next(f for f in self.fields if f.key == key)

    def starting_values(self) -> dict[str, Any]:
        """A new job's form: every field at the schema's default, except :data:`NEW_JOB_VALUES`."""
        return {f.key: NEW_JOB_VALUES.get(f.key, f.starting_value) for f in self.fields}

    def values_of(self, config: JobConfig) -> dict[str, Any]:
        """An existing job's form (its secrets as the service masked them)."""
        return {f.key: f.shown(getattr(config, f.attribute)) for f in self.fields}

    def values_from(self, raw: Sequence[Any]) -> dict[str, Any]:
        """Name the values of the form's components, which an event sends in :attr:`fields`'s
        order (the order :mod:`jobfsm.admin.layout` made them in)."""
        return dict(zip(self.keys, raw, strict=True))

    def document(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """(the job document, the problems the form itself found, by field key).

        Optional fields at their default are left out, as a person writes the file."""
        doc: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for f in self.fields:
            try:
                value = f.parsed(values.get(f.key))
            except ValueError as exc:
                errors[f.key] = str(exc)
                continue
            if value is None or (not f.required and value == f.default):
                continue
            if value == "" and f.blank_means_default:
                continue
            doc[f.key] = value
        return doc, errors

    def skeleton(self) -> dict[str, Any]:
        """The raw JSON editor's new job: the required fields."""
        return {f.key: SKELETON.get(f.key, f.default) for f in self.fields if f.required}


def derive_form(schema: Mapping[str, Any], config_type: type[Any] = JobConfig) -> JobForm:
    """The form of ``schema``'s top-level properties, each matched with ``config_type``'s
    attribute for it; :class:`LookupError` when the two disagree on which fields there are."""
    attributes = {document_key(f.name): f.name for f in dataclasses.fields(config_type)}
    properties: Mapping[str, Mapping[str, Any]] = schema["properties"]
    if set(properties) != set(attributes):
        raise LookupError(
            f"the job schema's properties and {config_type.__name__}'s fields differ: "
            f"{sorted(set(properties) ^ set(attributes))}"
        )
    required = set(schema.get("required", ()))
    return JobForm(tuple(
        _field(key, attributes[key], prop, key in required) for key, prop in properties.items()
    ))


def _field(key: str, attribute: str, prop: Mapping[str, Any], required: bool) -> FormField:
    kind, choices = _kind(prop)
    extra = OPEN_CHOICES.get(key)
    return FormField(
        key=key,
        attribute=attribute,
        title=str(prop.get("title", key)),
        help=str(prop.get("description", "")),
        default=prop.get("default"),
        required=required,
        kind=FieldKind.CHOICE if extra else kind,
        choices=tuple(extra()) if extra else choices,
        open_choices=extra is not None,
        minimum=prop.get("minimum"),
        maximum=prop.get("maximum"),
        examples=tuple(prop.get("examples", ())),
    )


def _kind(prop: Mapping[str, Any]) -> tuple[FieldKind, tuple[str, ...]]:
    if "enum" in prop:
        return FieldKind.CHOICE, tuple(str(v) for v in prop["enum"])
    types = {branch.get("type") for branch in prop.get("oneOf", ())} or {prop.get("type")}
    if types == {"string", "array"}:
        return FieldKind.COMMAND, ()
    kinds = {"boolean": FieldKind.FLAG, "integer": FieldKind.NUMBER, "object": FieldKind.OBJECT}
    return kinds.get(str(prop.get("type")), FieldKind.TEXT), ()


@cache
def job_form() -> JobForm:
    """The form of jobfsm's own schema (built once: it lists the time zones)."""
    return derive_form(job_schema())


# -- the conversions of one value ------------------------------------------------------------


def whole_number(raw: Any) -> int | None:
    """A number field's value; None when empty."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError(f"{raw!r} is not a whole number")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{raw!r} is not a whole number") from None


def parse_command(text: str) -> str | list[str]:
    """A JSON array of strings is a direct command (no shell); anything else is shell text."""
    stripped = (text or "").strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError:
            return text
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return text


def command_text(command: str | Sequence[str]) -> str:
    if isinstance(command, str):
        return command
    return json.dumps(list(command))


def parse_object(text: str, examples: Sequence[Any] = ()) -> Any:
    """A JSON object field (returned as parsed, for the validator to judge); empty is ``{}``."""
    stripped = (text or "").strip()
    if not stripped:
        return {}
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        example = next((e for e in examples if isinstance(e, dict)), {})
        raise ValueError(
            f"not valid JSON ({exc.msg} at line {exc.lineno}); write e.g. {json.dumps(example)}"
        ) from None
