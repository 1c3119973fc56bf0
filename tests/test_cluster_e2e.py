"""Several `jobfsm start` processes on one PostgreSQL database and one jobs folder, with real
time, real job processes and real faults: every fire once across them, a node killed with -9
and its run retried on a survivor, every connection of every daemon terminated by the server
just before a minute boundary.

Each daemon gets its own ``JOBFSM_HOST`` and ``--node`` name, so the others see it as a node of
another host: they cannot look for its process here and must go by its heartbeats, as they
would across machines. Slow: `pytest -m 'not slow'` skips them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from jobfsm.model import RunStatus, Trigger
from jobfsm.store.sql import SqlStore, normalize_url
from tests.conftest import job_doc, pg_schema, wait_for
from tests.test_daemon_e2e import JOBFSM

PG_URL = os.environ.get("JOBFSM_TEST_POSTGRES")
pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="set JOBFSM_TEST_POSTGRES")]


class Cluster:
    """Daemons on one database (each named ``n1``, ``n2``, … on "host" ``h1``, ``h2``, …)."""

    def __init__(self, root: Path, url: str, app: str) -> None:
        self.root, self.url, self.app = root, url, app
        self.jobs = root / "jobs"
        self.jobs.mkdir()
        self.out = root / "out"
        self.out.mkdir()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.store = SqlStore(url)

    def write(self, name: str, **fields: object) -> None:
        tmp = self.jobs / f".{name}.tmp"
        tmp.write_text(json.dumps(job_doc(name, working_directory=str(self.out), **fields)))
        os.replace(tmp, self.jobs / f"{name}.json")

    def start(self, node: str, *extra: str) -> subprocess.Popen[bytes]:
        logs = self.root / f"logs-{node}"
        env = {**os.environ, "JOBFSM_HOST": f"h{node[1:]}"}
        proc = subprocess.Popen(
            [JOBFSM, "start", "--jobs", str(self.jobs), "--logs", str(logs), "--store", self.url,
             "--node", node, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True,
        )
        self.procs[node] = proc
        wait_for(lambda: (logs / "scheduler_main.log").exists()
                 and " started: " in (logs / "scheduler_main.log").read_text(), 20, f"daemon {node} to start")
        return proc

    def all_alive(self) -> bool:
        return all(p.poll() is None for p in self.procs.values())

    def deaths(self) -> str:
        """What ended the daemons that are gone: exit code, stderr, the end of their log."""
        out = []
        for node, p in self.procs.items():
            if p.poll() is not None:
                err = p.stderr.read().decode(errors="replace")[-2000:] if p.stderr else ""
                out.append(f"{node} exited {p.returncode}: {err} / {self.main_log(node)[-2000:]}")
        return "\n".join(out)

    def main_log(self, node: str) -> str:
        return (self.root / f"logs-{node}" / "scheduler_main.log").read_text()

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.store.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    assert PG_URL
    app = f"jobfsm-test-{uuid.uuid4().hex[:8]}"
    with pg_schema(PG_URL, application_name=app) as url:
        SqlStore(url).close()  # migrated once, before the daemons race for it
        c = Cluster(tmp_path, url, app)
        try:
            yield c
        finally:
            c.close()


def _marks(out: Path) -> list[tuple[str, str]]:
    path = out / "marks.txt"
    if not path.exists():
        return []
    return [tuple(line.split()[:2]) for line in path.read_text().splitlines() if line.strip()]  # type: ignore[misc]


def _next_boundary(after: datetime) -> datetime:
    return (after + timedelta(minutes=1)).replace(second=0, microsecond=0)


def _wait_until(when: datetime) -> None:
    delay = (when - datetime.now(UTC)).total_seconds()
    if delay > 0:
        time.sleep(delay)


MARK = 'echo "$JOBFSM_JOB $JOBFSM_SCHEDULED_FOR" >> marks.txt'


def test_three_daemons_run_every_fire_once_and_share_them(cluster: Cluster) -> None:
    names = [f"tick-{i}" for i in range(9)]
    for name in names:
        cluster.write(name, schedule="* * * * *", command=MARK)
    for node in ("n1", "n2", "n3"):
        cluster.start(node)
    first = _next_boundary(datetime.now(UTC))
    second = first + timedelta(minutes=1)
    _wait_until(second + timedelta(seconds=8))
    wanted = sorted((name, fire.isoformat()) for name in names for fire in (first, second))
    seen = sorted(m for m in _marks(cluster.out) if m[1] in (first.isoformat(), second.isoformat()))
    assert seen == wanted, "every fire of the two minutes ran exactly once"
    runs = [r for r in cluster.store.list_runs() if r.scheduled_for in (first, second)]
    assert len(runs) == len(wanted) and all(r.status is RunStatus.SUCCEEDED for r in runs)
    nodes = {r.node for r in runs}
    assert len(nodes) > 1, f"every run landed on {nodes}"
    assert cluster.all_alive(), cluster.deaths()


def test_kill_9_of_the_node_running_a_job_retries_it_on_a_survivor(cluster: Cluster) -> None:
    cluster.write("long", schedule="0 0 1 1 *", overlap="skip", retries=1, retry_delay_seconds=1,
                  command='echo "$$ $JOBFSM_RUN_ID $(date +%s.%N) start" >> copies.txt; sleep 300')
    for node in ("n1", "n2", "n3"):
        cluster.start(node, "--dead-after", "10")
    request = cluster.store.request_trigger("long", user="ann", at=datetime.now(UTC))
    run_id = wait_for(lambda: cluster.store.get_trigger_request(request.id).run_id, 5, "a node to take the trigger")
    first = cluster.store.get_run(int(run_id))  # type: ignore[arg-type]
    assert first.status is RunStatus.RUNNING
    wait_for(lambda: (cluster.out / "copies.txt").exists(), 5, "the job to start")
    job_pid = int((cluster.out / "copies.txt").read_text().split()[0])

    # The host of that node dies: the daemon and its job, at once.
    victim = cluster.procs[first.node]
    killed = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    os.killpg(job_pid, signal.SIGKILL)
    victim.wait(10)

    wait_for(lambda: cluster.store.get_run(first.id).status is RunStatus.LOST, 10 + 2 + 1, "the run to be lost")
    lost_after = time.time() - killed
    lost = cluster.store.get_run(first.id)
    assert lost_after <= 10 + 2, f"lost {lost_after:.1f} s after the kill"
    assert f"node {first.node}" in lost.message and "last seen" in lost.message and " by n" in lost.message

    def retry() -> object:
        return next((r for r in cluster.store.list_runs("long")
                     if r.trigger is Trigger.RETRY and r.status is RunStatus.RUNNING), None)
    wait_for(retry, 15, "the retry to start")
    started_after = time.time() - killed
    again = retry()
    assert again is not None and again.node != first.node and again.attempt == 1  # type: ignore[attr-defined]
    assert started_after <= 15, f"the retry started {started_after:.1f} s after the kill"
    wait_for(lambda: len((cluster.out / "copies.txt").read_text().splitlines()) == 2, 5, "the retry's process")
    starts = [float(line.split()[2]) for line in (cluster.out / "copies.txt").read_text().splitlines()]
    assert starts[1] > killed, "never two copies at once: the retry began after the first was gone"
    time.sleep(3)
    assert len(cluster.store.list_runs("long", status=RunStatus.RUNNING)) == 1
    assert len((cluster.out / "copies.txt").read_text().splitlines()) == 2


def test_terminated_connections_before_a_minute_boundary_lose_and_double_nothing(cluster: Cluster) -> None:
    names = [f"tick-{i}" for i in range(6)]
    for name in names:
        cluster.write(name, schedule="* * * * *", command=MARK)
    for node in ("n1", "n2", "n3"):
        cluster.start(node)
    boundary = _next_boundary(datetime.now(UTC) + timedelta(seconds=5))
    _wait_until(boundary - timedelta(seconds=1))
    assert PG_URL
    admin = create_engine(normalize_url(PG_URL))
    with admin.begin() as conn:
        ended = conn.execute(text(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = :app AND pid <> pg_backend_pid()) AS t"), {"app": cluster.app}).scalar_one()
    admin.dispose()
    assert ended >= 3, "every daemon had at least one connection"
    _wait_until(boundary + timedelta(seconds=12))
    wanted = sorted((name, boundary.isoformat()) for name in names)
    seen = sorted(m for m in _marks(cluster.out) if m[1] == boundary.isoformat())
    assert seen == wanted, "each fire of that minute ran exactly once"
    assert cluster.all_alive(), f"every daemon survives: {cluster.deaths()}"
    runs = [r for r in cluster.store.list_runs() if r.scheduled_for == boundary]
    assert sorted(r.job for r in runs) == names and all(r.status is RunStatus.SUCCEEDED for r in runs)


def test_manual_triggers_are_taken_by_exactly_one_node_within_a_second(cluster: Cluster) -> None:
    cluster.write("adhoc", schedule="0 0 1 1 *", overlap="allow", command="true")
    for node in ("n1", "n2", "n3"):
        cluster.start(node)
    wait_for(lambda: len([n for n in cluster.store.nodes(seen_within=10) if n.alive]) == 3, 10, "three live nodes")
    takers = []  # at once: a request made before a daemon listens is looked for when it starts to
    for _ in range(8):
        asked = time.monotonic()
        request = cluster.store.request_trigger("adhoc", user="ann", at=datetime.now(UTC))
        run_id = wait_for(lambda r=request.id: cluster.store.get_trigger_request(r).run_id, 5, "the trigger's run")
        assert time.monotonic() - asked < 1.0, "picked up within a second"
        taken = cluster.store.get_trigger_request(request.id)
        run = cluster.store.get_run(int(run_id))  # type: ignore[call-overload]
        assert taken.claimed_by == run.node
        takers.append(run.node)
        time.sleep(0.3)
    runs = cluster.store.list_runs("adhoc")
    assert len(runs) == 8, "each request ran once"
    assert cluster.all_alive(), cluster.deaths()
