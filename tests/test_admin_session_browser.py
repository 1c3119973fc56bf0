"""Sign-in hardening as a browser sees it (Debian's Chromium driven by Playwright): the page works
under its Content-Security-Policy, a page on another port cannot read the app with the user's
cookie, and a page whose session ended goes to the sign-in page once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.admin_support import AdminServer, admin_server, free_port, write_job
from tests.test_admin_browser import (
    ARGS,
    CHROMIUM,
    choose,
    field,
    open_tab,
    row_text,
    select_job,
    shot,
    sign_in,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WATCH_POLICY = """
window.__jobfsm_csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__jobfsm_csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sample || ""));
});
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    root = tmp_path_factory.mktemp("admin-session-browser")
    with admin_server(root) as srv:
        write_job(srv.jobs, "backup", description="Archive the data", schedule="30 2 * * *", command="echo archived")
        write_job(srv.jobs, "broken", command="echo about to fail; exit 3")
        yield srv


@pytest.fixture(scope="module")
def browser(server: AdminServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def violations(page: Any) -> list[str]:
    return list(page.evaluate("window.__jobfsm_csp || []"))


def test_the_page_works_under_its_content_security_policy(browser: Any, server: AdminServer) -> None:
    page = sign_in(browser, server, "alice")
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.context.add_init_script(WATCH_POLICY)
    page.reload()
    page.wait_for_selector("#jobfsm-jobs")
    assert "content-security-policy" in (page.context.request.get(server.url + "/").headers)
    wait_until(lambda: "backup" in row_text(page, "backup"), "the table under the policy")
    # every part that runs script: the diagram, the form, a trigger, history, logs, the delete dialog
    select_job(page, "broken")
    page.click("#jobfsm-trigger")
    wait_until(lambda: "failed" in row_text(page, "broken"), "the failed run to show")
    for tab in ("Lifecycle", "History", "Logs", "Raw JSON", "Audit", "Edit"):
        open_tab(page, tab)
        page.wait_for_timeout(300)
    open_tab(page, "Lifecycle")
    page.locator("#jobfsm-section svg").first.wait_for()  # the diagram is drawn
    open_tab(page, "History")
    choose(page, "jobfsm-history-status", "failed")
    page.click("#jobfsm-history-filter")
    note = field(page, "jobfsm-history-note")
    wait_until(lambda: "1 runs of 'broken' with status failed" in note.input_value(), "the filtered history")  # type: ignore[attr-defined]
    shot(page, "20-under-csp")
    page.once("dialog", lambda dialog: dialog.dismiss())  # a js= handler: runs through Function()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    page.click("#jobfsm-delete")
    wait_until(lambda: dialogs, "the delete confirmation (a js= handler) to run")
    assert violations(page) == []
    assert [m for m in console if "Content Security Policy" in m] == []
    page.context.close()


class _OtherOrigin(BaseHTTPRequestHandler):
    """A page on another port of the same host that tries to read the admin app's /config."""

    target = ""

    def do_GET(self) -> None:
        body = f"""<!doctype html><title>other port</title><pre id=out>waiting</pre><script>
fetch({self.target!r} + "/config", {{credentials: "include"}})
  .then(r => r.text()).then(t => {{ document.getElementById("out").textContent = "READ " + t.slice(0, 200); }})
  .catch(e => {{ document.getElementById("out").textContent = "BLOCKED " + e; }});
</script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_page_on_another_port_cannot_read_the_app_with_the_cookie(browser: Any, server: AdminServer) -> None:
    page = sign_in(browser, server, "alice")  # the cookie is in this browser
    handler = type("Handler", (_OtherOrigin,), {"target": server.url})
    other = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        attacker = page.context.new_page()
        attacker.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        out = attacker.locator("#out")
        wait_until(lambda: out.inner_text() != "waiting", "the other page's fetch to end")
        assert out.inner_text().startswith("BLOCKED"), out.inner_text()
    finally:
        other.shutdown()
        other.server_close()
    page.context.close()


def test_a_page_whose_session_ended_goes_to_sign_in_once(browser: Any, server: AdminServer) -> None:
    page = sign_in(browser, server, "alice")
    wait_until(lambda: "backup" in row_text(page, "backup"), "the table")
    arrivals: list[str] = []
    page.on("framenavigated", lambda frame: arrivals.append(frame.url) if frame == page.main_frame else None)
    other_tab = page.context.new_page()
    other_tab.goto(server.url + "/logout")  # sign out in another tab
    assert "/login" in other_tab.url
    page.wait_for_url("**/login?ended=1*", timeout=30_000)  # the first tab follows by itself
    page.get_by_text("Your session has ended; sign in again.").wait_for()
    page.wait_for_timeout(7000)  # two more refresh periods: nothing more may happen
    assert len([u for u in arrivals if "/login" in u]) == 1, arrivals
    assert page.locator(".toast-body, .toast-wrap [role=alert]").count() == 0
    shot(page, "21-session-ended")
    page.fill("#username", "alice")
    page.fill("#password", "alice-pass-1")
    page.click("button[type=submit]")
    page.wait_for_selector("#jobfsm-jobs")  # back where it was
    page.context.close()
