"""The soak: N jobs firing every minute for M whole minutes under a real `jobfsm start`; then
every fire of those minutes is looked up in the store.

    python bench/bench_soak.py [--jobs 1000] [--minutes 15]

Prints the counts (missed: a fire with no run; duplicates: a fire with two), the daemon's RSS
after each minute's burst (its slope is the leak, if any), the store's size, and what
`jobfsm status` and `jobfsm history` cost with that history (wall seconds, and CPU seconds,
which a loaded machine does not inflate). `tests/test_reliability.py` runs a 3-minute version.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DOC = {"schedule": "* * * * *", "command": "true", "working_directory": "/tmp", "enabled": True}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def seconds_to_next_minute() -> float:
    return 60 - time.time() % 60


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[2:4]} failed: {done.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def soak(folder: Path, *, jobs: int, minutes: int) -> dict[str, Any]:
    from jobfsm.store.sql import SqlStore

    jobs_dir, logs = folder / "jobs", folder / "logs"
    jobs_dir.mkdir(parents=True)
    for i in range(jobs):
        name = f"soak-{i:04d}"
        (jobs_dir / f"{name}.json").write_text(json.dumps({"name": name, **DOC}))
    url = f"sqlite:///{folder / 'store.db'}"
    where = ["--jobs", str(jobs_dir), "--logs", str(logs), "--store", url]
    daemon = subprocess.Popen([sys.executable, "-m", "jobfsm", "start", *where],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rss: list[int] = []
    first: datetime | None = None
    try:
        deadline = time.monotonic() + 30
        while " started: " not in _text(logs / "scheduler_main.log"):
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.1)
        for _ in range(minutes):
            time.sleep(seconds_to_next_minute() + 20)  # each burst is long over by :20
            rss.append(rss_kib(daemon.pid))
            if first is None:
                first = datetime.now(UTC).replace(second=0, microsecond=0)
        status = timed([sys.executable, "-m", "jobfsm", "status", "--format", "json", *where])
        history = timed([sys.executable, "-m", "jobfsm", "history", "soak-0000", "--format", "json", *where])
        alive = daemon.poll() is None
    finally:
        daemon.terminate()
        code = daemon.wait(60)
    assert first is not None
    wanted = {first + timedelta(minutes=k) for k in range(minutes)}
    store = SqlStore(url)
    try:
        runs = store.list_runs()
    finally:
        store.close()
    fires: dict[tuple[str, datetime], int] = {}
    failed = 0
    for run in runs:
        if run.scheduled_for in wanted:
            fires[(run.job, run.scheduled_for)] = fires.get((run.job, run.scheduled_for), 0) + 1
            failed += run.status.value != "succeeded"
    return {
        "jobs": jobs, "minutes": minutes, "alive": alive, "exit_code": code,
        "missed": jobs * minutes - len(fires), "duplicates": sum(n - 1 for n in fires.values()),
        "failed": failed, "rss_kib": rss, "store_bytes": os.path.getsize(folder / "store.db"),
        "status_wall_s": round(status[0], 2), "status_cpu_s": round(status[1], 2),
        "history_wall_s": round(history[0], 2), "history_cpu_s": round(history[1], 2),
    }


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = soak(Path(tmp), jobs=args.jobs, minutes=args.minutes)
    rss = figures["rss_kib"]
    slope = (rss[-1] - rss[0]) / max(len(rss) - 1, 1)
    print("| jobs | minutes | missed | duplicates | failed | RSS first → last (MiB) | slope (KiB/min) "
          "| store (MiB) | status wall / CPU (s) | history wall / CPU (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {figures['jobs']} | {figures['minutes']} | {figures['missed']} | {figures['duplicates']} "
          f"| {figures['failed']} | {rss[0] / 1024:.1f} → {rss[-1] / 1024:.1f} | {slope:.0f} "
          f"| {figures['store_bytes'] / 2**20:.1f} | {figures['status_wall_s']} / {figures['status_cpu_s']} "
          f"| {figures['history_wall_s']} / {figures['history_cpu_s']} |")


if __name__ == "__main__":
    main()
