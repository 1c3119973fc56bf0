"""What ``jobfsm nodes`` costs the store: one ``Store.nodes()`` with N nodes and M running runs.

    python bench/bench_nodes.py [--nodes 3] [--running 1000] [--calls 50] [--dir FOLDER]

A SQLite file, and a fresh PostgreSQL schema when ``JOBFSM_TEST_POSTGRES`` names a server, get
``--nodes`` heartbeats and ``--running`` running runs spread over them; the median of ``--calls``
calls is shown, after checking the answer lists every node and every run. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import fresh_postgresql, fresh_sqlite

from jobfsm.model import Trigger
from jobfsm.store import Claim, open_store


def measure(url: str, nodes: int, running: int, calls: int) -> float:
    store = open_store(url)
    try:
        now = datetime.now(UTC)
        for i in range(nodes):
            store.heartbeat(f"node-{i}:1", pid=1, host=f"node-{i}", at=now)
        store.claim_runs([Claim(f"job-{k}", Trigger.SCHEDULE, f"node-{k % nodes}:1", now, now + timedelta(minutes=k))
                          for k in range(running)])
        infos = store.nodes(seen_within=3600)
        assert len(infos) == nodes and sum(len(i.running) for i in infos) == running
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            store.nodes(seen_within=3600)
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--running", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite file goes (default a temp folder)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="jobfsm-bench-"))
    rows = []
    with fresh_sqlite(folder) as url:
        rows.append(("SQLite", measure(url, args.nodes, args.running, args.calls)))
    server = os.environ.get("JOBFSM_TEST_POSTGRES")
    if server:
        with fresh_postgresql(server) as url:
            rows.append(("PostgreSQL", measure(url, args.nodes, args.running, args.calls)))
    print(f"| store | nodes | running runs | one nodes() call (median of {args.calls}) |")
    print("|---|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {args.nodes} | {args.running:,} | {seconds * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
