"""The admin page's run control: over raw HTTP (a viewer's direct call to each new action is
refused and audited) and in a real browser (Stop run, Pause…/Resume, the live output growing
without a reload). A real uvicorn server over a real service and SQLite file; no daemon, so the
runs are the service's own (as on a host without one), and a kill reaches them the same way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobfsm.model import Outcome, RunStatus
from tests.admin_support import AdminServer, admin_server, call, login, write_job
from tests.conftest import wait_for
from tests.test_admin_browser import CHROMIUM, choose, field, row_text, shot, sign_in, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    root = tmp_path_factory.mktemp("admin-control")
    with admin_server(root, session_ttl=600) as srv:
        write_job(srv.jobs, "hello")
        write_job(srv.jobs, "chatty", schedule="0 0 1 1 *",
                  command="i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.3; done")
        try:
            yield srv
        finally:  # a test that failed half way must not leave the endless job for the close to wait on
            if srv.service.store.list_runs("chatty", status=RunStatus.RUNNING):
                srv.service.kill_run("chatty", "tests")


MUTATING = [
    ("do_kill", ["hello"], "kill"),
    ("do_pause", ["hello", "", "viewer wants a break"], "pause"),
    ("do_resume", ["hello"], "resume"),
]


@pytest.mark.parametrize(("api", "data", "action"), MUTATING, ids=[m[2] for m in MUTATING])
def test_a_viewers_direct_call_is_refused_and_audited(server: AdminServer, api: str, data: list[object], action: str) -> None:
    server.app.state.jobfsm_limiter.clear()
    session = login(server, "victor")  # the sign-in is audited too: count after it
    before = len(server.service.list_audit())
    event, payload = call(session, server, api, data)
    assert event == "error", payload
    assert "may not" in payload["error"]
    assert server.service.get_pause("hello") is None
    entries = server.service.list_audit()
    assert len(entries) == before + 1
    assert (entries[0].user, entries[0].action, entries[0].job, entries[0].outcome) == ("victor", action, "hello", "denied")


def test_an_admin_pauses_and_resumes_over_http(server: AdminServer) -> None:
    server.app.state.jobfsm_limiter.clear()
    session = login(server, "alice")
    event, payload = call(session, server, "do_pause", ["hello", "2099-01-01T00:00", "<b>maintenance</b>"])
    assert event == "complete", payload
    assert payload[0]["value"].startswith("✓ Paused 'hello' 2099-01-01 00:00:00+00:00")
    pause = server.service.get_pause("hello")
    assert pause is not None and pause.reason == "<b>maintenance</b>" and pause.user == "alice"
    event, payload = call(session, server, "do_pause", ["hello", "next tuesday", ""])
    assert event == "complete" and "is not an ISO 8601 time" in payload[0]["value"]
    event, payload = call(session, server, "do_resume", ["hello"])
    assert event == "complete" and payload[0]["value"] == "✓ Resumed 'hello'."
    actions = [(e.user, e.action, e.outcome) for e in server.service.list_audit(job="hello")[:2]]
    assert actions == [("alice", "resume", "allowed"), ("alice", "pause", "allowed")]


CONTROL_RESULTS = [
    ("do_pause", ["hello", "2099-01-01T00:00", ""], True, "Paused 'hello'"),
    ("do_resume", ["hello"], True, "Resumed 'hello'."),
    ("do_resume", ["hello"], True, "'hello' was not paused."),
    ("do_pause", ["hello", "next tuesday", ""], False, "is not an ISO 8601 time"),
    ("do_kill", ["hello"], False, "has no run in progress"),
    ("do_kill", [""], False, "Select a job first."),
    ("do_resume", ["no-such-job"], False, "no-such-job"),
]


def test_the_run_control_box_looks_like_the_result_box(server: AdminServer) -> None:
    """Issue 13 (success and error looked the same): the "Run control" box marks what worked
    ✓ with the Result box's green edge, and a refusal or failure ✗ with its red one."""
    from jobfsm.admin.layout import STATUS_CLASSES

    server.app.state.jobfsm_limiter.clear()
    session = login(server, "alice")
    for api, data, ok, words in CONTROL_RESULTS:
        event, payload = call(session, server, api, data)
        assert event == "complete", (api, data, payload)
        box = payload[0]
        assert box["value"].startswith("✓ " if ok else "✗ ") and words in box["value"], (api, data, box)
        assert box["elem_classes"] == STATUS_CLASSES[ok], (api, data, box)


def test_the_live_outputs_timer_runs_only_while_the_selected_job_runs(server: AdminServer) -> None:
    """An open page does not ask for live output every second while there is none: the
    section's refresh turns the live timer on when the selected job starts, off once it ended."""
    server.app.state.jobfsm_limiter.clear()
    session = login(server, "alice")

    def live_timer(page: str) -> object:
        event, payload = call(session, server, "dashboard", ["chatty", ""], page=page)
        assert event == "complete", payload
        return payload[5]  # after the counts, table, choices, diagram and the paused jobs

    assert live_timer("idle-page") == {"__type__": "update", "active": False}
    assert live_timer("idle-page") in (None, {"__type__": "update"}), "already off: nothing to send"
    event, payload = call(session, server, "do_trigger", ["chatty", "", ""])
    assert event == "complete", payload
    run = wait_for(lambda: next(iter(server.service.store.list_runs("chatty", status=RunStatus.RUNNING)), None),
                   10, "the run to start")
    wait_for(lambda: live_timer("idle-page") == {"__type__": "update", "active": True}, 10, "the timer to turn on")
    event, payload = call(session, server, "do_kill", ["chatty"])
    assert event == "complete", payload
    wait_for(lambda: server.service.store.get_run(run.id).status is not RunStatus.RUNNING, 30, "the run to end")
    event, payload = call(session, server, "live_output", ["chatty"], page="idle-page")
    assert event == "complete" and "ended: failed" in payload[0]
    assert payload[2] == {"__type__": "update", "active": False}


@pytest.mark.browser
def test_stop_pause_and_live_output_in_the_browser(server: AdminServer) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from tests.test_admin_browser import ARGS

    server.app.state.jobfsm_limiter.clear()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = sign_in(browser, server, "alice")
        choose(page, "jobfsm-job", "chatty")
        page.click("#jobfsm-trigger")
        wait_until(lambda: "Triggered 'chatty'" in field(page, "jobfsm-status").input_value(), "the trigger")
        run = wait_for(lambda: next(iter(server.service.store.list_runs("chatty", status=RunStatus.RUNNING)), None),
                       10, "the run to start")
        live = field(page, "jobfsm-live-output")
        head = field(page, "jobfsm-live-run")
        # the box showed the job's last run when it was selected; it follows the new one
        wait_until(lambda: f"Run {run.id} of 'chatty' (running" in head.input_value(),  # type: ignore[attr-defined]
                   "the live output to follow the new run")
        wait_until(lambda: "tick-2" in live.input_value(), "the live output to show the run")
        font = page.locator("#jobfsm-live-output textarea").evaluate("t => getComputedStyle(t).fontFamily")
        assert "mono" in font.lower(), font  # output in a monospace font, as on the Logs tab
        seen = live.input_value().count("tick-")
        wait_until(lambda: live.input_value().count("tick-") >= seen + 3, "the live output to grow, no reload")
        shot(page, "control-01-live-output")

        # -- Stop run: the browser asks first; the run ends killed, naming alice
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#jobfsm-kill")
        status = field(page, "jobfsm-control-status")
        wait_until(lambda: "killed by alice" in status.input_value(), "the kill", timeout=30)
        assert status.input_value().startswith("✓ ")  # type: ignore[attr-defined]
        assert "jobfsm-ok" in (page.locator("#jobfsm-control-status").get_attribute("class") or "")
        ended = server.service.store.get_run(run.id)  # type: ignore[attr-defined]
        assert (ended.status, ended.outcome) == (RunStatus.FAILED, Outcome.KILLED)
        wait_until(lambda: "ended: failed" in head.input_value(), "the live output to show the end")
        shot(page, "control-02-stopped")

        # -- Pause… with an end and a reason: shown in the paused table; Resume empties it
        page.click("#jobfsm-pause-open")
        field(page, "jobfsm-pause-until").fill("next tuesday")  # refused: marked as a failure
        page.click("#jobfsm-pause")
        wait_until(lambda: "is not an ISO 8601 time" in status.input_value(), "the refusal")
        assert status.input_value().startswith("✗ ")  # type: ignore[attr-defined]
        wait_until(lambda: "jobfsm-failed" in (page.locator("#jobfsm-control-status").get_attribute("class") or ""),
                   "the Run control box to look like a failure")
        shot(page, "control-03-refused")
        field(page, "jobfsm-pause-until").fill("2099-06-01T12:00")
        field(page, "jobfsm-pause-reason").fill("<img src=x onerror=alert(1)> rack move")
        page.click("#jobfsm-pause")
        wait_until(lambda: "Paused 'chatty'" in status.input_value(), "the pause")
        paused = page.locator("#jobfsm-paused")
        wait_until(lambda: "rack move" in paused.inner_text() and "2099-06-01 12:00:00+00:00" in paused.inner_text(),
                   "the paused table to show the reason and the end")
        assert page.locator("img[src='x']").count() == 0  # the reason shows as text
        wait_until(lambda: "killed" in row_text(page, "chatty"), "the table to show the kill")  # for the screenshot
        shot(page, "control-03-paused")
        page.click("#jobfsm-trigger")  # a trigger while paused is recorded as skipped, saying why
        wait_until(lambda: any(r.status is RunStatus.SKIPPED and "rack move" in r.message
                               for r in server.service.store.list_runs("chatty")), "the skipped trigger")
        page.click("#jobfsm-resume")
        wait_until(lambda: "Resumed 'chatty'." in status.input_value(), "the resume")
        wait_until(lambda: "rack move" not in paused.inner_text(), "the paused table to empty")
        assert server.service.get_pause("chatty") is None
        actions = {e.action for e in server.service.list_audit(user="alice", job="chatty")}
        assert {"trigger", "kill", "pause", "resume"} <= actions

        # -- a viewer sees the paused jobs and the output, not the buttons
        viewer = sign_in(browser, server, "victor")
        viewer.locator("#jobfsm-paused").wait_for()
        for element in ("#jobfsm-kill", "#jobfsm-pause-open", "#jobfsm-resume", "#jobfsm-pause"):
            assert not viewer.locator(element).is_visible(), element
        browser.close()
