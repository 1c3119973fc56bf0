"""Kill, pause and ``logs --follow`` end to end: real ``jobfsm start`` daemons, the real CLI in
subprocesses, real job processes, a real SQLite file, real time.

Slow (grace periods, a real minute boundary): ``pytest -m 'not slow'`` skips them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobfsm.daemon import policy
from jobfsm.model import Outcome, RunStatus
from jobfsm.store.sql import SqlStore
from tests.conftest import wait_for
from tests.test_daemon_e2e import JOBFSM, _no_daemon_outlives_its_test, start, write  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


class Site:
    """A jobs folder, a logs folder and a store, and the CLI over them."""

    def __init__(self, root: Path) -> None:
        self.jobs = root / "jobs"
        self.jobs.mkdir()
        self.logs = root / "logs"
        self.url = f"sqlite:///{root / 'store.db'}"
        self.store = SqlStore(self.url)
        self.root = root

    def args(self, *argv: str) -> list[str]:
        return [JOBFSM, *argv, "--jobs", str(self.jobs), "--logs", str(self.logs), "--store", self.url]

    def cli(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.args(*argv), capture_output=True, text=True, timeout=timeout)

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(self.args(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _started.append(proc)
        return proc

    def daemon(self) -> subprocess.Popen[bytes]:
        return start(self.jobs, self.logs, self.url)

    def running(self, name: str) -> int:
        run = wait_for(lambda: next(iter(self.store.list_runs(name, status=RunStatus.RUNNING)), None), 15,
                       f"a run of {name} to be running")
        return int(run.id)  # type: ignore[attr-defined]


_started: list[subprocess.Popen[str]] = []


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    yield site
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    site.store.close()


def _pids(folder: Path) -> list[int]:
    return [int(p.read_text()) for p in folder.glob("*.pid") if p.read_text().strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# A job whose process group holds a shell that ignores SIGTERM's first word (it traps it and
# goes on) and a background grandchild: the whole group must end, through SIGKILL if need be.
def _stubborn(out: Path) -> str:
    return (f"echo $$ > {out}/leader.pid; sleep 300 & echo $! > {out}/child.pid; "
            "trap 'echo term-seen' TERM; while true; do echo tick; sleep 0.2; done")


def test_kill_through_the_daemon_ends_the_whole_group_and_records_who(site: Site) -> None:
    out = site.root / "out"
    out.mkdir()
    write(site.jobs, "stubborn", schedule="0 0 1 1 *", command=_stubborn(out))
    site.daemon()
    # `jobfsm run` waits for the run: start it in the background, then kill the run it started
    runner = site.popen("run", "stubborn", "--user", "carol")
    run_id = site.running("stubborn")
    wait_for(lambda: len(_pids(out)) == 2, 10, "the job to write its pids")
    pids = _pids(out)
    assert all(_alive(p) for p in pids)
    t0 = time.monotonic()
    killed = site.cli("kill", "stubborn", "--user", "alice")
    took = time.monotonic() - t0
    assert killed.returncode == 0, killed.stderr
    assert f"run {run_id} of job 'stubborn': failed (killed)" in killed.stdout
    assert took < 5 + 10  # the executor's 5 s grace, then SIGKILL: not the job's 300 s
    run = site.store.get_run(run_id)
    assert (run.status, run.outcome) == (RunStatus.FAILED, Outcome.KILLED)
    assert run.message.startswith("killed by alice")
    assert not [p for p in pids if _alive(p)], "a process of the run's group outlived the kill"
    assert runner.wait(30) != 0  # the `jobfsm run` that waited for it reports the failure
    [entry] = [e for e in site.store.list_audit(job="stubborn") if e.action == "kill"]
    assert (entry.user, entry.outcome, entry.details["runs"]) == ("alice", "allowed", [run_id])
    # nothing running now, and an unknown job: exit 1, one line, audited as refused
    again = site.cli("kill", "stubborn", "--user", "alice")
    assert again.returncode == 1 and again.stderr.strip().endswith("has no run in progress; nothing to kill")
    unknown = site.cli("kill", "nope")
    assert unknown.returncode == 1 and "no job named 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    assert [e.outcome for e in site.store.list_audit(job="stubborn") if e.action == "kill"] == ["denied", "allowed"]


def test_kill_without_a_daemon_reaches_the_jobfsm_run_that_runs_it(site: Site) -> None:
    out = site.root / "out"
    out.mkdir()
    write(site.jobs, "slow", schedule="0 0 1 1 *", command=f"echo $$ > {out}/leader.pid; sleep 300")
    runner = site.popen("run", "slow", "--user", "carol")  # no daemon: it runs the job itself
    run_id = site.running("slow")
    killed = site.cli("kill", "slow", "--run", str(run_id), "--user", "alice", "--format", "json")
    assert killed.returncode == 0, killed.stderr
    [record] = json.loads(killed.stdout)
    assert (record["id"], record["status"], record["outcome"]) == (run_id, "failed", "killed")
    assert "killed by alice" in record["message"]
    assert runner.wait(30) != 0
    assert not _alive(int((out / "leader.pid").read_text()))


def test_pause_skips_triggers_and_fires_with_the_reason_then_resume_and_until(site: Site) -> None:
    write(site.jobs, "tick", schedule="* * * * *", command="echo tick")
    now = datetime.now(UTC)
    if 60 - now.second < 12:  # too close to the boundary to set things up before it
        time.sleep(60 - now.second + 0.5)
    site.daemon()
    boundary = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    until = boundary + timedelta(seconds=3)
    paused = site.cli("pause", "tick", "--until", until.isoformat(), "--reason", "db  maintenance", "--user", "alice")
    assert paused.returncode == 0, paused.stderr
    status = json.loads(site.cli("status", "--format", "json").stdout)
    [tick] = [j for j in status if j["name"] == "tick"]
    assert (tick["paused"], tick["paused_until"], tick["pause_reason"]) == (True, until.isoformat(), "db maintenance")
    assert "paused: tick until" in site.cli("status").stdout
    # a manual run while paused: recorded skipped, saying why (through the daemon)
    refused = site.cli("run", "tick", "--user", "bob")
    assert refused.returncode == 1 and "paused by alice" in refused.stdout
    # the fire at the boundary is skipped as paused (a distinct reason: not a missed fire)
    fire = wait_for(lambda: next((r for r in site.store.list_runs("tick") if r.scheduled_for == boundary), None),
                    75, "the fire at the minute boundary to be recorded")
    assert fire.status is RunStatus.SKIPPED and policy.is_pause_skip(fire.message)  # type: ignore[attr-defined]
    assert fire.message == f"paused by alice until {until.isoformat()}: db maintenance"  # type: ignore[attr-defined]
    # it ends by itself at --until: a run goes through again, the end is logged and audited
    wait_for(lambda: site.store.list_pauses() == [], 10, "the pause to end by itself")
    ran = site.cli("run", "tick", "--user", "bob")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "pause ended by itself" in (site.logs / "scheduler_main.log").read_text()
    # without --until it holds until resumed
    assert site.cli("pause", "tick", "--user", "alice").returncode == 0
    assert site.cli("run", "tick").returncode == 1
    resumed = site.cli("resume", "tick", "--user", "alice")
    assert (resumed.returncode, resumed.stdout) == (0, "job 'tick' resumed\n")
    assert site.cli("run", "tick").returncode == 0
    assert site.cli("resume", "tick").stdout == "job 'tick' was not paused\n"
    actions = [(e.user, e.action) for e in reversed(site.store.list_audit(job="tick"))
               if e.action in ("pause", "resume")]
    assert actions[:4] == [("alice", "pause"), ("jobfsm", "resume"), ("alice", "pause"), ("alice", "resume")]
    # bad input: one line, exit 1 or 2, no traceback
    unknown = site.cli("pause", "nope")
    assert unknown.returncode == 1 and "no job named 'nope'" in unknown.stderr
    past = site.cli("pause", "tick", "--until", "2001-01-01T00:00")
    assert past.returncode == 1 and "is not in the future" in past.stderr
    garbled = site.cli("pause", "tick", "--until", "tomorrow")
    assert garbled.returncode == 2 and "not an ISO 8601 time" in garbled.stderr
    assert all("Traceback" not in r.stderr for r in (unknown, past, garbled))


def test_logs_follow_prints_the_next_run_as_it_is_written_until_it_ends(site: Site) -> None:
    write(site.jobs, "talker", schedule="0 0 1 1 *",
          command="for i in 1 2 3 4 5; do echo line-$i; sleep 0.4; done; echo oops >&2; exit 4")
    site.daemon()
    follower = site.popen("logs", "talker", "--follow")  # nothing runs yet: it waits for the next run
    time.sleep(0.5)
    assert follower.poll() is None
    request = site.store.request_trigger("talker", user="tester", at=datetime.now(UTC))
    assert follower.stdout is not None
    first = follower.stdout.readline()
    run_id = wait_for(lambda: site.store.get_trigger_request(request.id).run_id, 5, "the trigger")
    assert first == "line-1\n"
    assert site.store.get_run(int(run_id)).status is RunStatus.RUNNING  # type: ignore[arg-type]
    # Not communicate(): it reads the pipe itself, missing what readline() left in the buffer.
    rest = follower.stdout.read()
    assert follower.stderr is not None
    err = follower.stderr.read()
    assert follower.wait(30) == 0
    assert first + rest == "".join(f"line-{i}\n" for i in range(1, 6))
    assert "oops" in err and f"run {run_id} ended: failed, failed, exit 4" in err
    # a run that ended already: --run shows it whole and returns at once
    again = site.cli("logs", "talker", "--follow", "--run", str(run_id))
    assert again.returncode == 0 and again.stdout.count("line-") == 5


@pytest.mark.postgres
def test_kill_reaches_whichever_of_two_nodes_runs_the_run(tmp_path: Path) -> None:
    server = os.environ.get("JOBFSM_TEST_POSTGRES")
    if not server:
        pytest.skip("set JOBFSM_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL tests")
    from tests.conftest import pg_schema

    with pg_schema(server) as url:
        jobs = tmp_path / "jobs"
        jobs.mkdir()
        write(jobs, "slow", schedule="0 0 1 1 *", command="sleep 300")
        nodes = {name: tmp_path / f"logs-{name}" for name in ("node-a", "node-b")}
        daemons = [start(jobs, logs, url, "--node", name) for name, logs in nodes.items()]
        store = SqlStore(url)
        try:
            request = store.request_trigger("slow", user="tester", at=datetime.now(UTC))
            run_id = int(wait_for(lambda: store.get_trigger_request(request.id).run_id, 5, "a node to take it"))  # type: ignore[arg-type]
            node = store.get_run(run_id).node
            t0 = time.monotonic()
            killed = subprocess.run(
                [JOBFSM, "kill", "slow", "--user", "alice", "--jobs", str(jobs), "--logs", str(tmp_path / "cli"),
                 "--store", url], capture_output=True, text=True, timeout=60)
            took = time.monotonic() - t0
            assert killed.returncode == 0, killed.stderr
            run = store.get_run(run_id)
            assert (run.status, run.outcome, run.node) == (RunStatus.FAILED, Outcome.KILLED, node)
            assert run.message.startswith("killed by alice")
            assert took < 10  # `sleep` ends on SIGTERM: no grace period to wait out
            assert f"run {run_id} of job 'slow': killed by alice" in (nodes[node] / "scheduler_main.log").read_text()
            other = next(n for n in nodes if n != node)
            assert "killed by alice" not in (nodes[other] / "scheduler_main.log").read_text()
        finally:
            store.close()
            for daemon in daemons:  # before the schema goes
                daemon.terminate()
                daemon.wait(30)
