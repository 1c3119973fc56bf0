"""One run path: a manual run with no daemon alive goes through the daemon's own scheduler, so
``overlap: queue`` and ``retries`` behave exactly as they do under a daemon. Real processes,
real SQLite files, a real daemon (in-process) for the comparison, a real `jobfsm run`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from jobfsm.daemon.process import Daemon
from jobfsm.model import RunStatus, Trigger
from jobfsm.service import JobManagementService
from jobfsm.store import RunRecord, open_store
from tests.conftest import job_doc, wait_for

# Fails on its first run only (a counter file), and takes a moment, so a second trigger meets it.
FLAKY = 'n=$(cat "$COUNTER" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNTER"; sleep 2.5; [ "$n" -ge 1 ]'


def _jobs(folder: Path, counter: Path) -> Path:
    jobs = folder / "jobs"
    jobs.mkdir(parents=True)
    doc = job_doc("flaky", schedule="0 0 1 1 *", command=FLAKY, overlap="queue", retries=1,
                  retry_delay_seconds=1, env={"COUNTER": str(counter)})
    (jobs / "flaky.json").write_text(json.dumps(doc))
    return jobs


def _sequence(runs: list[RunRecord]) -> list[tuple[Trigger, int, RunStatus]]:
    return [(r.trigger, r.attempt, r.status) for r in sorted(runs, key=lambda r: (r.started_at, r.id))]


def _trigger_twice_and_settle(service: JobManagementService) -> list[tuple[Trigger, int, RunStatus]]:
    first = service.trigger_job("flaky", "ana")
    second = service.trigger_job("flaky", "ana")  # the first still runs: queued behind it
    assert service.store.get_run(second).message.startswith(f"queued behind run {first}")

    def settled() -> list[RunRecord] | None:
        runs = service.store.list_runs("flaky")
        done = [r for r in runs if r.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)]
        return runs if len(done) == 3 and len(runs) == 3 else None

    runs = wait_for(settled, 20, "two runs and a retry to end", lambda: str(_sequence(service.store.list_runs("flaky"))))
    return _sequence(runs)  # type: ignore[arg-type]


EXPECTED = [
    (Trigger.MANUAL, 0, RunStatus.FAILED),     # the first run fails...
    (Trigger.MANUAL, 0, RunStatus.SUCCEEDED),  # ...the queued one starts as it ends...
    (Trigger.RETRY, 1, RunStatus.SUCCEEDED),   # ...and the retry waits its delay and its turn
]


def test_a_local_run_queues_and_retries_exactly_as_the_daemon_does(tmp_path: Path) -> None:
    local = tmp_path / "local"
    jobs = _jobs(local, local / "count")
    with JobManagementService(jobs, local / "logs") as service:
        assert not service.daemon_alive()
        here = _trigger_twice_and_settle(service)

    remote = tmp_path / "daemon"
    jobs = _jobs(remote, remote / "count")
    url = f"sqlite:///{remote / 'store.db'}"
    daemon = Daemon(jobs, remote / "logs", url)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        assert daemon.ready.wait(10)
        store = open_store(url)
        with JobManagementService(jobs, remote / "logs", store) as service:
            assert service.daemon_alive()
            there = _trigger_twice_and_settle(service)
        store.close()
    finally:
        daemon.request_stop()
        thread.join(30)
    assert here == there == EXPECTED


def test_jobfsm_run_without_a_daemon_waits_for_the_retry_and_exits_with_its_code(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, tmp_path / "count")
    done = subprocess.run(
        [sys.executable, "-m", "jobfsm", "run", "flaky", "--jobs", str(jobs), "--logs", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("run 1 of job 'flaky': failed (exit 1)"), done.stdout
    assert any(line.startswith("retry 1 (run 2) of job 'flaky': succeeded (exit 0)") for line in lines), done.stdout
