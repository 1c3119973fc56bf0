"""The admin page in a real browser: Debian's Chromium driven by Playwright.

Never downloads a browser: it launches ``/usr/bin/chromium`` (``apt-get install chromium``) and
skips when it is missing. Screenshots of the main screens go to ``test-output/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.admin_support import PASSWORDS, AdminServer, admin_server, write_job
from tests.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
XSS = "<img src=x onerror=alert(1)>"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    root = tmp_path_factory.mktemp("admin-browser")
    with admin_server(root) as srv:
        write_job(srv.jobs, "backup", description="Archive the data", schedule="30 2 * * *",
                  timezone="Europe/Berlin", command="echo archived")
        write_job(srv.jobs, "report", enabled=False, schedule="0 9 * * mon-fri")
        write_job(srv.jobs, "xss", description=XSS, command=f"printf '%s\\n' '{XSS}'")
        yield srv


@pytest.fixture(scope="module")
def browser(server: AdminServer) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def sign_in(browser: object, server: AdminServer, user: str) -> object:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url + "/")
    assert "/login" in page.url  # no session: the sign-in page
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_selector("#jobfsm-jobs")
    page.get_by_text(f"Signed in as {user}").wait_for()
    return page


def shot(page: object, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0, page: object = None) -> None:
    detail = (lambda: f"status box: {status_text(page)!r}") if page is not None else None
    wait_for(check, timeout, what, detail)


def row_text(page: object, name: str) -> str:
    """The cells of the table row whose first cell is ``name``, joined by tabs ("" if none)."""
    rows = page.locator("#jobfsm-jobs .virtual-row")  # type: ignore[attr-defined]
    for i in range(rows.count()):
        cells = rows.nth(i).locator("[role=gridcell]").all_inner_texts()
        if cells and cells[0].strip() == name:
            return "\t".join(c.strip() for c in cells)
    return ""


def choose(page: object, elem_id: str, text: str) -> None:
    """Pick ``text`` in a Gradio dropdown the way a person does with the keyboard."""
    box = field(page, elem_id)
    box.click()  # type: ignore[attr-defined]
    box.fill(text)  # type: ignore[attr-defined]
    page.get_by_role("option", name=text, exact=True).first.click()  # type: ignore[attr-defined]


def select_job(page: object, name: str, *, form: bool = True) -> None:
    """Pick the job; with ``form``, wait until the edit form shows it."""
    if form:
        open_tab(page, "Edit")
    choose(page, "jobfsm-job", name)
    if form:
        wait_until(lambda: field(page, "jobfsm-field-name").input_value() == name, f"{name} to load")  # type: ignore[attr-defined]


def field(page: object, elem_id: str) -> object:
    """The text input of a Gradio component (a textarea or an input, depending on the kind)."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first  # type: ignore[attr-defined]


def open_tab(page: object, title: str) -> None:
    page.get_by_role("tab", name=title).click()  # type: ignore[attr-defined]


def status_text(page: object) -> str:
    return str(field(page, "jobfsm-status").input_value())  # type: ignore[attr-defined]


def test_admin_walkthrough(browser: object, server: AdminServer) -> None:
    page = sign_in(browser, server, "alice")
    wait_until(lambda: "backup" in row_text(page, "backup"), "the table to list the jobs")
    assert "idle" in row_text(page, "backup")
    assert "disabled" in row_text(page, "report")
    page.get_by_text("Lifecycle").first.wait_for()
    dashboard = shot(page, "01-dashboard")
    if os.environ.get("JOBFSM_UPDATE_DOCS_SCREENSHOT"):  # refresh the README's picture on purpose only
        shutil.copyfile(dashboard, Path(__file__).resolve().parent.parent / "docs" / "dashboard.png")

    # -- create with a bad cron: the error shows at the field, as you type and on save
    open_tab(page, "Edit")
    name = field(page, "jobfsm-field-name")
    name.fill("left-over")  # type: ignore[attr-defined]
    page.click("#jobfsm-new")
    # New job answers asynchronously with an empty form: typing before that answer arrives
    # would be wiped by it (a CI run lost the name that way), so wait for it, as a person sees it
    wait_until(lambda: name.input_value() == "", "New job to clear the form", page=page)  # type: ignore[attr-defined]
    name.fill("nightly")  # type: ignore[attr-defined]
    page.locator("#jobfsm-field-enabled input").check()
    field(page, "jobfsm-field-schedule").fill("61 * * * *")
    field(page, "jobfsm-field-command").fill("sleep 2; echo done-marker")
    error = field(page, "jobfsm-error-schedule")
    wait_until(lambda: "minute" in error.input_value(), "the cron error at the field")
    page.click("#jobfsm-save")
    wait_until(lambda: "Not saved" in status_text(page), "the refusal")
    assert not (server.jobs / "nightly.json").exists()
    shot(page, "02-create-bad-cron")

    # -- fix it: the helper shows words and the next fire times
    field(page, "jobfsm-field-schedule").fill("*/5 * * * *")
    helper = field(page, "jobfsm-cron-help")
    wait_until(lambda: "Next fire times" in helper.input_value(), "the cron helper")
    page.click("#jobfsm-save")
    wait_until(lambda: "Created 'nightly'" in status_text(page), "the job to be created")
    assert (server.jobs / "nightly.json").exists()
    wait_until(lambda: "nightly" in row_text(page, "nightly"), "the new row")
    shot(page, "03-created")

    # -- trigger: the row goes running, then succeeded, with no reload
    page.click("#jobfsm-trigger")
    wait_until(lambda: "Triggered 'nightly'" in status_text(page), "the trigger", page=page)
    wait_until(lambda: "running" in row_text(page, "nightly"), "the row to show running", timeout=10)
    shot(page, "04-running")
    wait_until(lambda: "succeeded" in row_text(page, "nightly"), "the row to show succeeded")
    shot(page, "05-succeeded")

    # -- history with a status filter
    open_tab(page, "History")
    choose(page, "jobfsm-history-status", "succeeded")
    page.click("#jobfsm-history-filter")
    note = field(page, "jobfsm-history-note")
    wait_until(lambda: "1 runs of 'nightly' with status succeeded" in note.input_value(), "the filtered history")
    choose(page, "jobfsm-history-status", "failed")
    page.click("#jobfsm-history-filter")
    wait_until(lambda: "0 runs of 'nightly' with status failed" in note.input_value(), "the empty history")
    shot(page, "06-history")

    # -- logs: search and download
    open_tab(page, "Logs")
    field(page, "jobfsm-logs-search").fill("done-marker")
    page.click("#jobfsm-logs-show")
    logs = field(page, "jobfsm-logs")
    wait_until(lambda: "done-marker" in logs.input_value(), "the matching output")
    with page.expect_download() as download_info:
        page.click("#jobfsm-logs-download")
    downloaded = Path(download_info.value.path())
    assert "done-marker" in downloaded.read_text()
    shot(page, "07-logs")

    # -- delete: refused confirmation keeps the job; accepted removes it
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#jobfsm-delete")
    page.wait_for_timeout(1500)  # give a (wrong) request time to land: nothing may reach the server
    assert (server.jobs / "nightly.json").exists()
    assert "Deleted" not in status_text(page)
    assert not [e for e in server.service.list_audit(job="nightly") if e.action == "delete"]
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#jobfsm-delete")
    wait_until(lambda: "Deleted 'nightly'" in status_text(page), "the deletion")
    assert not (server.jobs / "nightly.json").exists()
    wait_until(lambda: row_text(page, "nightly") == "", "the row to go")

    # -- markup in a job's description and output shows as text
    select_job(page, "xss")
    assert field(page, "jobfsm-field-description").input_value() == XSS
    page.click("#jobfsm-trigger")
    wait_until(lambda: "succeeded" in row_text(page, "xss"), "the xss job to run")
    open_tab(page, "Logs")
    field(page, "jobfsm-logs-search").fill("")
    page.click("#jobfsm-logs-show")
    wait_until(lambda: XSS in field(page, "jobfsm-logs").input_value(), "the output as text")
    assert page.locator("img[src='x']").count() == 0
    page.context.close()


def test_viewer_finds_no_way_to_change_anything(browser: object, server: AdminServer) -> None:
    page = sign_in(browser, server, "victor")
    wait_until(lambda: "backup" in row_text(page, "backup"), "the table")
    page.get_by_text("viewer: read only").wait_for()
    for element in ("#jobfsm-enable", "#jobfsm-disable", "#jobfsm-trigger", "#jobfsm-delete", "#jobfsm-new", "#jobfsm-save"):
        assert not page.locator(element).is_visible(), element
    shot(page, "08-viewer-dashboard")
    for tab in ("Edit", "Raw JSON", "Audit"):
        open_tab(page, tab)
        page.get_by_text("Read only: this part needs the admin role.").locator("visible=true").first.wait_for()
        for element in ("#jobfsm-save", "#jobfsm-save-raw", "#jobfsm-field-name", "#jobfsm-raw", "#jobfsm-audit"):
            assert not page.locator(element).is_visible(), (tab, element)
    open_tab(page, "History")
    select_job(page, "backup", form=False)
    shot(page, "08-viewer")
    page.context.close()
