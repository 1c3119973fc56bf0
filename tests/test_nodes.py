"""Visible nodes: what the service sees of them on every backend, ``jobfsm nodes`` / ``status`` / ``history``
over real daemons on real SQLite and PostgreSQL, and the output of a run recorded by a node of
another host (``jobfsm logs`` shows the stored head and tail and names the node and the path)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.cli import run as cli_run
from jobfsm.model import Outcome, RunStatus, Trigger
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS, this_host
from jobfsm.runs.executor import OMITTED_MARKER
from jobfsm.service import JobManagementService
from jobfsm.service.nodes import NodeRun, node_infos, nodes_seen
from jobfsm.store import Store, open_store
from jobfsm.store.abc import Heartbeat
from tests.conftest import job_doc, pg_schema, wait_for

PG_URL = os.environ.get("JOBFSM_TEST_POSTGRES")
NODE_KEYS = {"node", "host", "pid", "started_at", "last_heartbeat", "alive", "running"}
JOBFSM = str(Path(sys.executable).parent / "jobfsm")

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("set JOBFSM_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL tests")
    with pg_schema(PG_URL) as url:
        yield url


def _url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'jobfsm.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url(request.param, request, tmp_path)


@pytest.fixture(params=BACKENDS[1:])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url(request.param, request, tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = open_store(url)
    yield s
    s.close()


def cli(tmp_path: Path, url: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    jobs = tmp_path / "jobs"
    jobs.mkdir(exist_ok=True)
    code = cli_run([*argv, "--jobs", str(jobs), "--logs", str(tmp_path / "cli-logs"), "--store", url], out, err)
    return code, out.getvalue(), err.getvalue()


def claim(store: Store, job: str, node: str, **kw: object) -> int:
    run = store.claim_run(job, trigger=Trigger.MANUAL, node=node, started_at=datetime.now(UTC), **kw)  # type: ignore[arg-type]
    assert run is not None
    return run.id


# -- the store -------------------------------------------------------------------------------

def test_nodes_are_the_recent_heartbeats_and_every_node_running_something(store: Store) -> None:
    now = datetime.now(UTC)
    store.heartbeat("a:1", pid=1, host="a", at=now - timedelta(seconds=2))
    store.heartbeat("b:2", pid=2, host="b", at=now - timedelta(seconds=30))
    store.heartbeat("gone:3", pid=3, host="gone", at=now - timedelta(hours=2))
    store.heartbeat("stuck:4", pid=4, host="stuck", at=now - timedelta(hours=2))
    first, second = claim(store, "backup", "a:1"), claim(store, "report", "a:1")
    done = claim(store, "backup", "b:2")
    store.finish_run(done, outcome=Outcome.SUCCEEDED, ended_at=now, exit_code=0, duration_seconds=0.1)
    stuck = claim(store, "sync", "stuck:4")
    local = claim(store, "adhoc", "web-1")  # `jobfsm run` with no daemon: no heartbeat at all

    nodes = {n.node: n for n in nodes_seen(store, seen_within=3600)}
    assert list(nodes) == ["a:1", "b:2", "stuck:4", "web-1"]  # by name; "gone" is not recent
    a = nodes["a:1"]
    assert (a.host, a.pid) == ("a", 1)
    assert [(r.id, r.job) for r in a.running] == [(first, "backup"), (second, "report")]
    assert a.seconds_since_heartbeat is not None and 1.5 <= a.seconds_since_heartbeat < 60
    assert a.last_heartbeat is not None and abs((a.last_heartbeat - (now - timedelta(seconds=2))).total_seconds()) < 1e-3
    assert nodes["b:2"].running == () and nodes["b:2"].seconds_since_heartbeat > 29  # type: ignore[operator]
    assert [r.id for r in nodes["stuck:4"].running] == [stuck]  # old heartbeat, but it runs something
    web = nodes["web-1"]
    assert (web.host, web.pid, web.started_at, web.last_heartbeat, web.seconds_since_heartbeat) == (
        None, None, None, None, None)
    assert [r.id for r in web.running] == [local]
    assert [n.node for n in nodes_seen(store, seen_within=10)] == ["a:1", "stuck:4", "web-1"]


NAMES = st.sampled_from(["a:1", "b:2", "c", "d:x", "web-1"])
T = datetime(2026, 1, 1, tzinfo=UTC)


@settings(max_examples=200)
@given(
    beats=st.dictionaries(NAMES, st.integers(min_value=-5_000, max_value=10_000_000).map(lambda ms: ms / 1000)),
    running=st.lists(st.tuples(NAMES, st.sampled_from(["x", "y"])), max_size=8),
    seen_within=st.integers(min_value=0, max_value=10_000_000).map(lambda ms: ms / 1000),
)
def test_node_infos_lists_each_running_run_once_under_its_node(
    beats: dict[str, float], running: list[tuple[str, str]], seen_within: float
) -> None:
    heartbeats = [Heartbeat(n, 7, "h", T - timedelta(seconds=age + 60), T - timedelta(seconds=age))
                  for n, age in beats.items()]
    pairs = [(node, NodeRun(i, job, None)) for i, (node, job) in enumerate(running, start=1)]
    infos = node_infos(heartbeats, list(reversed(pairs)), now=T, seen_within=seen_within)
    names = [i.node for i in infos]
    assert names == sorted(set(names))
    busy = {node for node, _ in running}
    assert set(names) == busy | {n for n, age in beats.items() if age <= seen_within}
    for info in infos:
        assert [r.id for r in info.running] == [r.id for node, r in pairs if node == info.node]
        if info.node in beats:
            assert info.seconds_since_heartbeat == pytest.approx(beats[info.node])
            assert info.host == "h" and info.pid == 7
        else:
            assert info.last_heartbeat is None and info.seconds_since_heartbeat is None
    assert sum(len(i.running) for i in infos) == len(running)


def test_alive_is_a_heartbeat_within_dead_after(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    store = open_store(f"sqlite:///{tmp_path / 'jobfsm.db'}")
    now = datetime.now(UTC)
    store.heartbeat("fresh:1", pid=1, host="h", at=now - timedelta(seconds=3))
    store.heartbeat("late:2", pid=2, host="h", at=now - timedelta(seconds=DEFAULT_DEAD_AFTER_SECONDS + 5))
    claim(store, "x", f"{this_host()}:{os.getpid()}")  # a live process of this host, no heartbeat
    claim(store, "y", f"{this_host()}:{2**22 + 7}")  # beyond any pid_max: no such process
    with JobManagementService(tmp_path / "jobs", tmp_path / "logs", store) as service:
        alive = {v.node: v.alive for v in service.nodes()}
        longer = {v.node: v.alive for v in service.nodes(dead_after=DEFAULT_DEAD_AFTER_SECONDS + 30)}
    store.close()
    assert alive == {"fresh:1": True, "late:2": False, f"{this_host()}:{os.getpid()}": True,
                     f"{this_host()}:{2**22 + 7}": False}
    assert longer["late:2"] is True


def test_nodes_with_none_says_so_and_json_is_an_empty_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobfsm.db'}"
    assert cli(tmp_path, url, "nodes") == (0, "no node seen in the last 3600 s and none running anything\n", "")
    assert cli(tmp_path, url, "nodes", "--format", "json")[:2] == (0, "[]\n")
    code, _, err = cli(tmp_path, url, "nodes", "--dead-after", "soon")
    assert code == 2 and "--dead-after must be a number, not 'soon'" in err


@pytest.mark.parametrize("argv", [
    ["--seen-within", "-1"], ["--seen-within", "nan"], ["--dead-after", "1e400"], ["--dead-after", "inf"],
    ["--format", "xml"], ["--store", "nosuch://x"], ["--store", "postgresql://nobody@127.0.0.1:1/x"],
    ["--store", "sqlite:///" + "x" * 5000],
], ids=lambda argv: " ".join(argv)[:40])
def test_bad_arguments_and_stores_are_one_line(tmp_path: Path, argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = cli_run(["nodes", "--jobs", str(tmp_path), "--logs", str(tmp_path / "logs"), *argv], out, err)
    assert code in (1, 2) and out.getvalue() == ""
    assert len(err.getvalue().splitlines()) == 1 and err.getvalue().startswith("jobfsm"), err.getvalue()


# -- two real daemons --------------------------------------------------------------------------

def _daemon(tmp_path: Path, url: str, node: str) -> subprocess.Popen[bytes]:
    logs = tmp_path / f"logs-{node}"
    proc = subprocess.Popen(
        [JOBFSM, "start", "--jobs", str(tmp_path / "jobs"), "--logs", str(logs), "--store", url,
         "--node", node, "--grace-seconds", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: (logs / "scheduler_main.log").exists()
                 and " started: " in (logs / "scheduler_main.log").read_text(), 30, f"daemon {node} to start")
    except AssertionError:
        proc.kill()
        raise
    return proc


@pytest.mark.slow
def test_nodes_status_and_history_over_two_daemons(tmp_path: Path, sql_url: str) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "long.json").write_text(json.dumps(job_doc("long", schedule="0 0 1 1 *", command="echo started; sleep 60")))
    daemons = {node: _daemon(tmp_path, sql_url, node) for node in ("alpha", "beta")}
    store = open_store(sql_url)
    try:
        request = store.request_trigger("long", user="tester", at=datetime.now(UTC))
        run_id = int(wait_for(lambda: store.get_trigger_request(request.id).run_id, 10, "a daemon to take the trigger"))  # type: ignore[arg-type]
        runner = store.get_run(run_id).node
        other = ({"alpha", "beta"} - {runner}).pop()

        code, out, _ = cli(tmp_path, sql_url, "nodes", "--format", "json")
        nodes = {n["node"]: n for n in json.loads(out)}
        assert code == 0 and set(nodes) == {"alpha", "beta"}
        assert all(set(n) == NODE_KEYS for n in nodes.values())
        assert nodes[runner]["running"] == [run_id] and nodes[other]["running"] == []
        assert all(n["alive"] is True for n in nodes.values())
        for n in nodes.values():
            assert n["host"] == this_host() and isinstance(n["pid"], int)
            assert n["last_heartbeat"].endswith("+00:00") and n["started_at"] <= n["last_heartbeat"]
        assert {nodes[name]["pid"] for name in nodes} == {p.pid for p in daemons.values()}

        code, out, _ = cli(tmp_path, sql_url, "nodes")
        rows = {line.split()[0]: line for line in out.splitlines()[1:]}
        assert out.split()[:2] == ["NODE", "HOST"] and set(rows) == {"alpha", "beta"}
        assert rows[runner].split()[-3:] == ["yes", str(run_id), "long"] and rows[other].split()[-2:] == ["yes", "-"]

        code, out, _ = cli(tmp_path, sql_url, "status")
        header, row = out.splitlines()[:2]
        assert header.split()[-2:] == ["RUNNING", "ON"] and row.split()[-1] == runner
        code, out, _ = cli(tmp_path, sql_url, "status", "--format", "json")
        [view] = json.loads(out)
        assert view["last_run"]["status"] == "running" and view["last_run"]["node"] == runner

        code, out, _ = cli(tmp_path, sql_url, "history", "long")
        assert out.split()[:8] == ["ID", "STATUS", "TRIGGER", "STARTED", "DURATION", "EXIT", "NODE", "MESSAGE"]
        assert out.splitlines()[1].split()[0] == str(run_id) and f" {runner} " in out.splitlines()[1] + " "
    finally:
        for proc in daemons.values():
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(30) for proc in daemons.values()]
    assert codes == [0, 0], [p.stderr.read().decode() for p in daemons.values()]  # type: ignore[union-attr]
    assert store.get_run(run_id).status is RunStatus.FAILED  # killed at shutdown, recorded
    store.close()
    # a clean stop forgets the node: nothing left to show
    assert cli(tmp_path, sql_url, "nodes", "--format", "json")[1] == "[]\n"


# -- the output of a run on another host -------------------------------------------------------

def test_logs_of_a_run_recorded_on_another_host_show_the_stored_head_and_tail(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobfsm.db'}"
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "big.json").write_text(json.dumps(job_doc("big")))
    far = "far-host:4242"
    assert this_host() != "far-host"
    elsewhere = "/srv/jobfsm-elsewhere/logs/runs/big"
    assert not os.path.exists(elsewhere)
    store = open_store(url)
    run_id = claim(store, "big", far)
    tail = "first line\n" + OMITTED_MARKER.format(n=123456) + "last line\n"
    store.finish_run(run_id, outcome=Outcome.SUCCEEDED, ended_at=datetime.now(UTC), exit_code=0,
                     duration_seconds=2.0, stdout_tail=tail, stderr_tail="a warning\n",
                     stdout_path=f"{elsewhere}/{run_id}.out", stderr_path=f"{elsewhere}/{run_id}.err")
    running = claim(store, "big", far)
    store.close()

    code, out, _ = cli(tmp_path, url, "logs", "big", "--run", str(run_id))
    assert code == 0
    assert f"== run {run_id} (succeeded, exit 0, " in out and f"node {far}) ==" in out
    assert (f"the full output is on node '{far}' (host far-host) at {elsewhere}/{run_id}.out (and .err)"
            in out)
    assert "the head and tail the store keeps" in out
    assert tail in out and "a warning\n" in out

    code, out, _ = cli(tmp_path, url, "logs", "big", "--run", str(run_id), "--format", "json")
    [entry] = json.loads(out)
    assert entry["output"] == "stored" and entry["stdout"] == tail and far in entry["note"]
    assert entry["run"]["node"] == far and entry["run"]["stdout_path"] == f"{elsewhere}/{run_id}.out"

    code, out, _ = cli(tmp_path, url, "logs", "big", "--run", str(run_id), "--grep", "LAST")
    assert "last line\n" in out and "first line" not in out and f"node '{far}'" in out

    code, out, _ = cli(tmp_path, url, "logs", "big", "--run", str(running))
    assert f"running on node '{far}' (host far-host); its output is written there" in out

    code, out, _ = cli(tmp_path, url, "history", "big")
    assert len(out.splitlines()) == 3 and all(f" {far}" in line for line in out.splitlines()[1:])


def test_logs_on_the_node_that_ran_it_read_the_whole_file(tmp_path: Path) -> None:
    """More output than the store keeps: the node's own `jobfsm logs` reads the file; once the
    file is gone it shows the stored head and tail and says so."""
    url = f"sqlite:///{tmp_path / 'jobfsm.db'}"
    (tmp_path / "jobs").mkdir()
    command = "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    (tmp_path / "jobs" / "chatty.json").write_text(json.dumps(job_doc("chatty", command=command)))
    code, _, err = cli(tmp_path, url, "run", "chatty")
    assert code == 0, err
    store = open_store(url)
    [run] = store.list_runs("chatty")
    store.close()
    assert "bytes omitted" in run.stdout_tail and run.stdout_path and os.path.isabs(run.stdout_path)

    code, out, _ = cli(tmp_path, url, "logs", "chatty", "--format", "json")
    [entry] = json.loads(out)
    assert entry["output"] == "file" and entry["note"] == ""
    assert entry["stdout"].splitlines() == [f"line-{i}-" + "x" * 34 for i in range(3000)]

    os.remove(run.stdout_path)
    os.remove(str(run.stderr_path))
    code, out, _ = cli(tmp_path, url, "logs", "chatty")
    assert f"the output file {run.stdout_path} (and .err) is gone" in out
    assert "bytes omitted" in out and "line-0-" in out and "line-2999-" in out
