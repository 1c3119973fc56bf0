"""End to end with real `jobfsm start` processes, real time, a real SQLite file, real job
processes (watched through pidfds, which a reused pid cannot fool).

Slow (they wait for a real minute boundary, or for grace periods): `pytest -m 'not slow'`
skips them.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobfsm.daemon.shutdown import SHUTDOWN_BOOKKEEPING_SECONDS
from jobfsm.model import JobState, Outcome, RunStatus
from jobfsm.store.sql import SqlStore
from tests.conftest import job_doc, wait_for
from tests.test_daemon import trigger

pytestmark = pytest.mark.slow
JOBFSM = str(Path(sys.executable).parent / "jobfsm")


def write(jobs_dir: Path, name: str, **fields: object) -> None:
    tmp = jobs_dir / f".{name}.tmp"
    tmp.write_text(json.dumps(job_doc(name, **fields)))
    os.replace(tmp, jobs_dir / f"{name}.json")


_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_daemon_outlives_its_test() -> Iterator[None]:
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def start(jobs_dir: Path, logs: Path, url: str, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [JOBFSM, "start", "--jobs", str(jobs_dir), "--logs", str(logs), "--store", url, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _started.append(proc)
    wait_for(lambda: (logs / "scheduler_main.log").exists()
             and " started: " in (logs / "scheduler_main.log").read_text(), 15, "the daemon to start")
    return proc


def test_two_daemons_run_each_fire_once_on_time_and_follow_file_edits(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    write(jobs_dir, "tick", schedule="* * * * *", command=f"date +%s.%N >> {out}/tick.txt; sleep 3")
    write(jobs_dir, "muted", schedule="* * * * *", command=f"date >> {out}/muted.txt")
    now = datetime.now(UTC)
    if 60 - now.second < 8:  # too close to the boundary to edit files before it
        time.sleep(60 - now.second + 0.5)
    daemons = [start(jobs_dir, tmp_path / f"logs-{i}", url) for i in (1, 2)]
    boundary = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    write(jobs_dir, "muted", schedule="* * * * *", command=f"date >> {out}/muted.txt", enabled=False)
    for i in (1, 2):
        log = tmp_path / f"logs-{i}" / "scheduler_main.log"
        wait_for(lambda log=log: "reloaded job 'muted'" in log.read_text(), 2.5, "the edit to be applied")
    assert datetime.now(UTC) < boundary, "the edit must land before the fire"
    tick = out / "tick.txt"
    wait_for(tick.exists, (boundary - datetime.now(UTC)).total_seconds() + 10, "the fire")
    for proc in daemons:  # SIGTERM while the run is going
        proc.send_signal(signal.SIGTERM)
    codes = [proc.wait(20) for proc in daemons]
    assert codes == [0, 0], [p.stderr.read().decode() for p in daemons]  # type: ignore[union-attr]
    lines = tick.read_text().split()
    assert len(lines) == 1, "the fire ran twice"
    lateness = float(lines[0]) - boundary.timestamp()
    assert 0 <= lateness < 1.0, f"started {lateness:.3f} s after its minute"
    assert not (out / "muted.txt").exists(), "a disabled job ran"
    store = SqlStore(url)
    [run] = store.list_runs("tick")
    assert run.scheduled_for == boundary and run.status is RunStatus.SUCCEEDED
    assert store.get_state("muted") is JobState.DISABLED
    store.close()


def unique(name: str) -> str:
    """A job name no other test process on this machine uses at the same time: the tests look
    for a run's processes by their environment, and must never find a stranger's."""
    return f"{name}-{os.getpid()}"


def run_processes(job: str, run_id: int, *, besides: tuple[int, ...] = ()) -> list[int]:
    """Live processes whose environment names this run (zombies have none left to read)."""
    want = {f"JOBFSM_JOB={job}".encode(), f"JOBFSM_RUN_ID={run_id}".encode()}
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in besides:
            with contextlib.suppress(OSError):
                if want <= set(Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")):
                    found.append(int(entry))
    return found


def wait_processes(job: str, run_id: int, count: int, *, besides: tuple[int, ...] = ()) -> list[int]:
    """The run's processes, once there are at least ``count``."""
    found: list[int] = []

    def enough() -> bool:
        found[:] = run_processes(job, run_id, besides=besides)
        return len(found) >= count

    wait_for(enough, 10, f"{count} processes of run {run_id}", lambda: f"{found}")
    return found


def exited(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


@contextlib.contextmanager
def watching(pids: list[int]) -> Iterator[list[int]]:
    """Pidfds of these processes, opened now: whatever happens to the pids later, each tells
    whether that very process has ended. What a failed test leaves running is killed, through
    them (never a process that took over a freed pid)."""
    fds = [os.pidfd_open(pid) for pid in pids]
    try:
        yield fds
    finally:
        for fd in fds:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)


def recorded_pids(path: Path, count: int) -> list[int]:
    text = wait_for(lambda: path.exists() and len(path.read_text().split()) >= count and path.read_text(),
                    10, f"{count} pids in {path.name}")
    return [int(pid) for pid in str(text).split()]


def test_kill_9_then_restart_ends_the_lost_runs_processes_and_no_others(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    pids = tmp_path / "pids"
    job = unique("long")
    # The command, a child, a subshell and its child that ignore SIGTERM (2), and one that left the group.
    write(jobs_dir, job, schedule="0 0 1 1 *", command=(
        f"echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; "
        f"(trap '' TERM; sleep 300 & echo $! >> {pids}; wait) & "
        f"setsid sleep 300 & echo $! >> {pids}; wait"
    ))
    store = SqlStore(url)
    proc = start(jobs_dir, tmp_path / "logs", url)
    run_id = trigger(store, job)
    assert store.get_run(run_id).status is RunStatus.RUNNING
    mine = recorded_pids(pids, 4)
    # Decoys that must survive: another run of the dead daemon, and a run with the very same job
    # and id started by a process that is alive (another store's daemon, say).
    decoys = [
        subprocess.Popen(["sleep", "300"], start_new_session=True, env={
            **os.environ, "JOBFSM_JOB": job, "JOBFSM_RUN_ID": str(run_id + 1000), "JOBFSM_NODE_PID": str(proc.pid),
        }),
        subprocess.Popen(["sleep", "300"], start_new_session=True, env={
            **os.environ, "JOBFSM_JOB": job, "JOBFSM_RUN_ID": str(run_id), "JOBFSM_NODE_PID": str(os.getpid()),
        }),
    ]
    decoy_pids = tuple(d.pid for d in decoys)
    try:
        found = wait_processes(job, run_id, 5, besides=decoy_pids)
        assert set(mine) <= set(found)
        with watching(found) as fds:
            proc.kill()
            proc.wait(10)
            assert not any(exited(fd) for fd in fds), "the run's processes died with the daemon"
            (tmp_path / "logs" / "scheduler_main.log").unlink()
            proc = start(jobs_dir, tmp_path / "logs", url)
            wait_for(lambda: all(exited(fd) for fd in fds), 10, "every process of the lost run to be gone",
                     lambda: f"still there: {[pid for pid, fd in zip(found, fds, strict=True) if not exited(fd)]}")
            run = store.get_run(run_id)
            assert run.status is RunStatus.LOST and run.ended_at is not None
            assert "its 5 process(es) on this host were ended (2 by SIGKILL" in run.message, run.message
            assert store.get_state(job) is JobState.FAILED
        assert run_processes(job, run_id, besides=decoy_pids) == []
        assert [d.poll() for d in decoys] == [None, None], "a process of another run was signalled"
    finally:
        for decoy in decoys:
            decoy.kill()
            decoy.wait(10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        store.close()


IGNORES_SIGTERM = "trap '' TERM; echo $$ >> {pids}; (sleep 300 & echo $! >> {pids}; wait) & wait"
"""The command, and a grandchild: all of them ignore SIGTERM (an ignored signal stays ignored
across fork and exec)."""


def test_shutdown_ends_within_the_grace_period_even_when_jobs_ignore_sigterm(tmp_path: Path) -> None:
    """The grace period includes the SIGTERM->SIGKILL step; only recording the runs comes after
    it, and that is bounded by SHUTDOWN_BOOKKEEPING_SECONDS (in practice milliseconds)."""
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    pids = tmp_path / "pids"
    job = unique("stubborn")
    write(jobs_dir, job, schedule="0 0 1 1 *", command=IGNORES_SIGTERM.format(pids=pids))
    store = SqlStore(url)
    proc = start(jobs_dir, tmp_path / "logs", url, "--grace-seconds", "2")
    run_id = trigger(store, job)
    recorded_pids(pids, 2)
    with watching(wait_processes(job, run_id, 3)) as fds:
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        took = time.monotonic() - began
        assert 2.0 - 0.1 <= took < 2.0 + SHUTDOWN_BOOKKEEPING_SECONDS, f"stopped after {took:.2f} s with a 2 s grace"
        wait_for(lambda: all(exited(fd) for fd in fds), 5, "the run's processes, grandchild too, to be gone")
    run = store.get_run(run_id)
    assert run.status is RunStatus.FAILED and run.outcome is Outcome.KILLED
    assert "killed at daemon shutdown after the 2 s grace period" in run.message and "SIGKILL" in run.message
    store.close()


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_signal_kills_the_jobs_at_once(tmp_path: Path, second: signal.Signals) -> None:
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    pids = tmp_path / "pids"
    job = unique("stubborn")
    write(jobs_dir, job, schedule="0 0 1 1 *", command=IGNORES_SIGTERM.format(pids=pids))
    store = SqlStore(url)
    logs = tmp_path / "logs"
    proc = start(jobs_dir, logs, url, "--grace-seconds", "60")
    run_id = trigger(store, job)
    recorded_pids(pids, 2)
    with watching(wait_processes(job, run_id, 3)) as fds:
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "stopping (signal)" in (logs / "scheduler_main.log").read_text(), 5, "the first signal to be taken")
        began = time.monotonic()
        proc.send_signal(second)
        assert proc.wait(30) == 0
        took = time.monotonic() - began
        assert took < 1.0, f"stopped {took:.2f} s after the second signal"
        wait_for(lambda: all(exited(fd) for fd in fds), 5, "the run's processes, grandchild too, to be gone")
    run = store.get_run(run_id)
    assert run.status is RunStatus.FAILED and run.outcome is Outcome.KILLED
    assert run.message == "killed at daemon shutdown: a second signal asked to stop at once (SIGKILL)"
    store.close()
