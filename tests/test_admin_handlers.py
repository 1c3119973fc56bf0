"""The admin page's handlers over a real management service (job files, SQLite store).

Every action and form: valid, invalid, unknown job, stale edit, refused confirmation; and the
two properties of the plan: a non-admin is refused and nothing changes (20), and every action,
allowed or denied, leaves exactly one audit entry naming the user (21).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.admin import views
from jobfsm.admin.form import job_form
from jobfsm.admin.handlers import JobsHandlers, Refused
from jobfsm.problems import Problem
from jobfsm.service import JobManagementService
from tests.admin_support import write_job

ROLES = {"alice": "admin", "victor": "viewer"}


def request(user: str | None) -> gr.Request:
    return gr.Request(username=user)


@contextmanager
def env(root: Path) -> Iterator[tuple[JobsHandlers, JobManagementService, Path]]:
    jobs, logs = root / "jobs", root / "logs"
    jobs.mkdir(parents=True, exist_ok=True)
    write_job(jobs, "hello", command="true")
    write_job(jobs, "off", enabled=False, command="true")
    service = JobManagementService(jobs, logs)
    try:
        yield JobsHandlers(service, role_of=lambda r: ROLES.get(r.username or "")), service, jobs
    finally:
        service.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[JobsHandlers, JobManagementService, Path]]:
    with env(tmp_path) as value:
        yield value


def snapshot(service: JobManagementService, jobs: Path) -> tuple[Any, ...]:
    files = {p.name: p.read_bytes() for p in sorted(jobs.glob("*.json"))}
    runs = [r.id for r in service.store.list_runs()]
    return files, service.store.all_states(), runs


def version(service: JobManagementService, name: str) -> str:
    return str(service.get_job(name).version)


# -- actions ---------------------------------------------------------------------------------


def test_enable_disable_trigger_valid(setup: Any) -> None:
    h, service, _ = setup
    assert h.enable("off", request("alice")).ok
    assert service.get_job("off").enabled is True
    result = h.disable("hello", request("alice"))
    assert result.ok and "Disabled 'hello'" in result.message
    assert service.get_job("hello").enabled is False
    result = h.trigger("off", request("alice"))
    assert result.ok and result.run_id is not None
    run = service.wait_for_run(result.run_id, timeout=30)
    assert run.status.value == "succeeded"


@pytest.mark.parametrize("action", ["enable", "disable", "trigger"])
def test_actions_on_an_unknown_job_say_so(setup: Any, action: str) -> None:
    h, _, _ = setup
    result = getattr(h, action)("ghost", request("alice"))
    assert not result.ok
    assert "'ghost'" in result.message


def test_trigger_of_a_disabled_job_is_refused_with_the_fix(setup: Any) -> None:
    h, _, _ = setup
    result = h.trigger("off", request("alice"))
    assert not result.ok
    assert "enable it" in result.message


def test_delete_needs_the_confirmation(setup: Any) -> None:
    h, service, jobs = setup
    before = snapshot(service, jobs)
    for confirmation in (None, "", "other"):
        result = h.delete("hello", confirmation, None, request("alice"))
        assert not result.ok and "not confirmed" in result.message
    assert snapshot(service, jobs) == before
    denied = [e for e in service.list_audit() if e.action == "delete"]
    assert [e.outcome for e in denied] == ["denied"] * 3
    result = h.delete("hello", "hello", version(service, "hello"), request("alice"))
    assert result.ok
    assert not (jobs / "hello.json").exists()


def test_delete_unknown_and_stale(setup: Any) -> None:
    h, service, jobs = setup
    assert "'ghost'" in h.delete("ghost", "ghost", None, request("alice")).message
    stale = version(service, "hello")
    write_job(jobs, "hello", command="echo changed")
    result = h.delete("hello", "hello", stale, request("alice"))
    assert not result.ok and "was changed since you opened it" in result.message
    assert "its file was edited outside this page" in result.message  # nobody here did it
    assert result.message.startswith("Not deleted:") and "Not saved" not in result.message
    assert (jobs / "hello.json").exists()


def test_a_conflict_names_who_changed_the_job(setup: Any) -> None:
    """Issue 13, defect 1: the message of a real conflict says who or what changed the job."""
    h, service, _ = setup
    ROLES["bob"] = "admin"
    try:
        opened = version(service, "hello")
        assert h.disable("hello", request("bob")).ok
        result = h.edit("hello", {**json.loads(json.dumps(service.get_job("hello").config.to_dict(full=False))),
                                  "description": "x"}, opened, request("alice"))
        assert not result.ok
        assert result.message.startswith("Not saved: job 'hello' was changed since you opened it: user 'bob'")
        assert "(disable, " in result.message
        result = h.delete("hello", "hello", opened, request("alice"))
        assert result.message.startswith("Not deleted:") and "user 'bob' changed it" in result.message
        stale = version(service, "hello")
        assert h.enable("hello", request("alice")).ok
        result = h.delete("hello", "hello", stale, request("alice"))
        assert "you changed it in another tab or window (enable," in result.message
    finally:
        del ROLES["bob"]


def test_the_version_an_action_returns_lets_delete_follow(setup: Any) -> None:
    """Disable, Enable, then Delete with the version the actions handed back: no conflict."""
    h, service, jobs = setup
    current = version(service, "hello")
    for act in (h.disable, h.enable):
        result = act("hello", request("alice"))
        assert result.ok and result.view.version != current
        current = result.view.version
    result = h.delete("hello", "hello", current, request("alice"))
    assert result.ok, result.message
    assert not (jobs / "hello.json").exists()


# -- forms -----------------------------------------------------------------------------------


FORM = job_form()
FORM_FIELDS = FORM.keys


def form(**overrides: Any) -> dict[str, Any]:
    values = FORM.starting_values()
    values.update(
        name="made", description="", schedule="0 3 * * *", timezone="UTC", command="echo made",
        working_directory="/tmp", enabled=True, timeout_seconds=3600, env="{}", overlap="skip",
        catch_up="none", retries=0, retry_delay_seconds=60,
    )
    values.update(overrides)
    return values


def document_from_form(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    return FORM.document(values)


def test_create_from_the_form(setup: Any) -> None:
    h, _service, jobs = setup
    document, local = document_from_form(form())
    assert local == {}
    assert document == {  # defaults left out, as a person writes the file
        "name": "made", "schedule": "0 3 * * *", "command": "echo made",
        "working_directory": "/tmp", "enabled": True,
    }
    result = h.create(document, request("alice"))
    assert result.ok, result.message
    assert json.loads((jobs / "made.json").read_text())["schedule"] == "0 3 * * *"


def test_invalid_cron_is_reported_at_the_schedule_field(setup: Any) -> None:
    h, _, jobs = setup
    document, _ = document_from_form(form(schedule="61 * * * *"))
    result = h.create(document, request("alice"))
    assert not result.ok
    by_field = views.problems_by_field(result.problems, FORM_FIELDS)
    assert "schedule" in by_field and "minute" in by_field["schedule"][0]
    assert not (jobs / "made.json").exists()


def test_duplicate_name_is_refused(setup: Any) -> None:
    h, _, _ = setup
    document, _ = document_from_form(form(name="hello"))
    result = h.create(document, request("alice"))
    assert not result.ok and "already exists" in result.message


def test_form_round_trips_a_job(setup: Any) -> None:
    _h, service, _ = setup
    config = service.get_job("hello").config
    document, local = document_from_form(FORM.values_of(config))
    assert local == {}
    assert {k: document[k] for k in ("name", "schedule", "command", "enabled")} == {
        "name": "hello", "schedule": "*/5 * * * *", "command": "true", "enabled": True,
    }


def test_update_valid_stale_and_unknown(setup: Any) -> None:
    h, service, jobs = setup
    v1 = version(service, "hello")
    shown = json.loads((jobs / "hello.json").read_text())
    result = h.edit("hello", {**shown, "schedule": "@daily"}, v1, request("alice"))
    assert result.ok, result.message
    assert json.loads((jobs / "hello.json").read_text())["schedule"] == "@daily"
    # the same stale version again: refused, never silently overwritten
    result = h.edit("hello", {**shown, "schedule": "@hourly"}, v1, request("alice"))
    assert not result.ok and "you changed it in another tab or window (update," in result.message
    assert json.loads((jobs / "hello.json").read_text())["schedule"] == "@daily"
    ghost = h.edit("ghost", {**shown, "name": "ghost", "schedule": "@daily"}, None, request("alice"))
    assert "'ghost'" in ghost.message


def test_raw_replace_valid_and_invalid(setup: Any) -> None:
    h, service, jobs = setup
    doc = {"name": "hello", "schedule": "@weekly", "command": ["/bin/true"], "working_directory": "/", "enabled": True}
    assert h.replace("hello", doc, version(service, "hello"), request("alice")).ok
    assert json.loads((jobs / "hello.json").read_text())["command"] == ["/bin/true"]
    bad = dict(doc, timeout_seconds=0, extra=1)
    result = h.replace("hello", bad, version(service, "hello"), request("alice"))
    assert not result.ok
    paths = sorted(p.json_path for p in result.problems)
    assert any("extra" in p or p == "$" for p in paths) and "$.timeout_seconds" in paths


def test_form_field_errors_of_its_own(setup: Any) -> None:
    _, _, _ = setup
    _, local = document_from_form(form(env="{not json", retries="many"))
    assert set(local) == {"env", "retries"}


def test_cron_helper_words_fires_and_dst_notes() -> None:
    from datetime import UTC, datetime

    text, error = views.cron_help("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 27, tzinfo=UTC))
    assert error is None
    assert "02:30" in text
    assert len([line for line in text.splitlines() if line.startswith("  ")]) == 5
    assert "⚠" in text  # 2026-03-29 02:30 does not exist in Berlin
    _, error = views.cron_help("0 0 31 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC))
    assert error
    _, error = views.cron_help("* * * * * *", "UTC", datetime(2026, 1, 1, tzinfo=UTC))
    assert error


def test_history_and_logs(setup: Any) -> None:
    h, service, _ = setup
    write_job(service.jobs_directory, "talk", command="echo needle-1; echo other >&2")
    run_id = h.trigger("talk", request("victor" if False else "alice")).run_id
    assert run_id is not None
    service.wait_for_run(run_id, timeout=30)
    runs = h.history("talk", None, None, None, request("victor"))
    assert [r.id for r in runs] == [run_id]
    assert h.history("talk", "failed", None, None, request("victor")) == []
    frame = views.history_frame(runs)
    assert list(frame["Status"]) == ["succeeded"]
    entries = h.logs("talk", "needle", None, request("victor"))
    text = views.logs_text(entries, search="needle")
    assert "needle-1" in text and "other" not in text


def test_the_log_view_is_bounded_and_shows_head_and_tail(setup: Any) -> None:
    """Issue 13, defect 2: 2 MB of output per run is shown as the stored head and tail."""
    h, service, _ = setup
    write_job(service.jobs_directory, "loud", command="echo FIRST-LINE; yes filler-line | head -c 2000000; echo LAST-LINE")
    for _ in range(3):
        service.wait_for_run(h.trigger("loud", request("alice")).run_id, timeout=60)
    runs = h.history("loud", None, None, None, request("victor"), limit=20)
    text = views.logs_text(views.stored_output(runs), per_stream=views.LOG_VIEW_CHARS, total=views.LOG_VIEW_TOTAL)
    assert len(text) <= views.LOG_VIEW_TOTAL + 200
    assert text.count("FIRST-LINE") == 3 and text.count("LAST-LINE") == 3
    assert "not shown here: download the full output" in text


# -- properties ------------------------------------------------------------------------------

ACTIONS = ["enable", "disable", "trigger", "delete", "create", "update", "replace"]


def perform(h: JobsHandlers, service: JobManagementService, action: str, job: str, user: str | None) -> Any:
    r = request(user)
    doc = {"name": job, "schedule": "@daily", "command": "true", "working_directory": "/tmp", "enabled": True}
    if action in ("enable", "disable", "trigger"):
        return getattr(h, action)(job, r)
    if action == "delete":
        return h.delete(job, job, None, r)
    if action == "create":
        return h.create(doc, r)
    if action == "update":
        return h.edit(job, {**doc, "schedule": "@hourly"}, None, r)
    return h.replace(job, doc, None, r)


names = st.sampled_from(["hello", "off", "ghost", "new-one"])
non_admins = st.sampled_from(["victor", "mallory", None, ""])


# Property 20: a non-admin is refused and nothing changes
@settings(max_examples=100, deadline=None)
@given(user=non_admins, action=st.sampled_from([*ACTIONS, "audit"]), job=names)
def test_non_admin_is_refused_and_nothing_changes(user: str | None, action: str, job: str) -> None:
    with tempfile.TemporaryDirectory() as root, env(Path(root)) as (h, service, jobs):
        before = snapshot(service, jobs)
        with pytest.raises(Refused):
            if action == "audit":
                h.audit(None, None, request(user))
            else:
                perform(h, service, action, job, user)
        assert snapshot(service, jobs) == before


# Property 21: every action, allowed or denied, produces exactly one audit entry with the user
@settings(max_examples=100, deadline=None)
@given(user=st.sampled_from(["alice", "victor"]), action=st.sampled_from(ACTIONS), job=names)
def test_every_action_is_audited_once_with_the_user(user: str, action: str, job: str) -> None:
    with tempfile.TemporaryDirectory() as root, env(Path(root)) as (h, service, _):
        before = len(service.list_audit())
        try:
            result = perform(h, service, action, job, user)
        except Refused:
            assert user == "victor"
        else:
            assert user == "alice"
            if getattr(result, "run_id", None):
                service.wait_for_run(result.run_id, timeout=30)
        entries = service.list_audit()
        assert len(entries) == before + 1
        assert entries[0].user == user
        assert entries[0].job in (job, None)
        expected = "denied" if user == "victor" else entries[0].outcome
        assert entries[0].outcome == expected


def test_every_handler_is_guarded() -> None:
    public = [n for n in dir(JobsHandlers) if not n.startswith("_")]
    unguarded = [
        n for n in public
        if callable(getattr(JobsHandlers, n)) and n not in ("authorize", "user_of", "is_admin")
        and not hasattr(getattr(JobsHandlers, n), "__jobfsm_guarded__")
    ]
    assert unguarded == []


def test_not_signed_in_cannot_even_look(setup: Any) -> None:
    h, _, _ = setup
    with pytest.raises(Refused):
        h.list_jobs(request(None))


def test_problems_map_to_fields() -> None:
    problems = [Problem("x", "$.schedule", "bad"), Problem("x", "$", "whole"), Problem("x", "$.env.A", "env")]
    assert views.problems_by_field(problems, FORM_FIELDS) == {"schedule": ["bad"], "": ["whole"], "env": ["env"]}


def test_the_form_keeps_a_masked_secret_and_saves_the_rest(setup: Any) -> None:
    """The page shows secrets masked and sends the form as it holds it: the service keeps them."""
    h, service, jobs = setup
    write_job(jobs, "db", command="true", env={"DB_PASSWORD": "hunter2", "LANG": "C"})
    view = service.get_job("db")
    values = FORM.values_of(view.config)
    assert json.loads(values["env"]) == {"DB_PASSWORD": "••••••", "LANG": "C"}
    env = json.dumps({**json.loads(values["env"]), "TZ": "UTC"})
    document, local = document_from_form({**values, "env": env, "description": "dump"})
    assert local == {}
    result = h.edit("db", document, view.version, request("alice"))
    assert result.ok, result.message
    saved = json.loads((jobs / "db.json").read_text())
    assert saved["env"] == {"DB_PASSWORD": "hunter2", "LANG": "C", "TZ": "UTC"}
    assert saved["description"] == "dump"
    document, _ = document_from_form({**values, "env": json.dumps({"NEW_TOKEN": "••••••"})})
    result = h.edit("db", document, str(result.view.version), request("alice"))
    assert not result.ok
    assert list(views.problems_by_field(result.problems, FORM_FIELDS)) == ["env"]
