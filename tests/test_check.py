"""``jobfsm check`` and ``jobfsm start --metrics`` with real processes: a real daemon, real job
processes, a real SQLite file; check run as the command an external monitor would run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.notify_support import free_port
from tests.test_daemon_e2e import _no_daemon_outlives_its_test, start, write  # noqa: F401 - the fixture
from tests.test_metrics import scrape

JOBFSM = str(Path(sys.executable).parent / "jobfsm")


def jobfsm(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBFSM, *args, "--jobs", str(tmp_path / "jobs"), "--logs", str(tmp_path / "logs"),
         "--store", f"sqlite:///{tmp_path / 'store.db'}"],
        capture_output=True, text=True, timeout=60,
    )


def test_check_without_a_daemon_names_it_and_the_missed_fires(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    write(jobs, "hourly", schedule="0 * * * *")
    write(jobs, "yearly", schedule="0 0 1 1 *")
    write(jobs, "off", schedule="* * * * *", enabled=False)
    two_hours_ago = time.time() - 7200
    for name in ("hourly", "yearly", "off"):
        os.utime(jobs / f"{name}.json", (two_hours_ago, two_hours_ago))
    result = jobfsm(tmp_path, "check")
    assert result.returncode == 1, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith("no_daemon: no daemon alive")
    assert len(lines) == 2 and lines[1].startswith("missed: job 'hourly' missed fires: the fire of "), lines
    as_json = json.loads(jobfsm(tmp_path, "check", "--format", "json").stdout)
    assert as_json["ok"] is False
    assert [(p["kind"], p["job"]) for p in as_json["problems"]] == [("no_daemon", None), ("missed", "hourly")]


@pytest.mark.slow
def test_check_follows_a_real_daemon_and_a_failing_job_and_metrics_are_served(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    write(jobs, "fine", schedule="0 0 1 1 *", command="true")
    write(jobs, "broken", schedule="0 0 1 1 *", command="echo oops >&2; exit 4")
    port = free_port()
    daemon = start(jobs, tmp_path / "logs", f"sqlite:///{tmp_path / 'store.db'}",
                   "--metrics", f"127.0.0.1:{port}")
    assert jobfsm(tmp_path, "check").returncode == 0
    assert jobfsm(tmp_path, "run", "broken").returncode == 4  # through the daemon: its exit code
    result = jobfsm(tmp_path, "check")
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith("failing: job 'broken' is failing: run 1 exit 4 at "), result.stdout
    m = scrape(port)
    assert m["jobfsm_runs_total", (("job", "broken"), ("status", "failed"))] == 1
    assert m["jobfsm_jobs", (("state", "failed"),)] == 1
    assert m["jobfsm_nodes_live", ()] == 1
    write(jobs, "broken", schedule="0 0 1 1 *", command="true")
    main_log = tmp_path / "logs" / "scheduler_main.log"
    wait_for(lambda: "reloaded job 'broken'" in main_log.read_text(), 10, "the daemon to load the fix")
    assert jobfsm(tmp_path, "run", "broken").returncode == 0
    result = jobfsm(tmp_path, "check")
    assert (result.returncode, result.stdout) == (0, "ok: a daemon is alive; no job missed fires or is failing\n")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    wait_for(lambda: jobfsm(tmp_path, "check").returncode == 1, 40, "check to see the daemon gone")
    assert jobfsm(tmp_path, "check").stdout.startswith("no_daemon: ")
