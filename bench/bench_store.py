"""Cost per fire of recording a burst in the SQL store: one call per fire against the batch calls.

    python bench/bench_store.py [--fires 10000] [--chunk 256] [--rounds 3] [--dir FOLDER]

A burst of ``--fires`` fires due at the same second (one per job) is claimed, then each run is
finished, in chunks of ``--chunk``, each chunk in one ``store.batch()`` transaction, as the
daemon does:

- **one call per fire** (the baseline): ``claim_run`` for each fire, then ``finish_run`` for
  each result;
- **claim_runs / finish_runs**: one call per chunk.

Each variant gets a fresh database every round: a SQLite file, and a fresh PostgreSQL schema
when ``JOBFSM_TEST_POSTGRES`` names a server. Rounds are interleaved so every variant sees the
same machine; the median round is shown. Before timing, both variants are checked to store
the same runs. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import create_engine, text

from jobfsm.model import Outcome, Trigger
from jobfsm.store import Claim, Finish, RunRecord
from jobfsm.store.sql import SqlStore, normalize_url

T0 = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def burst(fires: int) -> list[Claim]:
    return [Claim(f"job-{i:05d}", Trigger.SCHEDULE, "bench-node", T0, T0) for i in range(fires)]


def result(run_id: int) -> Finish:
    """The finish of a job that printed a line and exited 0."""
    return Finish(
        run_id, outcome=Outcome.SUCCEEDED, ended_at=T0 + timedelta(seconds=2), exit_code=0,
        duration_seconds=1.25, stdout_tail="done\n",
        stdout_path=f"logs/runs/{run_id}.out", stderr_path=f"logs/runs/{run_id}.err",
    )


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def one_call_per_fire(store: SqlStore, claims: list[Claim], chunk: int) -> tuple[float, float]:
    ids: list[int] = []
    t0 = time.perf_counter()
    for part in chunks(claims, chunk):
        with store.batch():
            for c in part:
                run = store.claim_run(c)
                assert run is not None
                ids.append(run.id)
    t1 = time.perf_counter()
    for part in chunks(ids, chunk):
        with store.batch():
            for run_id in part:
                store.finish_run(result(run_id))
    return t1 - t0, time.perf_counter() - t1


def one_call_per_chunk(store: SqlStore, claims: list[Claim], chunk: int) -> tuple[float, float]:
    ids: list[int] = []
    t0 = time.perf_counter()
    for part in chunks(claims, chunk):
        with store.batch():
            runs = store.claim_runs(part)
        assert all(run is not None for run in runs)
        ids.extend(run.id for run in runs if run is not None)
    t1 = time.perf_counter()
    for part in chunks(ids, chunk):
        with store.batch():
            store.finish_runs([result(run_id) for run_id in part])
    return t1 - t0, time.perf_counter() - t1


Variant = Callable[[SqlStore, list[Claim], int], tuple[float, float]]
VARIANTS: dict[str, Variant] = {
    "one call per fire": one_call_per_fire,
    "claim_runs / finish_runs": one_call_per_chunk,
}


@contextmanager
def fresh_sqlite(folder: Path) -> Iterator[str]:
    path = folder / f"bench-{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def fresh_postgresql(server: str) -> Iterator[str]:
    schema = f"jobfsm_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(server))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def stored(store: SqlStore) -> list[RunRecord]:
    return [replace(run, id=0) for run in sorted(store.list_runs(), key=lambda run: run.id)]


def check_same_runs(fresh: Callable[[], Any]) -> None:
    seen = []
    for variant in VARIANTS.values():
        with fresh() as url:
            store = SqlStore(url)
            try:
                variant(store, burst(600), 256)
                seen.append(stored(store))
            finally:
                store.close()
    assert all(runs == seen[0] for runs in seen), "the variants stored different runs"


def measure(fresh: Callable[[], Any], fires: int, chunk: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    check_same_runs(fresh)
    claims = burst(fires)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name, variant in VARIANTS.items():
            with fresh() as url:
                store = SqlStore(url)
                try:
                    times[name].append(variant(store, claims, chunk))
                finally:
                    store.close()
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fires", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the SQLite files (default: a temp dir)")
    args = parser.parse_args(argv)
    backends: dict[str, Callable[[], Any]] = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
    backends["SQLite"] = lambda: fresh_sqlite(folder)
    server = os.environ.get("JOBFSM_TEST_POSTGRES")
    if server:
        backends["PostgreSQL"] = lambda: fresh_postgresql(server)
    try:
        results = {backend: measure(fresh, args.fires, args.chunk, args.rounds) for backend, fresh in backends.items()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{args.fires:,} fires in chunks of {args.chunk}, each chunk one batch() transaction, median of "
          f"{args.rounds} rounds; Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
          f"SQLite {sqlite3.sqlite_version}\n")
    print("| backend | variant | claim µs/fire | finish µs/fire | total µs/fire | vs baseline |")
    print("|---|---|---:|---:|---:|---:|")
    for backend, times in results.items():
        baseline = statistics.median(sum(t) for t in next(iter(times.values())))
        for name, samples in times.items():
            claim = statistics.median(t[0] for t in samples)
            finish = statistics.median(t[1] for t in samples)
            total = statistics.median(sum(t) for t in samples)
            print(f"| {backend} | {name} | {claim / args.fires * 1e6:.1f} | {finish / args.fires * 1e6:.1f} | "
                  f"{total / args.fires * 1e6:.1f} | {total / baseline:.3f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
