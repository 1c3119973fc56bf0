"""Several nodes on one database: fires claimed and finished per second, and failover times.

    python bench/bench_cluster.py throughput [--fires 10000] [--rounds 3]
    python bench/bench_cluster.py failover [--kills 10] [--dead-after 10]
    python bench/bench_cluster.py burst [--jobs 3000] [--rounds 2]

``throughput``: ``--fires`` no-op fires due at once (one per job, ``overlap: skip``, so claimed
exclusive), recorded by 1, 2 and 3 node processes on one PostgreSQL database (a fresh schema
each round, from ``JOBFSM_TEST_POSTGRES``) and by one node on a SQLite file. Each node does
what the daemon does with a burst: the fires it comes first for (:func:`claim_delay`, rendezvous
hashing) in chunks of 256, each chunk one transaction of ``claim_runs`` then ``finish_runs``;
then the others' fires, whose claims come back empty (and :meth:`claimed_fires` says they are
taken), as a node that claims ``CLAIM_STEP_SECONDS`` later would. The figure is fires / the
time until every node is done; duplicates are counted from the runs table.

``failover``: three ``jobfsm start`` processes on one database (each its own ``JOBFSM_HOST``, so
they go by heartbeats), a job with ``retries: 1`` triggered; the node that runs it is killed
with -9 (and its job with it, as when a host dies); the time to ``lost`` and to the retry's
start is measured; the node is started again; ``--kills`` times.

``burst``: ``--jobs`` ``* * * * *`` jobs (``true``) under one ``jobfsm start`` on PostgreSQL,
then under three on the same database and folder (each its own ``JOBFSM_HOST``), alternating
for ``--rounds``; for one minute's fires each: missed and duplicate fires, the burst (from the
minute to the last run's end, as the store recorded them) and each node's share of the runs.
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from jobfsm.daemon.cluster import claim_delay
from jobfsm.model import Outcome, RunStatus, Trigger
from jobfsm.store import Claim, Finish
from jobfsm.store.sql import SqlStore, normalize_url

T0 = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
CHUNK = 256


def _finish(run_id: int) -> Finish:
    return Finish(run_id, Outcome.SUCCEEDED, T0 + timedelta(seconds=1), exit_code=0, duration_seconds=0.01)


def node_worker(url: str, node: str, nodes: list[str], fires: int, start: Any, done: Any) -> None:
    store = SqlStore(url)
    store.warm_up()
    jobs = [f"job-{i:05d}" for i in range(fires)]
    mine = [j for j in jobs if claim_delay(node, nodes, j, T0) == 0.0]
    others = [j for j in jobs if claim_delay(node, nodes, j, T0) > 0.0]
    start.wait()
    t0 = time.perf_counter()
    won = 0
    for part in (mine, others):
        for i in range(0, len(part), CHUNK):
            chunk = part[i:i + CHUNK]
            if part is others:  # as the daemon does for fires another node comes first for
                taken = store.claimed_fires([(j, T0, 0) for j in chunk])
                chunk = [j for j in chunk if (j, T0, 0) not in taken]
                if not chunk:
                    continue
            with store.batch():
                runs = store.claim_runs([Claim(j, Trigger.SCHEDULE, node, T0, T0, exclusive=True) for j in chunk])
                empty = [(j, T0, 0) for j, r in zip(chunk, runs, strict=True) if r is None]
                if empty:
                    store.claimed_fires(empty)
                claimed = [r.id for r in runs if r is not None]
                won += len(claimed)
                store.finish_runs([_finish(r) for r in claimed])
    done.put((node, won, time.perf_counter() - t0))
    store.close()


@contextmanager
def pg_schema(server: str) -> Any:
    schema = f"jobfsm_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(server))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in server else "?"
    try:
        yield f"{server}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def one_burst(url: str, n: int, fires: int) -> tuple[float, int, dict[str, int]]:
    SqlStore(url).close()  # migrate once
    ctx = mp.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    nodes = [f"node-{i}" for i in range(1, n + 1)]
    procs = [ctx.Process(target=node_worker, args=(url, node, nodes, fires, start, done)) for node in nodes]
    for p in procs:
        p.start()
    time.sleep(2.0)  # every node connected and warmed up
    start.set()
    results = [done.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r[2] for r in results)
    store = SqlStore(url)
    with store._read() as conn:
        rows = conn.execute(text("SELECT count(*) FROM runs")).scalar_one()
        keys = conn.execute(text(
            "SELECT count(*) FROM (SELECT DISTINCT job, scheduled_for, attempt FROM runs) AS k")).scalar_one()
        unfinished = conn.execute(text("SELECT count(*) FROM runs WHERE status <> 'succeeded'")).scalar_one()
    store.close()
    duplicates = rows - keys + (sum(r[1] for r in results) - fires)
    assert rows == fires and unfinished == 0, (rows, unfinished)
    return elapsed, duplicates, {r[0]: r[1] for r in results}


def throughput(args: argparse.Namespace) -> None:
    server = os.environ.get("JOBFSM_TEST_POSTGRES")
    variants: list[tuple[str, int]] = [("SQLite", 1)]
    if server:
        variants += [("PostgreSQL", n) for n in (1, 2, 3)]
    figures: dict[tuple[str, int], list[tuple[float, int, dict[str, int]]]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for backend, n in variants:
            if backend == "SQLite":
                with tempfile.TemporaryDirectory() as tmp:
                    figures[(backend, n)].append(one_burst(f"sqlite:///{tmp}/bench.db", n, args.fires))
            else:
                assert server
                with pg_schema(server) as url:
                    figures[(backend, n)].append(one_burst(url, n, args.fires))
    print(f"{args.fires:,} no-op fires due at once, claimed and finished; median of {args.rounds} rounds; "
          f"{platform.python_version()}, {os.cpu_count()} cores\n")
    print("| store | nodes | seconds | fires/s | duplicates | fires per node |")
    print("|---|---:|---:|---:|---:|---|")
    for (backend, n), rounds in figures.items():
        rounds.sort(key=lambda r: r[0])
        elapsed, _, share = rounds[len(rounds) // 2]
        print(f"| {backend} | {n} | {elapsed:.2f} | {args.fires / elapsed:,.0f} | "
              f"{sum(r[1] for r in rounds)} | {' / '.join(str(share[k]) for k in sorted(share))} |")


# -- failover --------------------------------------------------------------------------------

def failover(args: argparse.Namespace) -> None:
    server = os.environ.get("JOBFSM_TEST_POSTGRES")
    if not server:
        sys.exit("bench_cluster.py failover: set JOBFSM_TEST_POSTGRES to a PostgreSQL URL")
    jobfsm = str(Path(sys.executable).parent / "jobfsm")
    with tempfile.TemporaryDirectory() as tmp, pg_schema(server) as url:
        root = Path(tmp)
        jobs, out = root / "jobs", root / "out"
        jobs.mkdir()
        out.mkdir()
        (jobs / "long.json").write_text(json.dumps({
            "name": "long", "schedule": "0 0 1 1 *", "command": 'echo "$JOBFSM_RUN_ID $$" >> pids.txt; sleep 600',
            "working_directory": str(out), "enabled": True, "retries": 1, "retry_delay_seconds": 1,
        }))
        SqlStore(url).close()
        procs: dict[str, subprocess.Popen[bytes]] = {}

        def start(node: str) -> None:
            env = {**os.environ, "JOBFSM_HOST": f"bench-{node}"}
            procs[node] = subprocess.Popen(
                [jobfsm, "start", "--jobs", str(jobs), "--logs", str(root / f"logs-{node}"), "--store", url,
                 "--node", node, "--dead-after", str(args.dead_after), "--grace-seconds", "1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)

        for node in ("n1", "n2", "n3"):
            start(node)
        store = SqlStore(url)
        lost_s: list[float] = []
        retry_s: list[float] = []
        try:
            deadline = time.time() + 30
            while len([n for n in store.nodes(seen_within=args.dead_after) if n.alive]) < 3:
                assert time.time() < deadline, "the daemons did not start"
                time.sleep(0.2)
            for _ in range(args.kills):
                for run in store.list_runs("long", status=RunStatus.RUNNING):  # end the previous retry
                    pid = _poll(lambda r=run.id: _pid_of(out, r), 10, "the retry's process")
                    with suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                _poll(lambda: not store.list_runs("long", status=RunStatus.RUNNING), 30, "the last retry to end")
                request = store.request_trigger("long", user="bench", at=datetime.now(UTC)).id
                run_id = _poll(lambda r=request: store.get_trigger_request(r).run_id, 10, "a node to take the trigger")
                victim = store.get_run(run_id).node
                job_pid = _poll(lambda r=run_id: _pid_of(out, r), 10, "the job to start")
                killed = time.time()
                os.kill(procs[victim].pid, signal.SIGKILL)
                os.killpg(job_pid, signal.SIGKILL)
                procs[victim].wait()
                _poll(lambda r=run_id: store.get_run(r).status is RunStatus.LOST, 60, "the run to be lost")
                lost_s.append(time.time() - killed)
                _poll(lambda: any(r.trigger is Trigger.RETRY and r.status is RunStatus.RUNNING
                                  for r in store.list_runs("long")), 60, "the retry to start")
                retry_s.append(time.time() - killed)
                start(victim)
                print(f"kill {len(lost_s)}: lost after {lost_s[-1]:.1f} s, retry after {retry_s[-1]:.1f} s",
                      file=sys.stderr)
        except BaseException:
            for run in store.list_runs("long"):
                print(f"run {run.id}: {run.trigger.value} {run.status.value} on {run.node} attempt {run.attempt} "
                      f"{run.message!r}", file=sys.stderr)
            for node in procs:
                log = root / f"logs-{node}" / "scheduler_main.log"
                print(f"--- {node}:", log.read_text()[-1500:] if log.exists() else "(no log)", file=sys.stderr)
            raise
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for line in (out / "pids.txt").read_text().splitlines() if (out / "pids.txt").exists() else []:
                with suppress(ProcessLookupError):
                    os.killpg(int(line.split()[1]), signal.SIGKILL)
            store.close()
    print(f"kill -9 of the node running a job with retries: 1, --dead-after {args.dead_after:g}, "
          f"{args.kills} kills, 3 nodes\n")
    print("| from kill -9 to | median s | worst s |")
    print("|---|---:|---:|")
    print(f"| run marked lost | {statistics.median(lost_s):.1f} | {max(lost_s):.1f} |")
    print(f"| retry started on a survivor | {statistics.median(retry_s):.1f} | {max(retry_s):.1f} |")


# -- burst -----------------------------------------------------------------------------------

def burst(args: argparse.Namespace) -> None:
    server = os.environ.get("JOBFSM_TEST_POSTGRES")
    if not server:
        sys.exit("bench_cluster.py burst: set JOBFSM_TEST_POSTGRES to a PostgreSQL URL")
    rows: dict[int, list[tuple[float, float, int, int, dict[str, int]]]] = {1: [], 3: []}
    for _ in range(args.rounds):
        for daemons in (1, 3):
            rows[daemons].append(one_minute(server, args.jobs, daemons))
            print(f"{daemons} daemon(s): burst {rows[daemons][-1][1]:.2f} s", file=sys.stderr)
    print(f"{args.jobs:,} jobs due at one minute, `jobfsm start` on one PostgreSQL database, "
          f"{args.rounds} rounds; {platform.python_version()}, {os.cpu_count()} cores\n")
    print("| daemons | first start s | burst s (median) | burst / one daemon's | missed | duplicates | runs per node |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    one = statistics.median(r[1] for r in rows[1])
    for daemons, results in rows.items():
        results.sort(key=lambda r: r[1])
        first, span, _, _, share = results[len(results) // 2]
        print(f"| {daemons} | {first:.2f} | {span:.2f} | {span / one:.2f} | {sum(r[2] for r in results)} | "
              f"{sum(r[3] for r in results)} | {' / '.join(str(share[k]) for k in sorted(share))} |")


def one_minute(server: str, jobs: int, daemons: int) -> tuple[float, float, int, int, dict[str, int]]:
    """(first start after the minute s, burst s, missed, duplicates, runs by node) of one minute's
    fires under ``daemons`` processes."""
    jobfsm = str(Path(sys.executable).parent / "jobfsm")
    with tempfile.TemporaryDirectory() as tmp, pg_schema(server) as url:
        root = Path(tmp)
        folder = root / "jobs"
        folder.mkdir()
        for i in range(jobs):
            name = f"burst-{i:04d}"
            (folder / f"{name}.json").write_text(json.dumps({
                "name": name, "schedule": "* * * * *", "command": ["true"],
                "working_directory": "/tmp", "enabled": True}))
        SqlStore(url).close()
        procs = [subprocess.Popen(
            [jobfsm, "start", "--jobs", str(folder), "--logs", str(root / f"logs-{i}"), "--store", url,
             "--node", f"n{i}", "--max-workers", "64"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "JOBFSM_HOST": f"bench-{i}"})
            for i in range(1, daemons + 1)]
        store = SqlStore(url)
        try:
            for i in range(1, daemons + 1):
                log = root / f"logs-{i}" / "scheduler_main.log"
                _poll(lambda log=log: log.exists() and " started: " in log.read_text(), 60, f"daemon {i} to start")
            _poll(lambda: len([n for n in store.nodes(seen_within=10) if n.alive]) == daemons, 30, "every node alive")
            if 60 - time.time() % 60 < 10:  # every daemon must know the others before the fire
                time.sleep(60 - time.time() % 60 + 1)
            minute = datetime.fromtimestamp((time.time() // 60 + 1) * 60, UTC)
            time.sleep(max(0.0, minute.timestamp() - time.time()))

            def fires() -> list[Any]:
                with store._read() as conn:
                    return conn.execute(text(
                        "SELECT job, node, status, started_at, ended_at FROM runs WHERE scheduled_for = :m"),
                        {"m": minute}).all()

            def all_ended() -> list[Any] | None:
                seen = fires()
                ended = {r.job for r in seen if r.ended_at is not None}
                return seen if len(ended) >= jobs else None

            seen = _poll(all_ended, 240, "every fire of the minute to end")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(60)
            store.close()
    keys = {r.job for r in seen}
    share: dict[str, int] = {}
    for r in seen:
        share[r.node] = share.get(r.node, 0) + 1
    first = min(r.started_at for r in seen) - minute
    span = max(r.ended_at for r in seen) - minute
    return first.total_seconds(), span.total_seconds(), jobs - len(keys), len(seen) - len(keys), share


def _pid_of(out: Path, run_id: int) -> int | None:
    """The pid of the run's job process (the job writes its run id and pid as it starts)."""
    path = out / "pids.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return next((int(pid) for rid, pid in (line.split() for line in lines) if int(rid) == run_id), None)


def _poll(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--fires", type=int, default=10_000)
    t.add_argument("--rounds", type=int, default=3)
    f = sub.add_parser("failover")
    f.add_argument("--kills", type=int, default=10)
    f.add_argument("--dead-after", type=float, default=10.0)
    b = sub.add_parser("burst")
    b.add_argument("--jobs", type=int, default=3_000)
    b.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    {"throughput": throughput, "failover": failover, "burst": burst}[args.what](args)


if __name__ == "__main__":
    main()
