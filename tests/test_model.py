"""The job model and the schema file: round-trips, defaults, schema completeness."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest
from hypothesis import given

from jobfsm.config.schema import job_schema, validator
from jobfsm.model import REQUIRED_FIELDS, JobConfig, document_value
from tests.conftest import job_doc
from tests.strategies import job_configs, job_documents

ROOT = Path(__file__).resolve().parent.parent


# Property 1: JobConfig round-trip
@given(job_configs)
def test_config_round_trips_through_dict_and_json(config: JobConfig) -> None:
    document = json.loads(json.dumps(config.to_dict()))
    assert JobConfig.from_dict(document) == config
    assert validator().is_valid(document)


@given(job_documents())
def test_minimal_to_dict_keeps_exactly_what_differs_from_defaults(document: dict) -> None:
    config = JobConfig.from_dict(document)
    short = config.to_dict(full=False)
    assert JobConfig.from_dict(short) == config
    assert set(REQUIRED_FIELDS) <= set(short)


def test_defaults_match_the_schema() -> None:
    properties = job_schema()["properties"]
    config = JobConfig(name="x", schedule="@daily", command="true", working_directory="/", enabled=True)
    for f in fields(config):
        if f.name in REQUIRED_FIELDS or f.name == "schema_ref":
            continue
        value = getattr(config, f.name)
        expected = properties[f.name]["default"]
        assert document_value(value) == expected, f.name


def test_config_is_frozen() -> None:
    config = JobConfig(name="x", schedule="@daily", command="true", working_directory="/", enabled=True)
    with pytest.raises(FrozenInstanceError):
        config.name = "y"  # type: ignore[misc]


def test_every_property_documents_itself_for_the_editor() -> None:
    schema = job_schema()
    assert schema["$id"] and schema["additionalProperties"] is False
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for name, prop in schema["properties"].items():
        for key in ("title", "description", "default", "examples"):
            assert key in prop, f"{name} lacks {key}"
    assert set(schema["required"]) == set(REQUIRED_FIELDS)
    config_fields = {f.name for f in fields(JobConfig)} - {"schema_ref"}
    assert set(schema["properties"]) - {"$schema"} == config_fields


def test_packaged_schema_is_identical_to_the_published_one() -> None:
    assert (ROOT / "schemas" / "job.schema.json").read_bytes() == (
        ROOT / "jobfsm" / "config" / "job.schema.json"
    ).read_bytes()


def test_schema_examples_validate() -> None:
    validator().check_schema(job_schema())
    for path in sorted((ROOT / "jobs").glob("*.json")):
        assert validator().is_valid(json.loads(path.read_text())), path


def test_the_public_surface_resolves_lazily() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jobfsm\n"
        "assert 'jobfsm.service' not in sys.modules and 'gradio' not in sys.modules\n"
        "names = [n for n in jobfsm.__all__ if n != 'create_jobs_section']\n"
        "assert all(getattr(jobfsm, n) is not None for n in names)\n"
        "assert 'gradio' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_configs_share_the_strings_an_estate_repeats() -> None:
    # Two files parsed apart repeat the same schedule, zone, folder and program as separate
    # string objects; a daemon keeps every config for its lifetime, so they are shared.
    docs = [json.loads(json.dumps(job_doc(name, command=["/usr/bin/backup", name], timezone="Europe/Berlin",
                                          env={"LANG": "C.UTF-8"})))
            for name in ("a", "b")]
    a, b = (JobConfig.from_dict(d) for d in docs)
    assert docs[0]["schedule"] is not docs[1]["schedule"]  # what json gives: copies
    assert a.schedule is b.schedule and a.timezone is b.timezone and a.working_directory is b.working_directory
    assert a.command[0] is b.command[0] and a.command[1] == "a" and b.command[1] == "b"
    assert next(iter(a.env)) is next(iter(b.env)) and a.env["LANG"] is b.env["LANG"]
    assert a == JobConfig.from_dict(docs[0])  # the same job, value for value
