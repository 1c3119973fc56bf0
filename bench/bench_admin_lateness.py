"""Does the admin page slow the daemon? Fire lateness of a daemon with and without 20 open pages
polling, in one run, on one host.

    python bench/bench_admin_lateness.py [--jobs 300] [--pages 20] [--minutes 2]

Starts ``jobfsm start`` over ``--jobs`` jobs firing every minute (``true``) and ``jobfsm admin``
over the same folders, then observes ``--minutes`` minute boundaries three times: without the
pages, with ``--pages`` signed-in HTTP clients that each poll as an open page does (the timer's
look, ``refresh_mark``, every 3 s, as its own Gradio session), and without them again. Fire
lateness is a run's recorded start minus its scheduled time, from the store. Prints one
markdown table: p50, p99 and max lateness and the fires recorded, per phase, and the admin
process's CPU in each.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_admin_load import (
    PASSWORD,
    dashboard,
    launch_admin,
    percentile,
    process_cpu_seconds,
    sign_in,
)
from jobgen import generate

POLL_SECONDS = 3.0


def start(root: Path, jobs: int) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], str]:
    generate(root / "jobs", jobs, schedule="* * * * *")
    base = [sys.executable, "-m", "jobfsm", "--jobs", str(root / "jobs"), "--logs", str(root / "logs")]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    subprocess.run([*base, "users", "add", "bench", "--role", "admin"], input=PASSWORD + "\n", text=True,
                   env=env, check=True, capture_output=True, cwd=root)
    daemon = subprocess.Popen([*base, "start"], env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    admin, url = launch_admin(base, env, root)
    return daemon, admin, url


def until_next_minute() -> float:
    return 60.0 - time.time() % 60.0


def observe(minutes: int) -> tuple[float, float]:
    """Wait through ``minutes`` minute boundaries (from just after the next one); the window
    in wall seconds (start, end) whose fires count."""
    time.sleep(until_next_minute() + 1.0)
    first = time.time() // 60 * 60
    time.sleep(60.0 * (minutes - 1) + until_next_minute() + 10.0)  # the last burst's starts recorded
    return first, first + 60.0 * (minutes - 1)


def poll(url: str, pages: int, stop: threading.Event) -> None:
    def page(i: int) -> None:
        session = sign_in(url)
        name = f"lateness-page-{i}"
        dashboard(session, url, name)  # the page's first load
        while not stop.wait(POLL_SECONDS):
            dashboard(session, url, name, "refresh_mark")

    threads = [threading.Thread(target=page, args=(i,), daemon=True) for i in range(pages)]
    for thread in threads:
        thread.start()


def lateness(store: Path, first: float, last: float) -> list[float]:
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT scheduled_for, started_at FROM runs WHERE trigger = 'schedule' "
                          "AND started_at IS NOT NULL").fetchall()
    late = []
    for scheduled, started in rows:  # naive UTC, as the store keeps them on SQLite
        due = datetime.fromisoformat(scheduled).replace(tzinfo=UTC).timestamp()
        if first <= due <= last:
            late.append(datetime.fromisoformat(started).replace(tzinfo=UTC).timestamp() - due)
    return late


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--minutes", type=int, default=2, help="minute boundaries observed per phase")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lateness-") as tmp:
        root = Path(tmp)
        daemon, admin, url = start(root, args.jobs)
        try:
            for phase in ("no pages", f"{args.pages} pages polling", "no pages again"):
                stop = threading.Event()
                if "polling" in phase:
                    poll(url, args.pages, stop)
                cpu0, t0 = process_cpu_seconds(admin.pid), time.monotonic()
                first, last = observe(args.minutes)
                cpu = 100 * (process_cpu_seconds(admin.pid) - cpu0) / (time.monotonic() - t0)
                stop.set()
                late = lateness(root / "logs" / "jobfsm.db", first, last)
                rows.append((phase, late, cpu))
        finally:
            for process in (admin, daemon):
                process.terminate()
                process.wait(60)
    print(f"fire lateness, {args.jobs} jobs every minute, {args.minutes} boundaries per phase "
          f"(load {os.getloadavg()[0]:.1f})\n")
    print("| phase | fires | p50 ms | p99 ms | max ms | admin CPU % |")
    print("|---|---|---|---|---|---|")
    for phase, late, cpu in rows:
        if not late:
            print(f"| {phase} | 0 | - | - | - | {cpu:.2f} |")
            continue
        ms = [x * 1000 for x in late]
        print(f"| {phase} | {len(ms)} | {statistics.median(ms):.0f} | {percentile(ms, 0.99):.0f} | {max(ms):.0f} | {cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
