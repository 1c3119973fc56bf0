"""The admin app over real HTTP: a uvicorn server on 127.0.0.1, a real service and SQLite file.

Sign-in, sessions, the rate limit, and the server-side role check of every Gradio endpoint that
changes something, called directly as a script would (no browser, no hidden button to rely on).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from jobfsm.admin.app import PUBLIC_PATHS
from jobfsm.admin.form import job_form
from tests.admin_support import AdminServer, admin_server, call, login, write_job

pytestmark = pytest.mark.slow

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    root = tmp_path_factory.mktemp("admin-http")
    with admin_server(root, session_ttl=600) as srv:
        write_job(srv.jobs, "hello")
        write_job(srv.jobs, "xss", description=XSS, command=f"printf '%s\\n' '{XSS}'")
        yield srv


@pytest.fixture(autouse=True)
def _fresh_limits(server: AdminServer) -> None:
    server.app.state.jobfsm_limiter.clear()
    server.wall[0] = 0.0


def _gradio_paths(server: AdminServer) -> list[tuple[str, str]]:
    """Every route of the mounted Gradio app, with a concrete path and a method."""
    gradio_app = next(r.app for r in server.app.routes if getattr(r, "path", None) == "" and hasattr(r, "app"))

    def walk(routes: list[object], prefix: str = "") -> Iterator[tuple[str, object]]:
        for route in routes:
            original = getattr(route, "original_router", None)  # FastAPI's included router
            if original is not None:
                yield from walk(list(original.routes), prefix)
                continue
            path = prefix + (getattr(route, "path", "") or "")
            nested = getattr(route, "routes", None)
            if nested and not hasattr(route, "endpoint"):
                yield from walk(list(nested), path if hasattr(route, "path") else prefix)
            else:
                yield path, route

    out = []
    for path, route in walk(list(gradio_app.routes)):
        methods = getattr(route, "methods", None) or {"GET"}
        if not path:
            continue
        concrete = (
            path.replace("{path:path}", "x.js").replace("{path_or_url:path}", "/etc/passwd")
            .replace("{url_path:path}", "http://127.0.0.1/").replace("{api_name}", "do_enable")
        )
        for part in ("{session_hash}", "{event_id}", "{id}", "{run}", "{component_id}", "{segment_id}",
                     "{environment}", "{type}", "{file_name}", "{endpoint}", "{record_id}", "{asset_id}",
                     "{key}", "{size}", "{ext}"):
            concrete = concrete.replace(part, "abc")
        for method in sorted(methods - {"HEAD"}):
            out.append((method, concrete))
    return out


def test_no_session_means_no_access_on_every_endpoint(server: AdminServer) -> None:
    paths = _gradio_paths(server)
    assert len(paths) > 40  # the whole Gradio API surface, not a sample
    opened = []
    for method, path in paths:
        if path.rstrip("/") in PUBLIC_PATHS:
            continue  # the sign-in page, sign-out and the icon are public on purpose
        response = requests.request(method, server.url + path, timeout=30, allow_redirects=False, json={})
        if response.status_code not in (401, 303):
            opened.append((method, path, response.status_code))
    assert opened == []


def test_a_browser_without_session_is_sent_to_login(server: AdminServer) -> None:
    response = requests.get(server.url + "/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=30)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    page = requests.get(server.url + "/login", timeout=30)
    assert page.status_code == 200 and 'name="password"' in page.text
    assert page.headers["x-frame-options"] == "DENY"


def test_monitoring_and_run_history_are_off(server: AdminServer) -> None:
    session = login(server, "alice")
    for path in ("/monitoring", "/monitoring/summary", "/gradio_api/runs"):
        assert session.get(server.url + path, timeout=30).status_code in (403, 404), path
    config = session.get(server.url + "/config", timeout=30).json()
    assert config["analytics_enabled"] is False
    assert config["run_history"] is False
    assert config["footer_links"] == []


def test_wrong_password_is_refused_without_a_session(server: AdminServer) -> None:
    session = requests.Session()
    response = session.post(
        server.url + "/login", data={"username": "alice", "password": "nope"}, allow_redirects=False, timeout=30
    )
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    assert "jobfsm_session" not in session.cookies
    assert session.get(server.url + "/config", timeout=30).status_code == 401


def test_session_cookie_is_httponly_and_samesite_strict(server: AdminServer) -> None:
    response = requests.post(
        server.url + "/login", data={"username": "alice", "password": "alice-pass-1"},
        allow_redirects=False, timeout=30,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=600" in cookie


def test_open_redirect_after_login_is_refused(server: AdminServer) -> None:
    response = requests.post(
        server.url + "/login",
        data={"username": "alice", "password": "alice-pass-1", "next": "//evil.example/"},
        allow_redirects=False, timeout=30,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_expired_session_is_refused(server: AdminServer) -> None:
    session = login(server, "alice")
    assert session.get(server.url + "/config", timeout=30).status_code == 200
    server.wall[0] = 601.0
    assert session.get(server.url + "/config", timeout=30).status_code == 401
    event, _ = call(session, server, "dashboard", [None])
    assert event == "http 401"


def test_logout_ends_the_session(server: AdminServer) -> None:
    session = login(server, "alice")
    cookie = session.cookies.get("jobfsm_session")
    session.get(server.url + "/logout", timeout=30, allow_redirects=False)
    again = requests.get(server.url + "/config", cookies={"jobfsm_session": cookie}, timeout=30)
    assert again.status_code == 401


def test_removed_account_loses_its_session(server: AdminServer) -> None:
    server.accounts.add("temp", "temp-pass-1", "admin")
    session = login(server, "temp", "temp-pass-1")
    assert session.get(server.url + "/config", timeout=30).status_code == 200
    server.accounts.remove("temp")
    assert session.get(server.url + "/config", timeout=30).status_code == 401


FORM = job_form()
FORM_INPUTS = [
    {**FORM.starting_values(), "name": "hello", "schedule": "0 3 * * *", "command": "rm -rf /", "enabled": True}[key]
    for key in FORM.keys
]
"""The form's inputs as the page sends them: in the form's order."""

MUTATING = [
    ("do_enable", ["hello"], "enable"),
    ("do_disable", ["hello"], "disable"),
    ("do_trigger", ["hello"], "trigger"),
    ("do_delete", ["hello", "hello", ""], "delete"),
    ("save_form", ["edit", "", *FORM_INPUTS], "update"),
    ("save_raw", ["edit", "hello", "", json.dumps({"name": "hello", "schedule": "@daily",
                   "command": "id", "working_directory": "/", "enabled": True})], "replace"),
    ("save_raw", ["create", "new", "", json.dumps({"name": "new", "schedule": "@daily",
                   "command": "id", "working_directory": "/", "enabled": True})], "create"),
    ("audit", ["", ""], "audit"),
]


@pytest.mark.parametrize(("api", "data", "action"), MUTATING, ids=[f"{m[0]}-{m[2]}" for m in MUTATING])
def test_viewer_direct_post_is_refused_and_audited(
    server: AdminServer, api: str, data: list[object], action: str
) -> None:
    session = login(server, "victor")  # first: signing in is audited too
    before_files = {p.name: p.read_bytes() for p in server.jobs.glob("*.json")}
    before_runs = len(server.service.get_job_history("hello"))
    before_audit = len(server.service.list_audit())
    event, payload = call(session, server, api, data)
    assert event == "error", payload
    assert "may not" in payload["error"]
    assert {p.name: p.read_bytes() for p in server.jobs.glob("*.json")} == before_files
    assert len(server.service.get_job_history("hello")) == before_runs
    entries = server.service.list_audit()
    assert len(entries) == before_audit + 1
    newest = entries[0]
    assert (newest.user, newest.action, newest.outcome) == ("victor", action, "denied")


def test_viewer_may_look(server: AdminServer) -> None:
    session = login(server, "victor")
    event, payload = call(session, server, "dashboard", [None])
    assert event == "complete"
    names = [row[0] for row in payload[1]["data"]]
    assert "hello" in names


def test_markup_in_job_data_comes_back_as_plain_text(server: AdminServer) -> None:
    session = login(server, "alice")
    event, payload = call(session, server, "do_trigger", ["xss"])
    assert event == "complete", payload
    run_id = int(payload[0].split("(run ")[1].split(")")[0])
    server.service.wait_for_run(run_id, timeout=30)
    event, payload = call(session, server, "logs", ["xss", "", ""])
    assert event == "complete", payload
    assert XSS in payload[0]  # the output, byte for byte: no escaping needed, it is text
    event, payload = call(session, server, "select", ["xss"])
    assert event == "complete", payload
    assert XSS in [v.get("value") if isinstance(v, dict) else v for v in payload]


def test_saving_the_form_as_selected_keeps_the_masked_secret(server: AdminServer) -> None:
    """The page's own round trip over HTTP: select a job, send its form back with one change."""
    write_job(server.jobs, "vault", command="true", env={"VAULT_TOKEN": "s3cr3t", "LANG": "C"})
    session = login(server, "alice")
    event, payload = call(session, server, "select", ["vault"])
    assert event == "complete", payload
    shown = [v.get("value") if isinstance(v, dict) else v for v in payload]
    values = dict(zip(FORM.keys, shown, strict=False))
    version = shown[2 * len(FORM.keys) + 1]
    assert "s3cr3t" not in json.dumps(payload) and "VAULT_TOKEN" in values["env"]
    values["description"] = "unsealed"
    event, payload = call(session, server, "save_form", ["edit", version, *values.values()])
    assert event == "complete", payload
    assert payload[0] == "Saved 'vault'."
    saved = json.loads((server.jobs / "vault.json").read_text())
    assert saved["env"] == {"VAULT_TOKEN": "s3cr3t", "LANG": "C"} and saved["description"] == "unsealed"
