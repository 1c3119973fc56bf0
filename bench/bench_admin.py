"""Click-to-result times of the admin page in a real browser (Debian's Chromium, Playwright).

    python bench/bench_admin.py [--rounds 5] [--jobs 26] [--big-mb 2] [--big-runs 20]

Starts the standalone admin app (uvicorn on 127.0.0.1, SQLite, job files in a fresh folder),
with ``--jobs`` small jobs and one job, ``big``, whose last ``--big-runs`` runs each printed
``--big-mb`` MB. Signs in as an admin and measures, ``--rounds`` times each, the time from the
click to what a person waits for:

- **select big (Logs tab)**: picking ``big`` in the job list until the output view shows its
  output (and the same for a small job); **select small job (Edit tab)**: until the form shows it;
- **disable / enable / trigger**: the button until the Result box says it was done;
- **save**: the Edit form's Save (a changed description) until the Result box answers;
- **delete**: Disable, then the Delete button (confirmed), until the Result box answers; the
  outcome rows count how often it was deleted (before issue 13 the page's own Disable made it a
  false conflict).

Prints a Markdown table of medians and maxima in milliseconds. Run it with ``PYTHONPATH`` set to
another checkout to measure that code with the same script.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PASSWORD = "bench-pass-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_job(jobs: Path, name: str, command: str, **extra: Any) -> None:
    doc = {"name": name, "schedule": "0 3 * * *", "command": command, "working_directory": "/tmp",
           "enabled": True, **extra}
    (jobs / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _serve(root: Path, n_jobs: int, big_mb: float, big_runs: int) -> tuple[str, Any, Any]:
    import uvicorn

    from jobfsm.admin.accounts import Accounts
    from jobfsm.admin.app import build_app
    from jobfsm.service import JobManagementService

    jobs, logs = root / "jobs", root / "logs"
    jobs.mkdir()
    logs.mkdir()
    for i in range(n_jobs):
        _write_job(jobs, f"job-{i:02d}", f"echo small-output {i}")
    size = int(big_mb * 1024 * 1024)
    _write_job(jobs, "big", f"yes 0123456789abcdef-big-output | head -c {size}")
    accounts = Accounts(logs / "users.json")
    accounts.add("bench", PASSWORD, "admin")
    service = JobManagementService(jobs, logs)
    for _ in range(big_runs):
        service.wait_for_run(service.trigger_job("big", "bench"), timeout=120)
    service.wait_for_run(service.trigger_job("job-00", "bench"), timeout=60)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(service, accounts), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/login", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    return url, server, service


def _wait(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not show the result in time")
        time.sleep(0.005)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=26)
    parser.add_argument("--big-mb", type=float, default=2.0)
    parser.add_argument("--big-runs", type=int, default=20)
    parser.add_argument("--give-up", type=float, default=120.0, help="seconds to wait for the big output")
    args = parser.parse_args(argv)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {}

    def timed(what: str, click: Callable[[], None], done: Callable[[], bool]) -> None:
        start = time.perf_counter()
        click()
        _wait(done)
        times.setdefault(what, []).append((time.perf_counter() - start) * 1000)
        print(f"{what}: {times[what][-1]:.0f} ms", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-admin-") as tmp:
        url, server, service = _serve(Path(tmp), args.jobs, args.big_mb, args.big_runs)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url + "/")
            page.fill("#username", "bench")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.get_by_text("Signed in as bench").wait_for()

            def box(elem_id: str) -> Any:
                return page.locator(f"#{elem_id} textarea, #{elem_id} input").first

            def status() -> str:
                return str(box("jobfsm-status").input_value())

            def choose(name: str) -> Any:
                job = box("jobfsm-job")
                job.click()
                job.fill(name)
                option = page.get_by_role("option", name=name, exact=True).first
                option.wait_for()
                return option

            def pick_in_logs(name: str, marker: str) -> None:
                """On the Logs tab: until the output view shows the job's output."""
                # compared in the browser: fetching a 40 MB value into Python per poll would
                # measure Playwright, not the page
                page.evaluate("() => { const t = document.querySelector('#jobfsm-logs textarea');"
                              " window.__before = t ? t.value.slice(0, 200) : ''; }")
                option = choose(name)
                js = ("([marker]) => { const t = document.querySelector('#jobfsm-logs textarea');"
                      " return !!t && t.value.slice(0, 200) !== window.__before && t.value.includes(marker); }")
                start = time.perf_counter()
                option.click()
                try:
                    page.wait_for_function(js, arg=[marker], timeout=args.give_up * 1000, polling=20)
                    took = (time.perf_counter() - start) * 1000
                except PlaywrightTimeout:
                    took = math.inf  # shown as "> give-up"; the page is reloaded for the next step
                    page.reload()
                    page.get_by_text("Signed in as bench").wait_for()
                    page.get_by_role("tab", name="Logs").click()
                times.setdefault(f"select {name} (Logs tab)", []).append(took)
                print(f"select {name}: {took:.0f} ms", file=sys.stderr, flush=True)

            def pick_in_form(name: str) -> None:
                option = choose(name)
                timed("select small job (Edit tab)", option.click,
                      lambda: box("jobfsm-field-name").input_value() == name)

            for round_no in range(args.rounds):
                page.get_by_role("tab", name="Logs").click()
                pick_in_logs("job-00", "small-output 0")
                pick_in_logs("big", "big-output")
                page.get_by_role("tab", name="Edit").click()
                pick_in_form(f"job-{round_no + 1:02d}")
                def act(kind: str, word: str) -> None:
                    before = status()
                    timed(kind, lambda: page.click(f"#jobfsm-{kind}"), lambda: status() != before and word in status())
                    page.wait_for_timeout(300)

                act("disable", "Disabled")
                act("enable", "Enabled")
                act("trigger", "Triggered")
                box("jobfsm-field-description").fill(f"round {round_no}")
                before = status()
                timed("save (form)", lambda: page.click("#jobfsm-save"),
                      lambda b=before: status() != b and ("Saved" in status() or "Not saved" in status()))
                times.setdefault("outcome: saved", []).append(1.0 if "Not saved" not in status() else 0.0)
                act("disable", "Disabled")
                page.once("dialog", lambda dialog: dialog.accept())
                timed("delete", lambda: page.click("#jobfsm-delete"),
                      lambda: "Deleted" in status() or "changed" in status())
                times.setdefault("outcome: deleted after the page's own Disable", []).append(
                    1.0 if "Deleted" in status() else 0.0)
                page.wait_for_timeout(500)
            browser.close()
        server.should_exit = True
        service.close()

    print(f"admin page, click to visible result ({args.rounds} rounds, {args.jobs} jobs, "
          f"'big': {args.big_runs} runs of {args.big_mb:g} MB; python {sys.version.split()[0]})\n")
    print("| action | median ms | max ms |")
    print("|---|---|---|")
    for what, values in times.items():
        if what.startswith("outcome"):
            print(f"| {what} | {sum(values):.0f} of {len(values)} | |")
            continue
        def ms(v: float) -> str:
            return f"> {args.give_up * 1000:.0f}" if math.isinf(v) else f"{v:.0f}"

        print(f"| {what} | {ms(statistics.median(values))} | {ms(max(values))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
