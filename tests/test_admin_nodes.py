"""The admin page's Nodes view over real HTTP (a uvicorn server, a real SQLite store): the live
nodes, which node runs what, for admins and viewers, nothing without a session; and in a real
browser (Chromium), the view on the page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from jobfsm.model import Outcome, Trigger
from jobfsm.store import Claim, Finish
from tests.admin_support import AdminServer, admin_server, call, login, write_job
from tests.conftest import wait_for

pytestmark = pytest.mark.slow

XSS_NODE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    with admin_server(tmp_path_factory.mktemp("admin-nodes")) as srv:
        write_job(srv.jobs, "backup")
        store = srv.service.store
        now = datetime.now(UTC)
        beat(srv)
        run = store.claim_run(Claim("backup", trigger=Trigger.SCHEDULE, node="alpha:11", started_at=now, scheduled_for=now))
        assert run is not None
        done = store.claim_run(Claim("backup", trigger=Trigger.MANUAL, node="beta:22", started_at=now - timedelta(minutes=1)))
        assert done is not None
        store.finish_run(Finish(done.id, outcome=Outcome.SUCCEEDED, ended_at=now, exit_code=0, duration_seconds=1.0,
                                stdout_tail="done\n", stdout_path="/srv/elsewhere/logs/runs/backup/2.out",
                                stderr_path="/srv/elsewhere/logs/runs/backup/2.err"))
        srv.run_ids = (run.id, done.id)  # type: ignore[attr-defined]
        yield srv


def beat(server: AdminServer) -> None:
    """Heartbeats as of now: alpha and the oddly named node alive, beta dead (40 s ago)."""
    now = datetime.now(UTC)
    store = server.service.store
    store.heartbeat("alpha:11", pid=11, host="alpha", at=now)
    store.heartbeat("beta:22", pid=22, host="beta", at=now - timedelta(seconds=40))
    store.heartbeat(XSS_NODE, pid=33, host="gamma", at=now)


def _rows(payload: Any) -> dict[str, list[str]]:
    frame = payload[1]
    assert frame["headers"] == ["Node", "Host", "PID", "Started", "Last heartbeat", "Alive", "Running"]
    return {row[0]: row for row in frame["data"]}


@pytest.mark.parametrize("user", ["alice", "victor"], ids=["admin", "viewer"])
def test_the_nodes_view_shows_live_nodes_and_what_each_runs(server: AdminServer, user: str) -> None:
    running, _ = server.run_ids  # type: ignore[attr-defined]
    beat(server)
    event, payload = call(login(server, user), server, "nodes_table", [])
    assert event == "complete", payload
    rows = _rows(payload)
    assert set(rows) == {"alpha:11", "beta:22", XSS_NODE}
    assert rows["alpha:11"][1:3] == ["alpha", "11"] and rows["alpha:11"][5] == "yes"
    assert rows["alpha:11"][6].startswith(f"run {running} backup since ")
    assert rows["beta:22"][5] == "no" and rows["beta:22"][6] == ""
    assert rows[XSS_NODE][5] == "yes"  # markup in a node name comes back as the text it is
    assert payload[0] == "**Nodes**: 3 seen · 2 alive · 1 run going"


def test_without_a_session_the_nodes_view_is_closed(server: AdminServer) -> None:
    response = requests.post(f"{server.url}/gradio_api/call/nodes_table", json={"data": []}, timeout=30)
    assert response.status_code == 401


def test_history_and_logs_name_the_node_and_where_the_full_output_is(server: AdminServer) -> None:
    _, done = server.run_ids  # type: ignore[attr-defined]
    session = login(server, "victor")
    event, payload = call(session, server, "history", ["backup", "", "", ""])
    assert event == "complete", payload
    frame = payload[0]
    nodes = {row[0]: row[frame["headers"].index("Node")] for row in frame["data"]}
    assert nodes[str(done)] == "beta:22"
    event, payload = call(session, server, "logs", ["backup", "", ""])
    assert event == "complete", payload
    assert f"=== run {done} · succeeded" in payload[0] and "· node beta:22" in payload[0]
    assert ("--- the full output is on node 'beta:22' (host beta) at /srv/elsewhere/logs/runs/backup/2.out "
            "(and .err)") in payload[0]
    assert "done\n" in payload[0]


@pytest.mark.browser
def test_the_nodes_view_in_a_browser(server: AdminServer) -> None:
    from tests.test_admin_browser import ARGS, CHROMIUM, shot, sign_in

    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    running, _ = server.run_ids  # type: ignore[attr-defined]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page: Any = sign_in(browser, server, "victor")
            beat(server)
            table = page.locator("#jobfsm-nodes")
            table.scroll_into_view_if_needed()
            wait_for(lambda: "alpha:11" in table.inner_text(), 30, "the nodes table to fill",
                     lambda: table.inner_text())
            text = table.inner_text()
            assert f"run {running} backup" in text and "beta:22" in text
            assert XSS_NODE in text  # shown as text, not an image
            assert page.locator("#jobfsm-nodes img").count() == 0
            summary = page.locator("#jobfsm-nodes-summary")
            wait_for(lambda: "3 seen · 2 alive" in summary.inner_text(), 30, "the summary", summary.inner_text)
            shot(page, "nodes")
        finally:
            browser.close()
