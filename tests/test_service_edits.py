"""The rules of an edit, through the service (real job files, a real SQLite store): masked secrets
and the form's whole-document save (``edit_job``), which writes only what changed in meaning.

The masked-secret rule, as a user expects it: the service shows every ``env`` value under a key
containing PASSWORD, TOKEN, SECRET or KEY as ``••••••``. Sending that mask back unchanged keeps
the stored secret (in ``update_job``, ``replace_job`` and ``edit_job`` alike); sending another value
replaces it. A mask under a secret key the job has no value for (a new key, a renamed one, a new
job) is refused at ``$.env.KEY``: saving it would make six dots the secret, silently, and the page
would then show it masked like a real one. Under a key that is not secret nothing is ever masked,
so the value is stored as typed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobfsm.audit import MASK
from jobfsm.errors import ValidationError
from jobfsm.service import JobManagementService
from jobfsm.service.edits import merged, optional_defaults
from jobfsm.store import open_store
from tests.conftest import job_doc
from tests.strategies import job_documents

SECRETS = {"DB_PASSWORD": "hunter2", "api_token": "tok-1", "LANG": "C"}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[JobManagementService]:
    (tmp_path / "jobs").mkdir()
    store = open_store(f"sqlite:///{tmp_path / 'jobfsm.db'}")
    svc = JobManagementService(tmp_path / "jobs", tmp_path / "logs", store)
    yield svc
    svc.close()
    store.close()


def on_disk(service: JobManagementService, name: str) -> dict[str, Any]:
    return dict(json.loads((service.jobs_directory / f"{name}.json").read_text()))


def shown(service: JobManagementService, name: str) -> tuple[dict[str, Any], str]:
    """The job as the service shows it (secrets masked) and its version."""
    view = service.get_job(name)
    assert view.config is not None and view.version is not None
    return view.config.to_dict(full=False), view.version


def last_entry(service: JobManagementService, name: str) -> Any:
    return service.list_audit(job=name)[0]


@pytest.mark.parametrize("how", ["edit", "replace", "update"])
def test_a_masked_secret_sent_back_keeps_the_stored_value(service: JobManagementService, how: str) -> None:
    service.create_job(job_doc("db", env=SECRETS), "ana")
    document, version = shown(service, "db")
    assert document["env"] == {"DB_PASSWORD": MASK, "api_token": MASK, "LANG": "C"}
    env = {**document["env"], "LANG": "C.UTF-8", "TZ": "UTC"}  # other keys change meanwhile
    if how == "edit":
        service.edit_job("db", {**document, "env": env}, "ana", version)
    elif how == "replace":
        service.replace_job("db", {**document, "env": env}, "ana", version)
    else:
        service.update_job("db", {"env": env}, "ana", version)
    assert on_disk(service, "db")["env"] == {"DB_PASSWORD": "hunter2", "api_token": "tok-1", "LANG": "C.UTF-8", "TZ": "UTC"}
    changes = last_entry(service, "db").details["changes"]
    assert changes["env"]["new"] == {"DB_PASSWORD": MASK, "api_token": MASK, "LANG": "C.UTF-8", "TZ": "UTC"}


def test_a_changed_secret_replaces_the_stored_one(service: JobManagementService) -> None:
    service.create_job(job_doc("db", env=SECRETS), "ana")
    document, version = shown(service, "db")
    service.edit_job("db", {**document, "env": {**document["env"], "DB_PASSWORD": "hunter3"}}, "ana", version)
    assert on_disk(service, "db")["env"]["DB_PASSWORD"] == "hunter3"
    assert on_disk(service, "db")["env"]["api_token"] == "tok-1"
    assert "hunter3" not in json.dumps([e.to_dict() for e in service.list_audit()])


@pytest.mark.parametrize(
    ("key", "drop"),
    [("NEW_TOKEN", None), ("DB_PASSWORD_2", "DB_PASSWORD"), ("db_password", None)],
    ids=["new-key", "renamed-key", "other-case"],
)
def test_a_mask_with_no_stored_secret_is_refused_at_its_key(
    service: JobManagementService, key: str, drop: str | None
) -> None:
    service.create_job(job_doc("db", env=SECRETS), "ana")
    before = (service.jobs_directory / "db.json").read_bytes()
    document, version = shown(service, "db")
    env = {k: v for k, v in document["env"].items() if k != drop} | {key: MASK}
    with pytest.raises(ValidationError) as caught:
        service.edit_job("db", {**document, "env": env}, "ana", version)
    assert [p.json_path for p in caught.value.problems] == [f"$.env.{key}"]
    assert "type the secret itself" in caught.value.problems[0].message
    assert (service.jobs_directory / "db.json").read_bytes() == before
    assert last_entry(service, "db").outcome == "failed"


def test_a_new_job_with_a_masked_secret_is_refused_with_its_other_problems(service: JobManagementService) -> None:
    with pytest.raises(ValidationError) as caught:
        service.create_job(job_doc("db", schedule="61 * * * *", env={"API_KEY": MASK}), "ana")
    assert sorted(p.json_path for p in caught.value.problems) == ["$.env.API_KEY", "$.schedule"]
    assert not (service.jobs_directory / "db.json").exists()


def test_a_mask_under_a_key_that_is_not_secret_is_stored_as_typed(service: JobManagementService) -> None:
    service.create_job(job_doc("dots", env={"BANNER": MASK}), "ana")
    assert on_disk(service, "dots")["env"] == {"BANNER": MASK}
    assert service.get_job("dots").config.env == {"BANNER": MASK}  # type: ignore[union-attr]


HAND_WRITTEN = """{
  "$schema": "../schemas/job.schema.json",
  "name": "tidy",
  "schedule": "0 4 * * *",
  "timezone": "UTC",
  "command": "true",
  "working_directory": "/tmp",
  "enabled": true,
  "overlap": "skip",
  "retries": 0
}
"""


def test_the_form_writes_only_what_changed_in_meaning(service: JobManagementService) -> None:
    """A file that spells out defaults keeps them when the form (which leaves defaults out)
    saves it; a changed field is the only line that changes."""
    path = service.jobs_directory / "tidy.json"
    path.write_text(HAND_WRITTEN)
    version = service.get_job("tidy").version
    form = {"name": "tidy", "schedule": "0 4 * * *", "command": "true", "working_directory": "/tmp", "enabled": True}
    view = service.edit_job("tidy", form, "ana", version)
    assert path.read_text() == HAND_WRITTEN and view.version == version
    assert last_entry(service, "tidy").details["changes"] == {}
    service.edit_job("tidy", {**form, "schedule": "0 5 * * *", "retries": 2}, "ana", version)
    assert path.read_text() == HAND_WRITTEN.replace("0 4 * * *", "0 5 * * *").replace('"retries": 0', '"retries": 2')
    assert set(last_entry(service, "tidy").details["changes"]) == {"schedule", "retries"}


def test_the_form_sets_a_field_back_to_its_default_by_leaving_it_out(service: JobManagementService) -> None:
    view = service.create_job(job_doc("t", timeout_seconds=300, description="x"), "ana")
    form = job_doc("t", description="x")
    service.edit_job("t", form, "ana", view.version)
    assert on_disk(service, "t") == form
    [entry] = [e for e in service.list_audit(job="t") if e.action == "update"]
    assert entry.details["changes"] == {"timeout_seconds": {"old": 300, "new": None}}


def test_the_form_cannot_rename_or_drop_a_required_field(service: JobManagementService) -> None:
    view = service.create_job(job_doc("t"), "ana")
    with pytest.raises(ValidationError, match="rename"):
        service.edit_job("t", job_doc("u"), "ana", view.version)
    without = {k: v for k, v in job_doc("t").items() if k != "command"}
    with pytest.raises(ValidationError, match="command"):
        service.edit_job("t", without, "ana", view.version)


def _meaning(document: dict[str, Any]) -> dict[str, Any]:
    return {**optional_defaults(), **document}


@given(job_documents(name="j"), job_documents(name="j"), st.data())
def test_merged_means_what_the_editor_sent_and_keeps_what_it_did_not_change(
    old: dict[str, Any], new: dict[str, Any], data: st.DataObject
) -> None:
    # The editor leaves some optional keys out where they hold their default.
    defaults = optional_defaults()
    sent = {k: v for k, v in new.items() if not (k in defaults and v == defaults[k] and data.draw(st.booleans()))}
    result = merged(old, sent)
    assert _meaning(result) == _meaning(sent)
    for key, value in old.items():
        if _meaning(old).get(key) == _meaning(sent).get(key):
            assert result[key] == value  # spelled as the file spelled it
