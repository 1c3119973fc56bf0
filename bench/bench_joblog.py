"""Cost per line of :class:`jobfsm.joblog.JobLogger` against the ``logging`` way it replaced.

    python bench/bench_joblog.py [--lines 100000] [--rounds 3] [--dir FOLDER]

Each variant writes the same ``--lines`` ``job_start`` records (same arguments, same escaping,
same line format, the default 10 MB / 5 backups rotation) into a fresh folder:

- **logging** (the baseline): a plain ``logging.Logger`` with a ``RotatingFileHandler`` and a
  formatter with ISO UTC milliseconds, called exactly as ``JobLogger`` did before;
- **JobLogger**: the current writer, flushing every line;
- **JobLogger, buffered()**: the same inside one ``buffered()`` block (one flush at the end,
  included in the time).

Rounds are interleaved so every variant sees the same machine; the median round is shown.
Before timing, one line of each variant is checked to be the same record as the baseline's.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import logging
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path

from jobfsm.clock import utc
from jobfsm.joblog import JOBS_LOG, JobLogger, escape, quote

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
SCHEDULED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
COMMAND = "/usr/local/bin/backup --all --target /srv/backup"


class _IsoUtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def logging_logger(folder: Path) -> tuple[logging.Logger, RotatingFileHandler]:
    """The old ``JobLogger`` internals for the jobs log, rebuilt as they were."""
    handler = RotatingFileHandler(
        folder / JOBS_LOG, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(_IsoUtcFormatter("%(asctime)s %(levelname)s %(component)s %(message)s"))
    logger = logging.Logger("bench.jobs", logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    return logger, handler


def old_job_start(
    logger: logging.Logger, job: str, run_id: int, *, trigger: str,
    scheduled_for: datetime | None, command: str,
) -> None:
    """``JobLogger.job_start`` as it was, through ``logging``."""
    logger.log(
        logging.INFO, "run %d started: trigger=%s scheduled_for=%s command=%s",
        run_id, escape(trigger), utc(scheduled_for).isoformat() if scheduled_for else "-",
        quote(command), extra={"component": escape(f"job:{job}")},
    )


def run_logging(folder: Path, n: int) -> float:
    logger, handler = logging_logger(folder)
    try:
        start = time.perf_counter()
        for i in range(n):
            old_job_start(logger, f"job-{i % 1000}", i, trigger="schedule",
                          scheduled_for=SCHEDULED, command=COMMAND)
        return time.perf_counter() - start
    finally:
        handler.close()


def run_joblogger(folder: Path, n: int, *, buffered: bool) -> float:
    with JobLogger(folder, max_bytes=MAX_BYTES, backup_count=BACKUPS) as joblog:
        start = time.perf_counter()
        if buffered:
            with joblog.buffered():
                for i in range(n):
                    joblog.job_start(f"job-{i % 1000}", i, trigger="schedule",
                                     scheduled_for=SCHEDULED, command=COMMAND)
        else:
            for i in range(n):
                joblog.job_start(f"job-{i % 1000}", i, trigger="schedule",
                                 scheduled_for=SCHEDULED, command=COMMAND)
        return time.perf_counter() - start


VARIANTS: dict[str, Callable[[Path, int], float]] = {
    "logging + RotatingFileHandler (baseline)": run_logging,
    "JobLogger": lambda folder, n: run_joblogger(folder, n, buffered=False),
    "JobLogger, buffered()": lambda folder, n: run_joblogger(folder, n, buffered=True),
}

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 ")


def check_same_lines(base: Path) -> None:
    """One line from each variant; equal to the baseline's but for the timestamp."""
    seen = {}
    for k, (name, variant) in enumerate(VARIANTS.items()):
        folder = base / f"check-{k}"
        folder.mkdir()
        variant(folder, 1)
        line = (folder / JOBS_LOG).read_text(encoding="utf-8")
        assert TIME.match(line), f"{name}: {line!r}"
        seen[name] = TIME.sub("", line)
    assert len(set(seen.values())) == 1, seen


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-joblog-", dir=args.dir))
    try:
        check_same_lines(base)
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for r in range(args.rounds):
            for k, (name, variant) in enumerate(VARIANTS.items()):
                folder = base / f"round-{r}-{k}"
                folder.mkdir()
                times[name].append(variant(folder, args.lines))
                shutil.rmtree(folder)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{args.lines:,} job_start lines, median of {args.rounds} rounds, "
          f"Python {platform.python_version()}\n")
    print("| writer | µs/line | vs baseline |")
    print("|---|---:|---:|")
    baseline = statistics.median(next(iter(times.values())))
    for name, samples in times.items():
        t = statistics.median(samples)
        print(f"| {name} | {t / args.lines * 1e6:.2f} | {t / baseline:.3f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
