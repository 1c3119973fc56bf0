"""The admin page's job form is derived from the job schema and ``JobConfig``: its fields are the
schema's properties in order with their titles, help, defaults and choices, a field added to
both appears with no edit of the form module, and values go in and out by key."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobfsm.admin.form import FieldKind, derive_form, job_form
from jobfsm.config.schema import job_schema
from jobfsm.model import JobConfig
from tests.strategies import job_documents


def test_the_fields_are_the_schema_properties_in_order_with_their_defaults() -> None:
    schema = job_schema()
    form = job_form()
    assert list(form.keys) == list(schema["properties"])
    for f in form.fields:
        prop = schema["properties"][f.key]
        assert (f.title, f.help, f.default) == (prop["title"], prop["description"], prop["default"])
        assert f.required == (f.key in schema["required"])
        assert f.label.endswith(" *") == f.required


def test_jobconfig_defaults_agree_with_the_schema() -> None:
    """What a file leaving a key out means (JobConfig) is what the form shows as its default."""
    minimal = JobConfig(name="a", schedule="@daily", command="true", working_directory="/tmp", enabled=True)
    form = job_form()
    shown = form.values_of(minimal)
    for f in form.fields:
        if not f.required:
            assert shown[f.key] == f.starting_value, f.key


@pytest.mark.parametrize(
    ("key", "kind", "choices"),
    [
        ("name", FieldKind.TEXT, ()),
        ("command", FieldKind.COMMAND, ()),
        ("enabled", FieldKind.FLAG, ()),
        ("timeout_seconds", FieldKind.NUMBER, ()),
        ("env", FieldKind.OBJECT, ()),
        ("overlap", FieldKind.CHOICE, ("skip", "queue", "allow")),
        ("catch_up", FieldKind.CHOICE, ("none", "latest", "all")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_kind_comes_from_the_schema_type(key: str, kind: FieldKind, choices: tuple[str, ...]) -> None:
    f = job_form().field(key)
    assert f.kind is kind
    assert f.choices == choices
    assert not f.open_choices


def test_numbers_keep_their_bounds_and_zones_are_offered() -> None:
    form = job_form()
    timeout = form.field("timeout_seconds")
    assert (timeout.minimum, timeout.maximum) == (1, 604800)
    zone = form.field("timezone")
    assert zone.kind is FieldKind.CHOICE and zone.open_choices and "Europe/Berlin" in zone.choices


def _with_owner() -> tuple[dict[str, Any], type[Any]]:
    """The schema and a JobConfig with one more optional field, ``owner``, after ``description``."""
    schema = copy.deepcopy(job_schema())
    properties = list(schema["properties"].items())
    at = [k for k, _ in properties].index("description") + 1
    owner = {"title": "Owner", "description": "Who to call.", "type": "string", "default": "ops"}
    schema["properties"] = dict([*properties[:at], ("owner", owner), *properties[at:]])
    extended = dataclasses.make_dataclass(
        "OwnedJobConfig", [("owner", str, dataclasses.field(default="ops"))],
        bases=(JobConfig,), frozen=True, slots=True,
    )
    return schema, extended


def test_a_new_optional_field_appears_without_editing_the_form_module() -> None:
    schema, extended = _with_owner()
    form = derive_form(schema, extended)
    assert list(form.keys) == list(schema["properties"])
    owner = form.field("owner")
    assert (owner.title, owner.help, owner.default, owner.kind) == ("Owner", "Who to call.", "ops", FieldKind.TEXT)
    assert form.starting_values()["owner"] == ""  # an optional text: empty means its default
    config = extended(name="a", schedule="@daily", command="true", working_directory="/tmp", enabled=True, owner="dba")
    values = form.values_of(config)
    assert values["owner"] == "dba"
    document, errors = form.document(values)
    assert errors == {} and document["owner"] == "dba"
    document, _ = form.document({**values, "owner": "ops"})
    assert "owner" not in document  # at its default: left out, as a person writes the file


def test_a_schema_and_a_config_that_disagree_are_refused() -> None:
    schema, _ = _with_owner()
    with pytest.raises(LookupError, match="owner"):
        derive_form(schema, JobConfig)


def test_values_go_in_by_key_not_by_position() -> None:
    form = job_form()
    values = {**form.starting_values(), "name": "a", "schedule": "@daily", "command": "true", "enabled": True}
    backwards = dict(reversed(list(values.items())))
    assert form.document(values) == form.document(backwards)
    assert form.values_from([values[k] for k in form.keys]) == values


def test_the_form_finds_what_it_cannot_read() -> None:
    form = job_form()
    values = {**form.starting_values(), "env": "{not json", "retries": "many", "timeout_seconds": 2.5}
    _, errors = form.document(values)
    assert set(errors) == {"env", "retries", "timeout_seconds"}
    assert "LANG" in errors["env"]  # the example comes from the schema


@given(job_documents())
def test_a_job_round_trips_through_the_form(document: dict[str, Any]) -> None:
    """Every valid job shown in the form and saved unchanged is the job it was."""
    form = job_form()
    config = JobConfig.from_dict(document)
    saved, errors = form.document(form.values_of(config))
    assert errors == {}
    assert JobConfig.from_dict(saved) == config
    assert saved == config.to_dict(full=False)  # and is written as a person writes it


@given(st.sampled_from(["", "../schemas/job.schema.json", "https://example.org/job.json"]))
def test_schema_ref_is_shown_as_the_file_has_it(ref: str) -> None:
    form = job_form()
    config = JobConfig(name="a", schedule="@daily", command="true", working_directory="/tmp", enabled=True,
                       schema_ref=ref or None)
    values = form.values_of(config)
    assert values["$schema"] == ref
    saved, _ = form.document(values)
    assert saved.get("$schema") == (ref if ref and ref != form.field("$schema").default else None)
