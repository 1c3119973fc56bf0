"""What the admin page costs: dashboard refresh latency under concurrent sessions, and the admin
process's memory with open pages.

    python bench/bench_admin_load.py [--jobs 1000] [--sessions 20] [--calls 15] [--pages 5] [--seconds 120]

Starts a real ``jobfsm admin`` process (over ``--jobs`` generated job files, a fresh SQLite store
and two accounts), then

1. signs in ``--sessions`` HTTP clients that each call the dashboard refresh (the endpoint the
   page's 3-second timer calls, ``/gradio_api/call/dashboard``: queue, run, stream the answer)
   ``--calls`` times back to back, all at once, each as one open page (its own Gradio session):
   its first call is the refresh (``dashboard``: the whole table is sent), the later ones what
   the page's timer sends (``refresh_mark``: nothing changed, so no refresh follows); reports
   the median and p95 of each;
2. opens ``--pages`` signed-in pages in Debian's Chromium (``/usr/bin/chromium`` through
   Playwright; skipped without it), keeps them open ``--seconds`` (they refresh by themselves),
   and reports the admin process's resident memory before, after, and its peak, and its CPU
   over that window beside a bare once-a-second Python loop's (from ``schedstat``).

``--tree DIR`` runs the admin process from another checkout (its ``jobfsm`` package), so one
script measures before and after a change. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_idle import BARE_LOOP
from bench_scheduler import cpu_seconds
from jobgen import generate

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "bench-pass-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def start_admin(root: Path, jobs: int, tree: Path) -> tuple[subprocess.Popen[bytes], str]:
    jobs_dir, logs = root / "jobs", root / "logs"
    generate(jobs_dir, jobs)
    env = {**os.environ, "PYTHONPATH": str(tree), "GRADIO_ANALYTICS_ENABLED": "False"}
    base = [sys.executable, "-m", "jobfsm", "--jobs", str(jobs_dir), "--logs", str(logs)]
    for user in ("bench", "viewer"):
        subprocess.run([*base, "users", "add", user, "--role", "admin" if user == "bench" else "viewer"],
                       input=PASSWORD + "\n", text=True, env=env, check=True, capture_output=True, cwd=tree)
    return launch_admin(base, env, tree)


def launch_admin(base: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``jobfsm admin`` on a free port, once its sign-in page answers: (process, URL)."""
    port = free_port()
    proc = subprocess.Popen([*base, "admin", "--port", str(port)], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/login", timeout=2).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("bench_admin: the admin process did not start")


def sign_in(url: str) -> requests.Session:
    session = requests.Session()
    answer = session.post(url + "/login", data={"username": "bench", "password": PASSWORD},
                          allow_redirects=False, timeout=60)
    if answer.status_code != 303:
        raise SystemExit(f"bench_admin: sign-in answered {answer.status_code}")
    return session


def dashboard(session: requests.Session, url: str, page: str, endpoint: str = "dashboard") -> float:
    """One call of ``endpoint`` by the open page ``page`` (its Gradio session), from the call to
    the complete answer; seconds. ``dashboard`` is the refresh (all of it, the first time a
    page asks); ``refresh_mark`` is what the page's 3-second timer sends (the refresh follows
    only when the mark changed)."""
    start = time.perf_counter()
    answer = session.post(url + f"/gradio_api/call/{endpoint}", timeout=120,  # (selected job, open tab)
                          json={"data": [None, None], "session_hash": page})
    answer.raise_for_status()
    stream = session.get(url + f"/gradio_api/call/{endpoint}/{answer.json()['event_id']}", timeout=120)
    if "event: complete" not in stream.text:
        raise SystemExit(f"bench_admin: the {endpoint} call did not complete: {stream.text[:200]}")
    return time.perf_counter() - start


def refresh_latency(url: str, sessions: int, calls: int) -> tuple[list[float], list[float]]:
    """(the first call of each page, the whole refresh; the later ones, the timer's look), all
    pages at once."""
    clients = [sign_in(url) for _ in range(sessions)]
    dashboard(clients[0], url, "warm-up")
    firsts: list[float] = []
    times: list[float] = []
    lock = threading.Lock()
    go = threading.Barrier(sessions)

    def client(session: requests.Session, page: str) -> None:
        go.wait()
        mine = [dashboard(session, url, page, "dashboard" if i == 0 else "refresh_mark") for i in range(calls)]
        with lock:
            firsts.append(mine[0])
            times.extend(mine[1:])

    threads = [threading.Thread(target=client, args=(c, f"bench-page-{i}")) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return firsts, times


def open_pages(url: str, pages: int, seconds: float, admin_pid: int) -> tuple[float, float] | None:
    """Open the pages, then keep them open ``seconds``: (the admin process's CPU %, a bare
    once-a-second Python loop's CPU %) over that window, from schedstat; None without Chromium."""
    if not CHROMIUM.exists():
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"])
        opened = []
        for _ in range(pages):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(url + "/")
            page.fill("#username", "bench")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#jobfsm-jobs")
            opened.append(page)
        bare = subprocess.Popen([sys.executable, "-c", BARE_LOOP])
        try:
            time.sleep(1.0)
            # the whole process's CPU (its worker threads come and go: a sum over the live
            # threads' schedstat would lose what the ended ones used)
            began, admin0, bare0 = time.monotonic(), process_cpu_seconds(admin_pid), cpu_seconds(bare.pid)
            while time.monotonic() < began + seconds:
                opened[0].wait_for_timeout(1000)  # let the pages' timers run
            window = time.monotonic() - began
            cpu = (100 * (process_cpu_seconds(admin_pid) - admin0) / window, 100 * (cpu_seconds(bare.pid) - bare0) / window)
        finally:
            bare.kill()
            bare.wait()
        browser.close()
    return cpu


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of the process from ``/proc/PID/stat``, ended threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--calls", type=int, default=15, help="dashboard calls per session")
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the pages stay open")
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="checkout whose jobfsm package serves the page (default: this one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-admin-") as tmp:
        proc, url = start_admin(Path(tmp), args.jobs, args.tree.resolve())
        try:
            firsts, times = refresh_latency(url, args.sessions, args.calls)
            before, _ = rss_kib(proc.pid)
            cpu = open_pages(url, args.pages, args.seconds, proc.pid) if args.pages else None
            opened = cpu is not None
            after, peak = rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    figures = {
        "jobs": args.jobs, "sessions": args.sessions, "calls": len(times),
        "first_median_ms": round(statistics.median(firsts) * 1000), "first_p95_ms": round(percentile(firsts, 0.95) * 1000),
        "median_ms": round(statistics.median(times) * 1000), "p95_ms": round(percentile(times, 0.95) * 1000),
        "rss_mib_before_pages": round(before / 1024), "rss_mib_with_pages": round(after / 1024) if opened else None,
        "rss_peak_mib": round(peak / 1024), "pages": args.pages if opened else 0, "seconds": args.seconds,
        "admin_cpu_pct_with_pages": round(cpu[0], 3) if cpu else None, "bare_loop_cpu_pct": round(cpu[1], 4) if cpu else None,
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"| jobs | sessions x calls | first load median (p95) | refresh median | p95 | RSS before pages | RSS with {figures['pages']} pages after {args.seconds:.0f} s | peak | admin CPU with the pages open (bare 1 s loop) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.jobs:,} | {args.sessions} x {args.calls} | {figures['first_median_ms']} ms ({figures['first_p95_ms']} ms) "
          f"| {figures['median_ms']} ms | {figures['p95_ms']} ms "
          f"| {figures['rss_mib_before_pages']} MiB | {figures['rss_mib_with_pages']} MiB | {figures['rss_peak_mib']} MiB "
          f"| {figures['admin_cpu_pct_with_pages']} % ({figures['bare_loop_cpu_pct']} %) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
