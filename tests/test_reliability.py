"""Faults an operator meets, each with a real `jobfsm start` process, real files and real time,
and the outcome counted: nothing lost, nothing run twice (the table is docs/reliability.md).

Slow: each waits for a minute boundary or moves real data (`pytest -m 'not slow'` skips them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from bench.bench_soak import rss_kib, seconds_to_next_minute, soak
from jobfsm.model import RunStatus
from jobfsm.store.abc import RunRecord
from jobfsm.store.sql import SqlStore
from tests.conftest import fill, job_doc, wait_for
from tests.test_daemon import daemons_at, trigger
from tests.test_daemon_e2e import _no_daemon_outlives_its_test, start, write  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
MIB = 1024 * 1024


def runs_of(url: str) -> list[RunRecord]:
    store = SqlStore(url)
    try:
        return store.list_runs()
    finally:
        store.close()


def test_sighup_reopens_the_log_files_that_logrotate_moved_away(tmp_path: Path) -> None:
    jobs_dir, logs = tmp_path / "jobs", tmp_path / "logs"
    jobs_dir.mkdir()
    write(jobs_dir, "tick", schedule="@yearly", command="echo tick")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    proc = start(jobs_dir, logs, url)
    store = SqlStore(url)
    try:
        trigger(store, "tick")
        wait_for(lambda: "tick" in (logs / "scheduler_jobs.log").read_text(), 10, "the first run's log line")
        # logrotate without copytruncate: rename, then SIGHUP.
        for name in ("scheduler_main.log", "scheduler_jobs.log"):
            os.replace(logs / name, logs / f"{name}.1")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: (logs / "scheduler_main.log").exists()
                 and "SIGHUP: log files reopened" in (logs / "scheduler_main.log").read_text(),
                 10, "the reopened main log")
        before = (logs / "scheduler_jobs.log.1").read_text()
        run_id = trigger(store, "tick")
        wait_for(lambda: (logs / "scheduler_jobs.log").exists()
                 and f"run {run_id} finished" in (logs / "scheduler_jobs.log").read_text(), 10, "the new run in the new log")
        assert (logs / "scheduler_jobs.log.1").read_text() == before, "a line went to the moved-away file"
        assert proc.poll() is None, "SIGHUP stopped the daemon"
    finally:
        store.close()
        proc.terminate()
        assert proc.wait(30) == 0


def test_the_jobs_folder_removed_for_a_minute_keeps_the_loaded_jobs_running(tmp_path: Path) -> None:
    """A deploy that deletes the folder and writes it again (rm -rf, then git checkout) must not
    unschedule every job for the minute in between, nor crash the daemon."""
    if seconds_to_next_minute() < 8:
        time.sleep(seconds_to_next_minute() + 0.5)  # room to remove the folder before the fire
    jobs_dir, logs, out = tmp_path / "jobs", tmp_path / "logs", tmp_path / "out"
    jobs_dir.mkdir()
    out.mkdir()
    write(jobs_dir, "every-minute", schedule="* * * * *", command=f"date +%H:%M >> {out / 'marks'}")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    proc = start(jobs_dir, logs, url)
    saved = tmp_path / "saved"
    shutil.copytree(jobs_dir, saved)
    shutil.rmtree(jobs_dir)
    removed_at = time.time()
    # The fire of the next minute still runs, from the job loaded before.
    wait_for(lambda: (out / "marks").exists(), seconds_to_next_minute() + 15, "the fire while the folder is gone",
             lambda: (logs / "scheduler_main.log").read_text()[-2000:])
    main_log = (logs / "scheduler_main.log").read_text()
    assert main_log.count("keeping the jobs loaded") == 1, "the missing folder must be logged once"
    time.sleep(max(0.0, 60 - (time.time() - removed_at)))  # a minute without the folder
    shutil.copytree(saved, jobs_dir)
    write(jobs_dir, "added-after", schedule="@yearly", command="true")
    store = SqlStore(url)
    try:
        trigger_at = time.monotonic()
        wait_for(lambda: _triggered(store, "added-after"), 15, "the job added after the restore")
        assert time.monotonic() - trigger_at < 15
        assert proc.poll() is None
    finally:
        store.close()
        proc.terminate()
        assert proc.wait(30) == 0
    fires = [r for r in runs_of(url) if r.job == "every-minute"]
    assert fires and len({r.scheduled_for for r in fires}) == len(fires), f"a fire ran twice: {fires}"
    assert all(r.status is RunStatus.SUCCEEDED for r in fires), fires


def _triggered(store: SqlStore, name: str) -> bool:
    try:
        trigger(store, name)
    except AssertionError:
        return False
    return True


def test_a_hundred_jobs_printing_ten_mebibytes_at_once(tmp_path: Path) -> None:
    jobs_dir, logs = tmp_path / "jobs", tmp_path / "logs"
    jobs_dir.mkdir()
    names = [f"loud-{i:03d}" for i in range(100)]
    for name in names:
        (jobs_dir / f"{name}.json").write_text(json.dumps(job_doc(
            name, schedule="* * * * *", command=["/bin/sh", "-c", "head -c 10485760 /dev/zero | tr '\\0' x"])))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    proc = start(jobs_dir, logs, url, "--max-workers", "100")
    baseline = rss_kib(proc.pid)
    peak = baseline

    def all_done() -> bool:
        nonlocal peak
        peak = max(peak, rss_kib(proc.pid))
        rows = runs_of(url)
        return len(rows) >= 100 and all(r.status is not RunStatus.RUNNING for r in rows)

    wait_for(all_done, seconds_to_next_minute() + 120, "100 loud runs to end",
             lambda: f"{len(runs_of(url))} runs")
    proc.terminate()
    assert proc.wait(30) == 0
    runs = runs_of(url)
    first = [r for r in runs if r.scheduled_for == min(x.scheduled_for for x in runs)]
    assert sorted(r.job for r in first) == names
    for run in first:
        assert run.status is RunStatus.SUCCEEDED, (run.job, run.message)
        assert run.stdout_path is not None
        assert os.path.getsize(run.stdout_path) == 10 * MIB, f"{run.job}: output incomplete"
    # Output goes straight to files: the daemon never holds it.
    assert peak - baseline < 64 * 1024, f"daemon RSS grew {(peak - baseline) // 1024} MiB with 1 GB of output"


def test_soak_a_thousand_jobs_every_minute(tmp_path: Path) -> None:
    """The CI version (3 minutes) of `python bench/bench_soak.py` (15 minutes)."""
    figures = soak(tmp_path, jobs=1000, minutes=3)
    print("soak:", figures)
    assert figures["alive"] and figures["exit_code"] == 0, figures
    assert (figures["missed"], figures["duplicates"], figures["failed"]) == (0, 0, 0), figures
    # Flat memory: the last two minutes of 1,000 runs each add no more than noise.
    assert figures["rss_kib"][-1] - figures["rss_kib"][1] < 8 * 1024, figures
    # What status and history cost with that history, in CPU (a loaded machine inflates the wall).
    assert figures["status_cpu_s"] < 3 and figures["history_cpu_s"] < 3, figures


def test_a_full_logs_disk_costs_log_lines_not_runs(tmp_path: Path, small_disk: Path,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    """The logs folder (job logs and run output) on a tmpfs that fills up; the store elsewhere."""
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    write(jobs_dir, "chatty", schedule="@yearly", command="echo hello")
    with daemons_at(jobs_dir, small_disk, f"sqlite:///{tmp_path / 'store.db'}") as start:
        running = start()
        filler = fill(small_disk)
        for _ in range(5):  # one after another (overlap: skip would skip a run that meets another)
            run_id = trigger(running.store, "chatty")
            wait_for(lambda run_id=run_id: running.store.get_run(run_id).ended_at, 10, f"run {run_id} to be recorded",
                     lambda run_id=run_id: repr(running.store.get_run(run_id)))
            run = running.store.get_run(run_id)
            # `echo` cannot write its output to the full disk: the job fails, as it would under cron.
            assert run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED) and run.exit_code is not None, run
        filler.unlink()
        after = trigger(running.store, "chatty")
        wait_for(lambda: running.store.get_run(after).status is RunStatus.SUCCEEDED, 10, "a run once space is back")
        assert running.daemon.ready.is_set() and running.thread.is_alive()
        assert running.stop() == 0
        jobs_log = (small_disk / "scheduler_jobs.log").read_text()
        assert f"run {after} finished: status=succeeded" in jobs_log
        said = capfd.readouterr().err
        assert said.count("cannot write the log") <= 2, said  # once per file, not once per run
