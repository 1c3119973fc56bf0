"""Benchmark of jobfsm.runs.executor against bare subprocess calls; prints a markdown table.

    python bench/bench_executor.py [--iterations 400] [--runs 200] [--dir FOLDER]

1. Overhead per run: ``JobExecutor.execute`` of ``["/bin/true"]`` vs ``subprocess.run(["/bin/true"])``
   in the same process, interleaved so both see the same machine; medians. Target <= 1.5x.
2. Start rate: 200 runs submitted at once to a ``ThreadPoolExecutor`` (16 and 200 workers),
   measured from each run's own ``start_time`` (taken right before its ``Popen``), vs 200 bare
   ``Popen`` calls in a loop. Target >= 0.7x of bare.
3. Memory: the process's RSS (sampled every 10 ms from ``/proc/self/status``) while a job
   prints 1 GB (``head -c 1000000000 /dev/zero``): before, peak, after.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from jobfsm.model import JobConfig, Outcome
from jobfsm.runs.executor import JobExecutor


def job(command: str | tuple[str, ...], cwd: Path, name: str = "bench") -> JobConfig:
    return JobConfig(
        name=name, schedule="* * * * *", command=command, working_directory=str(cwd), enabled=True
    )


def vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def same_work_by_hand(cwd: Path, folder: Path, i: int, env: dict[str, str]) -> None:
    """What execute() must do anyway, written inline: two new output files, own session, env."""
    with open(folder / f"{i}.out", "wb") as out, open(folder / f"{i}.err", "wb") as err:
        subprocess.run(
            ["/bin/true"], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True, check=True,
        )


def overhead(executor: JobExecutor, cwd: Path, ids: itertools.count[int], n: int) -> dict[str, float]:
    true_job = job(("/bin/true",), cwd)
    by_hand = cwd / "by-hand"
    by_hand.mkdir()
    env = dict(os.environ)
    times: dict[str, list[float]] = {"ours": [], "bare": [], "hand": []}
    for i in range(20):  # warm up every path
        executor.execute(true_job, next(ids))
        subprocess.run(["/bin/true"], check=True)
        same_work_by_hand(cwd, by_hand, -i - 1, env)
    for i in range(n):  # interleaved, so that all three see the same machine load
        t = time.perf_counter()
        result = executor.execute(true_job, next(ids))
        times["ours"].append(time.perf_counter() - t)
        assert result.status is Outcome.SUCCEEDED, result.message
        t = time.perf_counter()
        subprocess.run(["/bin/true"], check=True)
        times["bare"].append(time.perf_counter() - t)
        t = time.perf_counter()
        same_work_by_hand(cwd, by_hand, i, env)
        times["hand"].append(time.perf_counter() - t)
    o, b, h = (statistics.median(times[k]) for k in ("ours", "bare", "hand"))
    return {"ours_ms": o * 1000, "bare_ms": b * 1000, "hand_ms": h * 1000, "ratio": o / b,
            "hand_ratio": o / h}


def start_rate(
    executor: JobExecutor, cwd: Path, ids: itertools.count[int], runs: int, workers: int
) -> float:
    true_job = job(("/bin/true",), cwd)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        t0 = datetime.now(UTC)
        futures = [pool.submit(executor.execute, true_job, next(ids)) for _ in range(runs)]
        results = [f.result() for f in futures]
    assert all(r.status is Outcome.SUCCEEDED for r in results)
    last = max(r.start_time for r in results)
    return runs / (last - t0).total_seconds()


def bare_start_rate(runs: int) -> float:
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["/bin/true"]) for _ in range(runs)]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.wait()
    return runs / elapsed


def memory(executor: JobExecutor, cwd: Path, ids: itertools.count[int]) -> dict[str, float]:
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, vm_rss_kib())
            stop.wait(0.01)

    before = vm_rss_kib()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    result = executor.execute(job("head -c 1000000000 /dev/zero", cwd, name="big"), next(ids))
    elapsed = time.perf_counter() - t
    stop.set()
    sampler.join()
    after = vm_rss_kib()
    assert result.status is Outcome.SUCCEEDED, result.message
    size = Path(result.stdout_path or "").stat().st_size
    Path(result.stdout_path or "").unlink()
    return {
        "before_mib": before / 1024,
        "peak_mib": peak / 1024,
        "after_mib": after / 1024,
        "seconds": elapsed,
        "bytes": size,
        "tail_chars": len(result.stdout),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--dir", default=None,
        help="folder for the logs and output files (default: the system's temporary folder); "
        "its file system's file-creation cost is part of every run",
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="jobfsm-bench-", dir=args.dir))
    try:
        executor = JobExecutor(root / "logs")
        ids = itertools.count(1)
        oh = overhead(executor, root, ids, args.iterations)
        bare = statistics.median(bare_start_rate(args.runs) for _ in range(3))
        rates = {
            w: statistics.median(start_rate(executor, root, ids, args.runs, w) for _ in range(3))
            for w in (16, 200)
        }
        mem = memory(executor, root, ids)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} at the end of the run, "
          f"output files in {root.parent}\n")
    print("| measure | jobfsm executor | bare subprocess | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| time per `/bin/true` run (median of {args.iterations}) | {oh['ours_ms']:.2f} ms "
        f"| {oh['bare_ms']:.2f} ms | {oh['ratio']:.2f}x | <= 1.5x |"
    )
    print(
        f"| same, vs `subprocess.run` with the same two new output files, session, cwd and env "
        f"| {oh['ours_ms']:.2f} ms | {oh['hand_ms']:.2f} ms | {oh['hand_ratio']:.2f}x | |"
    )
    for workers, rate in rates.items():
        print(
            f"| runs started per second, {args.runs} at once, {workers} workers (median of 3) "
            f"| {rate:.0f}/s | {bare:.0f}/s | {rate / bare:.2f}x | >= 0.7x |"
        )
    print(
        f"| RSS while a job prints {mem['bytes'] / 1e9:.0f} GB "
        f"({mem['seconds']:.1f} s, {mem['bytes'] / mem['seconds'] / 1e6:.0f} MB/s) "
        f"| before {mem['before_mib']:.1f} MiB, peak {mem['peak_mib']:.1f} MiB "
        f"(+{mem['peak_mib'] - mem['before_mib']:.1f}), after {mem['after_mib']:.1f} MiB "
        f"| | | flat |"
    )


if __name__ == "__main__":
    main()
