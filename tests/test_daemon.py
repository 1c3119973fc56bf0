"""The daemon in-process (real clock, real processes, real SQLite file): reload, triggers,
shutdown, crash recovery, fatal errors."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobfsm.clock import SystemClock
from jobfsm.daemon.process import Daemon
from jobfsm.model import JobState, RunStatus, Trigger
from jobfsm.store.sql import SqlStore
from tests.conftest import job_doc, wait_for


class Running:
    def __init__(self, daemon: Daemon, thread: threading.Thread, store: SqlStore) -> None:
        self.daemon, self.thread, self.store = daemon, thread, store
        self.code: list[int] = []

    def stop(self, timeout: float = 20) -> int:
        self.daemon.request_stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "daemon did not stop"
        return self.code[0]


@contextmanager
def daemons_at(jobs_dir: Path, logs: Path, url: str) -> Iterator[Callable[..., Running]]:
    """Start daemons in this process on these folders; every one still running is stopped after."""
    started: list[Running] = []

    def start(**kwargs: object) -> Running:
        daemon = Daemon(jobs_dir, logs, url, **kwargs)  # type: ignore[arg-type]
        store = SqlStore(url)
        running = Running(daemon, threading.Thread(target=lambda: running.code.append(daemon.run())), store)
        running.thread.start()
        assert daemon.ready.wait(10), "daemon did not start"
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            if running.thread.is_alive():
                running.stop()
            running.store.close()


@pytest.fixture
def start_daemon(tmp_path: Path, jobs_dir: Path) -> Iterator[Callable[..., Running]]:
    with daemons_at(jobs_dir, tmp_path / "logs", f"sqlite:///{tmp_path / 'store.db'}") as start:
        yield start


def write(jobs_dir: Path, name: str, **fields: object) -> None:
    tmp = jobs_dir / f".{name}.tmp"
    tmp.write_text(json.dumps(job_doc(name, **fields)))
    os.replace(tmp, jobs_dir / f"{name}.json")


def trigger(store: SqlStore, name: str) -> int:
    request = store.request_trigger(name, user="tester", at=SystemClock().now())
    resolved = wait_for(lambda: store.get_trigger_request(request.id).run_id, 3, "the daemon to pick up the request")
    return int(resolved)  # type: ignore[arg-type]


def test_new_changed_and_deleted_files_apply_within_two_seconds(start_daemon, jobs_dir: Path) -> None:
    running = start_daemon()
    scheduler = running.daemon.scheduler
    write(jobs_dir, "fresh", schedule="0 0 1 1 *")
    wait_for(lambda: "fresh" in scheduler.jobs, 2.0, "the new job to load")
    write(jobs_dir, "fresh", schedule="0 0 1 1 *", enabled=False)
    wait_for(lambda: running.store.get_state("fresh") is JobState.DISABLED, 2.0, "the job to be disabled")
    (jobs_dir / "fresh.json").write_text('{"name": "fresh", "schedule": "61 * * * *"}')
    wait_for(lambda: str(jobs_dir / "fresh.json") in scheduler.file_problems, 2.0, "the broken file to be seen")
    assert scheduler.jobs["fresh"].config.schedule == "0 0 1 1 *"  # last good version kept
    (jobs_dir / "fresh.json").unlink()
    wait_for(lambda: "fresh" not in scheduler.jobs, 2.0, "the deleted job to go")
    assert running.stop() == 0
    main_log = (running.daemon.logs_dir / "scheduler_main.log").read_text()
    assert "$.command: required field is missing (keeping its last good version)" in main_log


def test_manual_trigger_through_the_store_runs_once(start_daemon, jobs_dir: Path) -> None:
    write(jobs_dir, "hello", schedule="0 0 1 1 *", command="echo hi from $JOBFSM_JOB")
    running = start_daemon()
    run_id = trigger(running.store, "hello")
    run = wait_for(
        lambda: (r := running.store.get_run(run_id)).status is not RunStatus.RUNNING and r, 5, "the run to end"
    )
    assert run.trigger is Trigger.MANUAL and run.user == "tester" and run.status is RunStatus.SUCCEEDED
    assert run.stdout_tail == "hi from hello\n"
    assert len(running.store.list_runs("hello")) == 1
    assert running.stop() == 0


def test_sigterm_lets_a_run_finish_within_the_grace_period(start_daemon, jobs_dir: Path) -> None:
    write(jobs_dir, "slow", schedule="0 0 1 1 *", command="sleep 0.5; echo done")
    running = start_daemon(grace_seconds=10)
    run_id = trigger(running.store, "slow")
    assert running.stop() == 0
    run = running.store.get_run(run_id)
    assert run.status is RunStatus.SUCCEEDED and run.stdout_tail == "done\n"


def test_runs_past_the_grace_period_are_killed_and_recorded(start_daemon, jobs_dir: Path) -> None:
    write(jobs_dir, "stuck", schedule="0 0 1 1 *", command="sleep 300 & sleep 300")
    running = start_daemon(grace_seconds=0.3)
    run_id = trigger(running.store, "stuck")
    assert running.stop() == 0
    run = running.store.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert "killed at daemon shutdown after the 0.3 s grace period" in run.message
    assert running.store.get_state("stuck") is JobState.FAILED


def test_a_second_stop_request_kills_at_once_and_records_the_run(start_daemon, jobs_dir: Path) -> None:
    write(jobs_dir, "stubborn", schedule="0 0 1 1 *", command="trap '' TERM; sleep 300 & sleep 300")
    running = start_daemon(grace_seconds=60)
    run_id = trigger(running.store, "stubborn")
    running.daemon.request_stop()
    running.daemon.request_stop()  # as a second SIGTERM would
    running.thread.join(3)  # the SIGTERM->SIGKILL step alone is 5 s
    assert not running.thread.is_alive(), "the second request did not kill the jobs at once"
    run = running.store.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.message == "killed at daemon shutdown: a second signal asked to stop at once (SIGKILL)"


def test_retention_flags_prune_old_runs_and_their_output_at_start_up(start_daemon, jobs_dir: Path) -> None:
    write(jobs_dir, "chatty", schedule="0 0 1 1 *", command="echo out; echo err >&2")
    running = start_daemon()
    ids = [trigger(running.store, "chatty") for _ in range(3)]
    wait_for(lambda: all(running.store.get_run(i).status is RunStatus.SUCCEEDED for i in ids), 10, "three runs")
    runs = {i: running.store.get_run(i) for i in ids}
    assert running.stop() == 0
    assert len(running.store.list_runs("chatty")) == 3  # the defaults keep them: 1,000 runs, 30 days

    # keep the newest run, and no run merely for being young
    again = start_daemon(keep_runs=1, keep_days=0)
    main_log = (again.daemon.logs_dir / "scheduler_main.log").read_text()
    assert f"store={again.store.url} max_workers=32 grace_seconds=30 keep_runs=1 keep_days=0 dead_after=10\n" in main_log
    assert [r.id for r in again.store.list_runs("chatty")] == [ids[-1]]
    for run_id, run in runs.items():
        for path in (run.stdout_path, run.stderr_path):
            assert path and Path(path).exists() == (run_id == ids[-1]), path
    again.stop()


def test_overlap_skip_records_the_skipped_trigger(start_daemon, jobs_dir: Path) -> None:
    write(jobs_dir, "busy", schedule="0 0 1 1 *", command="sleep 2", overlap="skip")
    running = start_daemon(grace_seconds=0)
    first = trigger(running.store, "busy")
    second = trigger(running.store, "busy")
    skipped = running.store.get_run(second)
    assert skipped.status is RunStatus.SKIPPED and f"run {first} still running" in skipped.message
    running.stop()


def test_crash_leaves_no_job_stuck(tmp_path: Path, jobs_dir: Path, start_daemon) -> None:
    """Runs left running by a daemon that died are marked lost at the next start."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = SqlStore(url)
    write(jobs_dir, "victim", schedule="0 0 1 1 *")
    now = SystemClock().now()
    orphan = store.claim_run("victim", trigger=Trigger.SCHEDULE, node="deadhost:1", started_at=now, scheduled_for=now)
    store.set_state("victim", JobState.RUNNING, now)
    running = start_daemon()
    lost = running.store.get_run(orphan.id)
    assert lost.status is RunStatus.LOST and "deadhost:1" in lost.message
    assert running.store.get_state("victim") is JobState.FAILED
    run_id = trigger(running.store, "victim")
    wait_for(lambda: running.store.get_run(run_id).status is RunStatus.SUCCEEDED, 5, "the next run")
    running.stop()
    store.close()


# Property 14: a fatal error is logged before the daemon terminates
@given(component=st.text(alphabet=st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=12))
def test_fatal_errors_are_logged_before_exit(tmp_path_factory, component: str) -> None:
    root = tmp_path_factory.mktemp("fatal")
    (root / "jobs").mkdir()
    blocker = root / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    err = StringIO()
    daemon = Daemon(root / "jobs", root / "logs", f"sqlite:///{blocker / component / 'store.db'}", stderr=err)
    assert daemon.run() == 1
    last = (root / "logs" / "scheduler_main.log").read_text().splitlines()[-1]
    assert " CRITICAL daemon daemon stopped by a fatal error: " in last
    assert "fatal error" in err.getvalue() and "scheduler_main.log" in err.getvalue()


def test_a_local_run_of_a_live_process_is_not_taken_for_lost(start_daemon, tmp_path: Path, jobs_dir: Path) -> None:
    """`jobfsm run` with no daemon runs the job itself, under its own node name (host:pid): a
    daemon starting meanwhile must not mark that run lost while that process still lives."""
    import os
    import socket

    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = SqlStore(url)
    write(jobs_dir, "local", schedule="0 0 1 1 *")
    now = SystemClock().now()
    mine = store.claim_run("local", trigger=Trigger.MANUAL, node=f"{socket.gethostname()}:{os.getpid()}", started_at=now)
    gone = store.claim_run("local", trigger=Trigger.MANUAL, node=f"{socket.gethostname()}:999999999", started_at=now)
    running = start_daemon()
    assert running.store.get_run(mine.id).status is RunStatus.RUNNING
    assert running.store.get_run(gone.id).status is RunStatus.LOST
    running.stop()
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_idle_daemon_is_woken_by_a_trigger_request_at_once(tmp_path: Path, jobs_dir: Path, backend: str) -> None:
    """No one-second polling: the daemon sleeps until its next step (seconds away), and a
    trigger request rings the store's bell (a file beside SQLite, NOTIFY on PostgreSQL)."""
    import time
    from contextlib import ExitStack

    from tests.conftest import pg_schema

    write(jobs_dir, "now", schedule="0 0 1 1 *")
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'store.db'}"
        else:
            server = os.environ.get("JOBFSM_TEST_POSTGRES")
            if not server:
                pytest.skip("JOBFSM_TEST_POSTGRES is not set")
            url = stack.enter_context(pg_schema(server))
        daemon = Daemon(jobs_dir, tmp_path / "logs", url)
        thread = threading.Thread(target=daemon.run)
        thread.start()
        stack.callback(thread.join, 20)
        stack.callback(daemon.request_stop)
        assert daemon.ready.wait(20)
        store = SqlStore(url)
        stack.callback(store.close)
        latencies = []
        for _ in range(3):
            start = time.monotonic()
            request = store.request_trigger("now", user="tester", at=SystemClock().now())
            wait_for(lambda rid=request.id: store.get_trigger_request(rid).run_id, 5, "the daemon to take the request")
            latencies.append(time.monotonic() - start)
        assert max(latencies) < 1.0, f"trigger pick-up took {latencies} s"
