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


def skipped(item: object) -> bool:
    """Whether a Gradio output is ``gr.skip()``: an update with nothing in it."""
    if not (isinstance(item, dict) and item.get("__type__") == "update"):
        return False
    return set(item) <= {"__type__", "props"} and set(item.get("props") or {}) <= {"__type__"}


def value(item: object) -> object:
    """A Gradio output as the page shows it: the value of an update, or the value itself."""
    return item.get("value") if isinstance(item, dict) and item.get("__type__") == "update" else item


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
    event, _ = call(session, server, "dashboard", [None, ""])
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
    ("do_enable", ["hello", "edit", "hello"], "enable"),
    ("do_disable", ["hello", "edit", "hello"], "disable"),
    ("do_trigger", ["hello", "edit", "hello"], "trigger"),
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
    event, payload = call(session, server, "dashboard", [None, ""])
    assert event == "complete"
    names = [row[0] for row in payload[1]["data"]]
    assert "hello" in names


def test_gradios_queue_polls_calmly() -> None:
    """Gradio's queue polls for events every millisecond on Linux; the admin app slows it (a
    Gradio release that renames what it slows would make an idle admin process cost 5 % of a
    core again, unseen)."""
    import gradio as gr

    from jobfsm.admin.app import PROGRESS_POLL_SECONDS, QUEUE_POLL_SECONDS, calm_queue

    with gr.Blocks() as blocks:
        gr.Markdown("x")
    queue = blocks._queue
    assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) < (QUEUE_POLL_SECONDS, PROGRESS_POLL_SECONDS)
    calm_queue(blocks)
    assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == (QUEUE_POLL_SECONDS, PROGRESS_POLL_SECONDS)


def test_an_open_page_is_sent_the_table_only_when_it_changed(server: AdminServer) -> None:
    """Every open page asks every few seconds: the table (a thousand rows on a big folder) is
    sent to a page once, then again only after something in it changed; a caller with no page
    is always sent it."""
    session = login(server, "alice")
    event, first = call(session, server, "dashboard", [None, ""], page="page-one")
    assert event == "complete" and "hello" in [row[0] for row in first[1]["data"]]
    event, again = call(session, server, "dashboard", [None, ""], page="page-one")
    assert event == "complete" and "data" not in again[1], "unchanged: nothing to send"
    event, other = call(session, server, "dashboard", [None, ""], page="page-two")
    assert "hello" in [row[0] for row in other[1]["data"]], "another page has not seen it yet"
    write_job(server.jobs, "hello", schedule="0 7 * * *")
    event, changed = call(session, server, "dashboard", [None, ""], page="page-one")
    rows = {row[0]: row for row in changed[1]["data"]}
    assert "07:00" in " ".join(rows["hello"]), rows["hello"]
    event, script = call(session, server, "dashboard", [None, ""])
    assert "data" in script[1]


def test_the_timers_look_changes_only_when_the_page_would(server: AdminServer) -> None:
    """Every 3 s an open page asks only for a mark (one small answer); the refresh, with its
    eight outputs, runs when the mark moves: here, a job file changed."""
    session = login(server, "alice")

    def mark(selected: str | None) -> str:
        event, payload = call(session, server, "refresh_mark", [selected, ""], page="marked-page")
        assert event == "complete", payload
        return str(payload[0])

    quiet = mark("hello")
    assert mark("hello") == quiet
    assert mark(None) == quiet, "nothing shown depends on a selected job that is idle"
    write_job(server.jobs, "hello", schedule="0 9 * * *")
    assert mark("hello") != quiet


def test_the_diagram_is_drawn_only_while_its_tab_shows(server: AdminServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 3: the refresh neither draws nor sends the lifecycle diagram while another tab
    shows (a skip: the browser keeps what it has); on the Lifecycle tab it sends the SVG with
    the selected job's state."""
    import jobfsm.admin.events
    from jobfsm.admin.diagram import diagram_html
    from jobfsm.admin.layout import LIFECYCLE_TAB, TABS

    drawn: list[object] = []

    def drawing(state: object) -> str:
        drawn.append(state)
        return diagram_html(state)  # type: ignore[arg-type]

    monkeypatch.setattr(jobfsm.admin.events, "diagram_html", drawing)
    session = login(server, "alice")
    for tab in [key for key in TABS if key != LIFECYCLE_TAB]:
        event, payload = call(session, server, "dashboard", ["hello", tab], page=f"on-{tab}")
        assert event == "complete", payload
        assert skipped(payload[3]), (tab, payload[3])
    assert drawn == []
    event, payload = call(session, server, "dashboard", ["hello", LIFECYCLE_TAB], page="on-lifecycle")
    assert event == "complete", payload
    state = server.service.job_list().state_of("hello").value
    assert "<svg" in str(value(payload[3])) and f'data-state="{state}"' in str(value(payload[3]))
    assert [str(getattr(shown, "value", shown)) for shown in drawn] == [state]


def test_a_selection_sends_the_history_or_the_logs_only_where_their_tab_shows(server: AdminServer) -> None:
    """Selecting a job loads the form, then only the view whose tab shows (the others load when
    their tab opens): on the Logs tab, its output and link; on History, its runs; elsewhere,
    nothing (skips), so a job with big output costs the Edit tab nothing."""
    from jobfsm.admin.layout import HISTORY_TAB, LOGS_TAB, TABS

    session = login(server, "alice")
    filters = ["", "", "", "", ""]  # history: status, since, until; logs: search, status
    for tab in [key for key in TABS if key not in (HISTORY_TAB, LOGS_TAB)]:
        event, payload = call(session, server, "shown_views", ["hello", tab, *filters])
        assert event == "complete", payload
        assert all(skipped(item) for item in payload), (tab, payload)
    event, payload = call(session, server, "shown_views", ["hello", HISTORY_TAB, *filters])
    assert event == "complete", payload
    assert "runs of 'hello'" in str(value(payload[2])) and all(skipped(item) for item in payload[3:])
    event, payload = call(session, server, "shown_views", ["hello", LOGS_TAB, *filters])
    assert event == "complete", payload
    assert all(skipped(item) for item in payload[:3])
    assert payload[4]["link"] == "/jobfsm/output/hello.txt"


def test_the_selected_jobs_views_are_answered_in_the_order_asked(server: AdminServer) -> None:
    """Opening the Logs tab loads the logs; a search clicked right after must not be overwritten
    by that answer arriving later (a slow search of the whole files took the opened tab's place
    in the browser test): every event that fills the history or the logs shares one queue, served
    one at a time in the order asked."""
    ids = {"jobfsm-logs", "jobfsm-history-note"}
    fns = [f for f in _gradio_blocks(server).fns.values()  # type: ignore[attr-defined]
           if ids & {getattr(o, "elem_id", None) for o in f.outputs}]
    assert len(fns) >= 6  # two tabs opening, the selection, the filter, Show and the search's Enter
    assert {(f.concurrency_id, f.concurrency_limit) for f in fns} == {("jobfsm-selected-job-views", 1)}


def test_markup_in_job_data_comes_back_as_plain_text(server: AdminServer) -> None:
    session = login(server, "alice")
    event, payload = call(session, server, "do_trigger", ["xss", "", ""])
    assert event == "complete", payload
    run_id = int(value(payload[0]).split("(run ")[1].split(")")[0])
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
    assert value(payload[0]) == "✓ Saved 'vault'."
    saved = json.loads((server.jobs / "vault.json").read_text())
    assert saved["env"] == {"VAULT_TOKEN": "s3cr3t", "LANG": "C"} and saved["description"] == "unsealed"


# -- issue 13 --------------------------------------------------------------------------------

STATUS = -1
"""The Result box is the last output of select, and the first of the actions."""


def select(session: requests.Session, server: AdminServer, name: str) -> tuple[dict[str, object], str, list[object]]:
    event, payload = call(session, server, "select", [name])
    assert event == "complete", payload
    shown = [value(v) for v in payload]
    return dict(zip(FORM.keys, shown, strict=False)), str(shown[2 * len(FORM.keys) + 1]), shown


def test_the_pages_own_enable_and_disable_move_the_forms_version_on(server: AdminServer) -> None:
    """Defect 1: select, Disable, Enable, then Delete and Save with what the page holds."""
    write_job(server.jobs, "toggle")
    session = login(server, "alice")
    values, version, _ = select(session, server, "toggle")
    for api in ("do_disable", "do_enable"):
        event, payload = call(session, server, api, ["toggle", "edit", "toggle"])
        assert event == "complete", payload
        assert value(payload[1]) != version  # the hidden version field follows the file
        version = str(value(payload[1]))
    values["enabled"] = value(payload[2])
    values["description"] = "still mine"
    event, payload = call(session, server, "save_form", ["edit", version, *values.values()])
    assert value(payload[0]) == "✓ Saved 'toggle'.", payload
    version = str(value(payload[len(FORM.keys) + 3]))
    event, payload = call(session, server, "do_delete", ["toggle", "toggle", version])
    assert event == "complete", payload
    assert value(payload[0]) == "✓ Deleted 'toggle'."
    assert not (server.jobs / "toggle.json").exists()
    assert not [e for e in server.service.list_audit(job="toggle") if e.outcome == "denied"]


def test_a_real_conflict_says_who_changed_the_job(server: AdminServer) -> None:
    write_job(server.jobs, "contested")
    session = login(server, "alice")
    _, version, _ = select(session, server, "contested")
    server.service.disable_job("contested", "bob")
    _, payload = call(session, server, "do_delete", ["contested", "contested", version])
    message = str(value(payload[0]))
    assert message.startswith("✗ Not deleted: job 'contested' was changed since you opened it: user 'bob' changed it")
    assert "Not saved" not in message


def test_an_invalid_file_opens_in_the_raw_editor_with_its_problems(server: AdminServer) -> None:
    """Defect 6: its text (secrets masked) in the raw editor, its problems listed above it."""
    text = '{"name": "broken", "schedule": "61 * * * *", "env": {"API_TOKEN": "t0ps3cret"}, "command": "true",\n'
    (server.jobs / "broken.json").write_text(text, encoding="utf-8")
    session = login(server, "alice")
    _, _, shown = select(session, server, "broken")
    raw, note, message = shown[-3], shown[-2], shown[-1]
    assert str(raw).rstrip() == text.replace("t0ps3cret", "••••••").rstrip()
    assert "t0ps3cret" not in json.dumps(shown)
    assert str(note).startswith("Problems of this file:") and "$" in str(note)
    assert "Raw JSON tab" in str(message)
    fixed = json.dumps({"name": "broken", "schedule": "1 * * * *", "command": "true", "working_directory": "/",
                        "enabled": False})
    _, payload = call(session, server, "save_raw", ["edit", "broken", shown[2 * len(FORM.keys) + 1], fixed])
    assert value(payload[0]) == "✓ Saved 'broken'.", payload
    assert server.service.get_job("broken").valid


def _temp_entries() -> set[str]:
    import tempfile
    from pathlib import Path

    roots = [Path(tempfile.gettempdir()), Path(tempfile.gettempdir()) / "gradio"]
    return {str(p) for root in roots if root.exists() for p in root.iterdir()}


def _holds_output(entry: str) -> bool:
    """Whether the new temporary file or folder ``entry`` holds a copy of the job's output."""
    from pathlib import Path

    path = Path(entry)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    for file in files:
        try:
            with file.open("rb") as f:
                if f.read(6) == b"FIRST\n":
                    return True
        except OSError:
            continue
    return False


def test_big_output_is_shown_bounded_and_downloaded_whole_without_temporary_files(server: AdminServer) -> None:
    """Defect 2: the view holds the stored head and tail; the link streams every byte; the
    page writes no temporary file for it."""
    write_job(server.jobs, "loud", command="echo FIRST; yes 0123456789 | head -c 2000000; echo LAST")
    for _ in range(3):
        server.service.wait_for_run(server.service.trigger_job("loud", "alice"), timeout=120)
    session = login(server, "victor")  # viewers may read logs
    before = _temp_entries()
    event, payload = call(session, server, "logs", ["loud", "", ""])
    assert event == "complete", payload
    text, link = payload[0], payload[1]["link"]
    assert len(text) < 250_000 and text.count("FIRST") == 3 and text.count("LAST") == 3
    assert link == "/jobfsm/output/loud.txt"
    response = session.get(server.url + link, timeout=60, stream=True)
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    body = response.content
    assert body.count(b"0123456789") >= 3 * 180_000 and body.count(b"LAST") == 3
    # Other processes (the suite's other workers) make temporary folders too: only one that
    # holds this job's output counts.
    assert not [p for p in _temp_entries() - before if _holds_output(p)], "a temporary copy of the output"
    assert requests.get(server.url + link, timeout=30).status_code == 401  # no session, no output


@pytest.mark.parametrize("user", ["victor", "alice"], ids=["viewer", "admin"])
def test_uploads_are_capped_for_every_user(server: AdminServer, user: str) -> None:
    from jobfsm.admin.section import MAX_UPLOAD_BYTES

    session = login(server, user)
    big = {"files": ("big.bin", b"x" * (MAX_UPLOAD_BYTES + 1), "application/octet-stream")}
    response = session.post(server.url + "/gradio_api/upload", files=big, timeout=60)
    assert response.status_code == 413, response.text
    small = {"files": ("small.bin", b"x" * 16, "application/octet-stream")}
    response = session.post(server.url + "/gradio_api/upload", files=small, timeout=60)
    assert response.status_code == 200, response.text  # the cap, not a refusal of every upload


def test_a_job_name_in_an_error_comes_back_as_text(server: AdminServer) -> None:
    """Defect 7: a file name with markup, selected: the refusal is an answer, not a pop-up; its
    message names the file as typed, in the Result box (a Textbox: text), marked as a failure."""
    name = "<img src=x onerror=alert(7)>"
    (server.jobs / f"{name}.json").write_text("{}", encoding="utf-8")
    try:
        session = login(server, "alice")
        event, payload = call(session, server, "select", [name])
        assert event == "complete", payload
        status = payload[STATUS]
        assert str(value(status)).startswith("✗ ") and name in str(value(status)), status
        assert "jobfsm-failed" in status["elem_classes"]
    finally:
        (server.jobs / f"{name}.json").unlink()


def _gradio_blocks(server: AdminServer) -> object:
    gradio_app = next(r.app for r in server.app.routes if getattr(r, "path", None) == "" and hasattr(r, "app"))
    return gradio_app.get_blocks()


def test_every_event_of_the_page_goes_through_as_text(server: AdminServer) -> None:
    """Defect 7, the rule in one place: every Python function the page's events call (the
    section's, run control's, the Nodes view's) is wrapped by ``events.as_text``."""
    fns = [block_fn for block_fn in _gradio_blocks(server).fns.values() if block_fn.fn is not None]  # type: ignore[attr-defined]
    assert len(fns) > 30
    bare = sorted({block_fn.name for block_fn in fns if not getattr(block_fn.fn, "__jobfsm_as_text__", False)})
    assert bare == []


MESSAGE = "store says <img src=x onerror=alert(1)>"
BROKEN = [
    ("do_kill", ["hello"], "service.kill_run"),
    ("do_pause", ["hello", "", "a reason"], "service.pause_job"),
    ("do_resume", ["hello"], "service.resume_job"),
    ("live_output", ["hello"], "control.live_output"),
    ("paused_jobs", [], "control.active_pauses"),
    ("control_setup", [], "control.active_pauses"),
    ("nodes_table", [], "service.nodes"),
]
"""Run control's and the Nodes view's events, and what to break under each (the service's
method, or a function of ``jobfsm.service.control``)."""


@pytest.mark.parametrize(("api", "data", "broken"), BROKEN, ids=[b[0] for b in BROKEN])
def test_an_unexpected_error_comes_back_as_text(
    server: AdminServer, monkeypatch: pytest.MonkeyPatch, api: str, data: list[object], broken: str
) -> None:
    """Defect 7: an exception that is no refusal (a bug, a store gone wrong) whose message holds
    markup reaches Gradio's pop-up (which renders HTML) escaped: the user reads the markup."""
    import html

    import jobfsm.service.control

    def fail(*args: object, **kwargs: object) -> object:
        raise RuntimeError(MESSAGE)

    owner, attr = broken.split(".")
    monkeypatch.setattr(server.service if owner == "service" else jobfsm.service.control, attr, fail)
    session = login(server, "alice")
    event, payload = call(session, server, api, data)
    assert event == "error", payload
    assert payload["error"] == html.escape(MESSAGE), payload


def test_a_viewer_gets_no_audit_tab_and_a_read_only_definition(server: AdminServer) -> None:
    """Defect 8: the Audit tab is hidden for viewers (no error, no denied entry on each click)
    and the raw editor shows the definition, read only."""
    write_job(server.jobs, "shown", env={"DB_PASSWORD": "hunter2"})
    session = login(server, "victor")
    event, payload = call(session, server, "setup", [])
    assert event == "complete", payload
    who, raw, audit_tab = payload[0], payload[1], payload[2]
    assert "viewer" in str(who)
    assert raw["interactive"] is False and audit_tab["visible"] is False
    _, _, shown = select(session, server, "shown")
    raw_text = str(shown[2 * len(FORM.keys) + 3])
    assert '"DB_PASSWORD": "••••••"' in raw_text and "hunter2" not in raw_text
