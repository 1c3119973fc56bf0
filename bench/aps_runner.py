"""APScheduler 3.x as the comparison scheduler for ``bench_scheduler.py`` (run as its own process).

    python bench/aps_runner.py JOBS.json --workers 64 [--no-grace]

``JOBS.json`` is a list of ``{"name", "schedule", "argv"}``. Every job becomes a
``BackgroundScheduler`` job with ``CronTrigger.from_crontab(schedule, timezone="UTC")`` on a
``ThreadPoolExecutor(workers)``; a fire runs ``subprocess.Popen(argv).wait()`` — the same
subprocess the jobfsm daemon starts, with no output capture or bookkeeping (which favours
APScheduler slightly). By default APScheduler keeps its own job defaults (``misfire_grace_time``
1 s, ``coalesce`` on): a fire more than 1 s late is dropped with a log line. ``--no-grace`` sets
``misfire_grace_time=None`` and ``coalesce=False``, so every fire runs however late.

Once every job is added and the scheduler runs, it prints ``ready <unix time>`` on stdout (the
harness measures start-up to that moment); SIGTERM or SIGINT shut it down.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger


def run(argv: list[str]) -> None:
    subprocess.Popen(argv).wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("jobs", type=Path)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--no-grace", action="store_true")
    args = parser.parse_args()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    defaults = {"misfire_grace_time": None, "coalesce": False} if args.no_grace else {}
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(args.workers)}, job_defaults=defaults, timezone="UTC"
    )
    for job in json.loads(args.jobs.read_text()):
        scheduler.add_job(
            run, CronTrigger.from_crontab(job["schedule"], timezone="UTC"), args=[job["argv"]],
            id=job["name"], name=job["name"],
        )
    scheduler.start()
    sys.stdout.write(f"ready {time.time():.6f}\n")
    sys.stdout.flush()
    stop.wait()
    scheduler.shutdown(wait=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
