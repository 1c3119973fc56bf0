"""Notifications and metrics, measured.

    python bench/bench_notify.py [--failures 100] [--slow 100] [--others 200] [--metrics-jobs 10000]

1. **Latency**: a real ``jobfsm start`` (SQLite) with a webhook to a local HTTP server; one job
   that fails is triggered ``--failures`` times, each after the previous webhook arrived, and
   a success in between, so each failure starts a streak and is told. Latency = the webhook's
   arrival (wall clock) minus the run's ``ended_at`` in the store: median and p99.
2. **A slow endpoint does not move fire lateness**: ``--others`` jobs that succeed and
   ``--slow`` jobs that fail, all every minute; the failing jobs' webhook answers after 5 s.
   The others' lateness (when each one's process began, read by ``date`` in it, minus the fire
   time) over two minute boundaries, p99, with that webhook and with the failing jobs silenced.
3. **Scrape**: ``/metrics`` of a :class:`jobfsm.metrics.Metrics` fed one success and one failure
   for each of ``--metrics-jobs`` jobs (every series of every metric present), served over HTTP;
   median of 5 scrapes, wall time and this process's CPU time (server and client threads: the
   figure a busy machine moves less), and the page's size.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from jobfsm.clock import SystemClock
from jobfsm.lifecycle.events import RunFinished, RunStarted
from jobfsm.metrics import Metrics
from jobfsm.model import JobState, Outcome, Trigger
from jobfsm.runs.executor import JobResult
from jobfsm.store.sql import SqlStore


class Sink:
    """A local webhook endpoint: records (wall time, body); answers after ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.got: list[tuple[float, dict]] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.time()
                with sink.lock:
                    sink.got.append((arrived, json.loads(body)))
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        with self.lock:
            return len(self.got)


def write_job(folder: Path, name: str, **fields: object) -> None:
    doc = {"name": name, "schedule": "0 0 1 1 *", "command": "true", "working_directory": "/tmp",
           "enabled": True, **fields}
    (folder / f".{name}.tmp").write_text(json.dumps(doc))
    (folder / f".{name}.tmp").rename(folder / f"{name}.json")


def start_daemon(root: Path, *extra: str) -> subprocess.Popen[bytes]:
    daemon = subprocess.Popen(
        [sys.executable, "-m", "jobfsm", "start", "--jobs", str(root / "jobs"), "--logs", str(root / "logs"),
         "--store", f"sqlite:///{root / 'store.db'}", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    log = root / "logs" / "scheduler_main.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "settings:" in log.read_text()):
        if time.monotonic() > deadline or daemon.poll() is not None:
            raise SystemExit("the daemon did not start")
        time.sleep(0.1)
    return daemon


def wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.005)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(failures: int) -> list[float]:
    sink = Sink()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "jobs").mkdir()
        passes = root / "passes"  # the job succeeds while this file exists
        write_job(root / "jobs", "flaky", command=f"test -e {passes}")
        daemon = start_daemon(root, "--notify-webhook", sink.url)
        store = SqlStore(f"sqlite:///{root / 'store.db'}")
        clock = SystemClock()
        out: list[float] = []
        try:
            for _ in range(failures):
                before = sink.count()
                request = store.request_trigger("flaky", user="bench", at=clock.now())
                wait(lambda: sink.count() > before, 30, "the failure webhook")  # noqa: B023
                arrived, body = sink.got[-1]
                run = store.get_run(body["run"]["id"])
                assert run.ended_at is not None and request is not None
                out.append(arrived - run.ended_at.timestamp())
                passes.touch()  # a success ends the streak
                store.request_trigger("flaky", user="bench", at=clock.now())
                wait(lambda: sink.count() > before + 1, 30, "the recovery")  # noqa: B023
                passes.unlink()
        finally:
            daemon.terminate()
            daemon.wait(60)
            store.close()
    return out


def lateness(others: int, slow: int, *, slow_endpoint: bool) -> tuple[float, float, int, int]:
    """p50 and p99 of the others' start lateness over two minute boundaries (the time each job's
    process began, as ``date`` in it reads it, minus its fire time), notices taken."""
    sink = Sink(delay=5.0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "jobs").mkdir()
        starts = root / "starts"
        starts.mkdir()
        for i in range(others):  # each start writes the time the process began, as the job sees it
            write_job(root / "jobs", f"other-{i:04d}", schedule="* * * * *",
                      command=f"date +%s.%N >> {starts}/other-{i:04d}")
        notify = {"webhook": sink.url} if slow_endpoint else {"on": []}
        for i in range(slow):
            write_job(root / "jobs", f"failing-{i:04d}", schedule="* * * * *", command="exit 1", notify=notify)
        daemon = start_daemon(root)
        store = SqlStore(f"sqlite:///{root / 'store.db'}")
        try:
            now = datetime.now(UTC)
            first = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            second = first + timedelta(minutes=1)
            wait(lambda: datetime.now(UTC) > second + timedelta(seconds=15), 200, "two minute boundaries")
            late = []
            for path in starts.iterdir():
                for line in path.read_text().split():
                    began = float(line)
                    fire = min((first, second), key=lambda f: abs(f.timestamp() - began))
                    late.append(began - fire.timestamp())
        finally:
            daemon.terminate()
            daemon.wait(60)
            store.close()
    return pct(late, 0.5), pct(late, 0.99), len(late), sink.count()


def scrape(jobs: int) -> tuple[float, float, int]:
    clock = SystemClock()
    states = [JobState.SUCCEEDED] * jobs
    metrics = Metrics(clock=clock, states=lambda: states)
    now = clock.now()
    for i in range(jobs):
        name = f"job-{i:05d}"
        for outcome in (Outcome.SUCCEEDED, Outcome.FAILED):
            metrics.on_event(RunStarted(name, i, Trigger.SCHEDULE, now, "true"))
            metrics.on_event(RunFinished(JobResult(name, i, now, now, 0, "", "", 0.7, outcome, None, "", None, None),
                                         Trigger.SCHEDULE))
    server = metrics.serve("127.0.0.1", 0)
    times, cpu = [], []
    size = 0
    try:
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=120) as r:
                size = len(r.read())
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    finally:
        server.shutdown()
    return statistics.median(times), statistics.median(cpu), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--failures", type=int, default=100)
    parser.add_argument("--slow", type=int, default=100)
    parser.add_argument("--others", type=int, default=200)
    parser.add_argument("--metrics-jobs", type=int, default=10_000)
    parser.add_argument("--only", choices=("latency", "lateness", "scrape"))
    args = parser.parse_args()
    if args.only in (None, "scrape"):
        seconds, cpu, size = scrape(args.metrics_jobs)
        print(f"| /metrics scrape, {args.metrics_jobs:,} jobs (median of 5) | {seconds * 1000:.0f} ms | "
              f"CPU {cpu * 1000:.0f} ms | {size / 1e6:.1f} MB |")
    if args.only in (None, "latency"):
        got = latency(args.failures)
        print(f"| failing run's end → webhook arrival ({len(got)} failures) | median {statistics.median(got) * 1000:.1f} ms | "
              f"p99 {pct(got, 0.99) * 1000:.1f} ms |")
    if args.only in (None, "lateness"):
        for slow_endpoint in (False, True):
            p50, p99, n, sent = lateness(args.others, args.slow, slow_endpoint=slow_endpoint)
            what = f"{args.slow} failing jobs → endpoint answering after 5 s" if slow_endpoint else f"{args.slow} failing jobs, silenced"
            print(f"| fire lateness of {args.others} other jobs ({n} starts), {what} | p50 {p50 * 1000:.0f} ms | "
                  f"p99 {p99 * 1000:.0f} ms | {sent} webhooks taken |")


if __name__ == "__main__":
    main()
