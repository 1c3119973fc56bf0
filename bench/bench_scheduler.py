"""The scheduler under load: ``jobfsm start`` against APScheduler 3.x and bare ``Popen``, same run.

    python bench/bench_scheduler.py [--sizes 100,1000,10000] [--spread] [--workers 64]

Method, for each N (one scheduler at a time: they would compete for the cores otherwise):

- **What a job runs.** A tiny static C program (compiled here with ``cc``; a ``/bin/sh`` +
  ``date`` fallback when there is no compiler) whose first act is ``clock_gettime(REALTIME)``;
  it appends ``<job> <seconds>`` to one file with ``O_APPEND`` (a short line is one atomic
  write). That is the job's *own* start time: fork, exec and everything the scheduler did
  before are included, nothing after. Lateness = that time minus the fire's due second.
- **When jobs are due.** Default: every job has the schedule ``M * * * *`` for one minute ``M``
  chosen so that the boundary ``T0`` falls after start-up and a quiet window — all N due at
  the same second, exactly one burst inside the observation (a ``* * * * *`` estate fires
  the same burst every minute; pinning the minute keeps start-up and the idle window free of
  other bursts). ``--spread``: job *i* fires at minute ``M + i % 60`` (the estate spread over
  the hour) and the first ``--spread-minutes`` boundaries are observed; only the jobs due in
  them are expected. Burst is then the latest start after its own boundary, and the floor is
  measured for the jobs due at one boundary (N / 60).
- **Schedulers.** ``jobfsm start`` as a real process (``--max-workers``, a fresh SQLite store
  and logs folder in a temporary folder: the first start of a new installation) and
  APScheduler 3.x in its own process (``bench/aps_runner.py``: ``BackgroundScheduler``,
  ``CronTrigger.from_crontab``, ``ThreadPoolExecutor(--workers)`` running ``Popen(argv).wait()``),
  once with its defaults (``misfire_grace_time`` 1 s) and once with ``misfire_grace_time=None``
  and ``coalesce=False``.
- **Floor.** The same N commands started at once with bare ``subprocess.Popen``: from a thread
  pool of ``--workers`` threads each doing ``Popen().wait()`` (what APScheduler does) and from one
  thread calling ``Popen`` in a loop while another reaps; measured before and after the
  schedulers of that N, the best of the four is *the floor*. Burst = the last job's own start
  time minus the moment the floor began (for schedulers: minus ``T0``).
- **Metrics.** Start-up: process launch until jobfsm's ``started:`` line in
  ``logs/scheduler_main.log`` (its own time stamp) or APScheduler's ``ready``; for jobfsm also a
  restart on the same store (the usual case). Idle CPU: CPU time from
  ``/proc/PID/task/*/schedstat`` (nanoseconds on the CPU, every thread; ``utime + stime`` in
  clock ticks where there is no schedstat) over ``--idle`` seconds ending 2 s before ``T0``
  (nothing is due), as % of one core. Memory: ``VmRSS`` at the end of the
  idle window (loaded) and after the burst, and ``VmHWM`` (peak). Lateness p50/p99/max and the
  first job's lateness; missed = expected fires that never started, dup = extra starts of a
  fire. Burst CPU: the scheduler process's own CPU seconds from 2 s before ``T0`` to the end.
- **Ratios** are taken within the run (this machine is shared; load average printed):
  burst / floor, and p99 against APScheduler with the grace period off.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
STAMP_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (argc < 3) return 2;
    char line[256];
    int n = snprintf(line, sizeof line, "%s %lld.%09ld\n", argv[2], (long long)ts.tv_sec, ts.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0 || n <= 0 || n >= (int)sizeof line) return 1;
    return write(fd, line, (size_t)n) == n ? 0 : 1;
}
"""


# -- the job's command ---------------------------------------------------------------------------

def build_stamp(folder: Path) -> list[str]:
    """The command prefix that appends ``NAME TIME`` to a file: ``prefix + [file, name]``."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        source, binary = folder / "stamp.c", folder / "stamp"
        source.write_text(STAMP_C)
        for flags in (["-O2", "-static"], ["-O2"]):
            if subprocess.run([cc, *flags, "-o", str(binary), str(source)], capture_output=True).returncode == 0:
                return [str(binary)]
    script = folder / "stamp.sh"  # slower (sh, then date): lateness includes ~2 ms of it
    script.write_text('#!/bin/sh\necho "$2 $(date +%s.%N)" >> "$1"\n')
    script.chmod(0o755)
    return [str(script)]


def read_stamps(path: Path) -> list[tuple[str, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        name, _, stamp = line.partition(" ")
        if stamp:
            out.append((name, float(stamp)))
    return out


# -- /proc -----------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """CPU time of all the process's threads: nanoseconds on the CPU from each task's
    ``schedstat`` (exact), else ``utime + stime`` from ``stat`` (counted in clock ticks)."""
    try:
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def memory_mib(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def sleep_until(t: float) -> None:
    while (left := t - time.time()) > 0:
        time.sleep(min(left, 0.5))


# -- one scheduler, one burst ---------------------------------------------------------------------

@dataclass
class Result:
    n: int
    name: str
    expected: int
    startup: float | None = None
    restart: float | None = None
    idle_cpu: float | None = None
    rss_loaded: float | None = None
    rss_after: float | None = None
    hwm: float | None = None
    burst_cpu: float | None = None
    lateness: list[float] = field(default_factory=list)
    missed: int = 0
    dup: int = 0
    early: int = 0
    burst: float | None = None
    load: str = ""
    note: str = ""


class Watch:
    """Reads a growing text file from where it stopped (start-up lines, stamps)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.rest = path, 0, ""

    def lines(self) -> list[str]:
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except FileNotFoundError:
            return []
        data, self.rest = self.rest + data, ""
        lines = data.split("\n")
        self.rest = lines.pop()
        return lines


def wait_ready(proc: subprocess.Popen[bytes], watch: Watch, kind: str, deadline: float) -> float:
    """Unix time at which the scheduler said it runs (its own time stamp)."""
    while time.time() < deadline:
        for line in watch.lines():
            if kind == "jobfsm" and " started: " in line and " daemon " in line:
                return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
            if kind == "aps" and line.startswith("ready "):
                return float(line.split()[1])
        if proc.poll() is not None:
            raise SystemExit(f"{kind} exited {proc.returncode} during start-up; see {watch.path.parent}")
        time.sleep(0.05)
    raise SystemExit(f"{kind} did not start within the deadline")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(300)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Plan:
    n: int
    spread: bool
    spread_minutes: int
    idle: float
    workers: int
    stamp: list[str]
    restart: bool = True


def schedules(plan: Plan, t0: float) -> tuple[list[str], dict[int, float]]:
    """Each job's cron expression, and the due time of each job fired inside the observation."""
    minute = int(t0 // 60) % 60
    if not plan.spread:
        return [f"{minute} * * * *"] * plan.n, {i: t0 for i in range(plan.n)}
    exprs = [f"{(minute + i % 60) % 60} * * * *" for i in range(plan.n)]
    due = {i: t0 + 60 * (i % 60) for i in range(plan.n) if i % 60 < plan.spread_minutes}
    return exprs, due


def run_scheduler(kind: str, label: str, plan: Plan, work: Path, startup_guess: float,
                  extra: list[str]) -> Result:
    if work.exists():
        shutil.rmtree(work)
    jobs_dir, logs, out = work / "jobs", work / "logs", work / "stamps.txt"
    jobs_dir.mkdir(parents=True)
    lead = startup_guess + plan.idle + 4 + plan.n / 20_000  # start-up, idle window, writing files
    t0 = math.ceil((time.time() + lead) / 60) * 60
    exprs, due = schedules(plan, t0)
    names = [f"job-{i:05d}" for i in range(plan.n)]
    if kind == "jobfsm":
        for name, expr in zip(names, exprs, strict=True):
            (jobs_dir / f"{name}.json").write_text(json.dumps({
                "name": name, "schedule": expr, "timezone": "UTC", "command": [*plan.stamp, str(out), name],
                "working_directory": str(work), "enabled": True, "timeout_seconds": 60,
            }))
        cmd = [sys.executable, "-m", "jobfsm", "start", "--jobs", str(jobs_dir), "--logs", str(logs),
               "--store", f"sqlite:///{work / 'store.db'}", "--max-workers", str(plan.workers),
               "--grace-seconds", "300"]  # a clean stop records every finished run first
        watched = logs / "scheduler_main.log"
    else:
        spec = work / "jobs.json"
        spec.write_text(json.dumps([{"name": name, "schedule": expr, "argv": [*plan.stamp, str(out), name]}
                                    for name, expr in zip(names, exprs, strict=True)]))
        cmd = [sys.executable, str(HERE / "aps_runner.py"), str(spec), "--workers", str(plan.workers), *extra]
        watched = work / "stdout.txt"
    result = Result(plan.n, label, len(due))
    launched = time.time()
    with open(work / "stdout.txt", "wb") as so, open(work / "stderr.txt", "wb") as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, cwd=work)
    try:
        ready = wait_ready(proc, Watch(watched), "jobfsm" if kind == "jobfsm" else "aps", t0 + 600)
        result.startup = ready - launched
        if ready > t0 - 1:
            result.note = f"start-up {result.startup:.1f} s overran the boundary; fires of T0 lost"
        idle_from = max(ready + 1, t0 - 2 - plan.idle)
        sleep_until(idle_from)
        cpu0 = cpu_seconds(proc.pid)
        sleep_until(t0 - 2)
        cpu1 = cpu_seconds(proc.pid)
        window = time.time() - idle_from
        if window >= 5:
            result.idle_cpu = 100 * (cpu1 - cpu0) / window
        mem = memory_mib(proc.pid)
        result.rss_loaded = mem["VmRSS"]
        last_due = max(due.values(), default=t0)
        stamps = Watch(out)
        seen: set[str] = set()
        expected = {names[i] for i in due}
        newest, complete_at = time.time(), None
        while True:
            now = time.time()
            fresh = [line.partition(" ")[0] for line in stamps.lines() if line]
            if fresh:
                newest = now
                seen.update(fresh)
            if complete_at is None and expected <= seen:
                complete_at = now
            if complete_at is not None and now - complete_at > 2:  # time for duplicates to show
                break
            if now > last_due + 5 and now - newest > 10:  # nothing more is coming
                break
            if now > last_due + 120 or proc.poll() is not None:
                break
            time.sleep(0.2)
        result.load = load_average()
        result.burst_cpu = cpu_seconds(proc.pid) - cpu1 if proc.poll() is None else None
        if proc.poll() is None:
            mem = memory_mib(proc.pid)
            result.rss_after, result.hwm = mem["VmRSS"], mem["VmHWM"]
    finally:
        stop(proc)
    if kind == "jobfsm" and proc.returncode == 0 and plan.restart:
        launched = time.time()
        with open(work / "stdout2.txt", "wb") as so, open(work / "stderr2.txt", "wb") as se:
            again = subprocess.Popen(cmd, stdout=so, stderr=se, cwd=work)
        watch = Watch(watched)
        watch.offset = watched.stat().st_size
        try:
            result.restart = wait_ready(again, watch, "jobfsm", time.time() + 600) - launched
        finally:
            stop(again)
    score(result, read_stamps(out), {names[i]: t for i, t in due.items()})
    return result


def score(result: Result, stamps: list[tuple[str, float]], due: dict[str, float]) -> None:
    starts: dict[str, list[float]] = {}
    for name, t in stamps:
        if name not in due:
            continue
        if t < due[name] - 0.5:
            result.early += 1
            continue
        starts.setdefault(name, []).append(t)
    result.missed = len(due) - len(starts)
    result.dup = sum(len(v) - 1 for v in starts.values())
    result.lateness = sorted(min(v) - due[name] for name, v in starts.items())
    if result.lateness and not result.missed:
        result.burst = max(min(v) - due[name] for name, v in starts.items())
    if result.early:
        result.note += f" {result.early} start(s) before their due second"


# -- the floor --------------------------------------------------------------------------------------

def floor_pool(n: int, workers: int, stamp: list[str], out: Path) -> float:
    out.unlink(missing_ok=True)

    def one(i: int) -> None:
        subprocess.Popen([*stamp, str(out), f"job-{i:05d}"]).wait()

    with ThreadPoolExecutor(workers) as pool:
        t0 = time.time()
        list(pool.map(one, range(n)))
    return max(t for _, t in read_stamps(out)) - t0


def floor_loop(n: int, stamp: list[str], out: Path) -> tuple[float, float, float]:
    """Seconds to start ``n`` commands from one loop, and where they went: CPU seconds of this
    process and of the children."""
    out.unlink(missing_ok=True)
    cpu0, kids0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    procs: queue.SimpleQueue[subprocess.Popen[bytes] | None] = queue.SimpleQueue()

    def reap() -> None:
        while (p := procs.get()) is not None:
            p.wait()

    reaper = threading.Thread(target=reap)
    reaper.start()
    t0 = time.time()
    for i in range(n):
        procs.put(subprocess.Popen([*stamp, str(out), f"job-{i:05d}"]))
    procs.put(None)
    reaper.join()
    took = max(t for _, t in read_stamps(out)) - t0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, time.process_time() - cpu0, kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime


# -- the table --------------------------------------------------------------------------------------

def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f}" if x >= 0.0095 else f"{x * 1000:.1f}"


def num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--spread", action="store_true", help="spread the fires over the hour")
    parser.add_argument("--spread-minutes", type=int, default=2, help="boundaries observed with --spread")
    parser.add_argument("--workers", type=int, default=64, help="worker threads of every scheduler and the floor")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of the idle-CPU window")
    parser.add_argument("--only", default="jobfsm,aps-default,aps-nograce",
                        help="schedulers to run, of jobfsm, aps-default, aps-nograce")
    parser.add_argument("--no-restart", action="store_true", help="skip jobfsm's restart time")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    chosen = args.only.split(",")
    started = time.time()
    loads = [load_average()]
    rows: list[Result] = []
    floors: dict[int, dict[str, float]] = {}
    floor_cpu: dict[int, tuple[float, float, float]] = {}  # N -> the fastest loop floor's split
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        stamp = build_stamp(root)
        guesses: dict[str, float] = {}  # seconds of start-up per job, from the previous size
        for n in sizes:
            plan = Plan(n, args.spread, args.spread_minutes, args.idle, args.workers, stamp, not args.no_restart)
            pools: list[float] = []
            loops: list[tuple[float, float, float]] = []

            at_once = math.ceil(n / 60) if args.spread else n  # the most jobs due at one second

            def measure_floor() -> None:
                pools.append(floor_pool(at_once, args.workers, stamp, root / "floor.txt"))  # noqa: B023
                loops.append(floor_loop(at_once, stamp, root / "floor.txt"))  # noqa: B023

            measure_floor()
            for key, kind, label, extra in (
                ("jobfsm", "jobfsm", "jobfsm start", []),
                ("aps-default", "aps", "APScheduler 3 (grace 1 s, default)", []),
                ("aps-nograce", "aps", "APScheduler 3 (grace off)", ["--no-grace"]),
            ):
                if key not in chosen:
                    continue
                guess = 3.0 + 1.5 * n * guesses.get(key, 0.002)
                print(f"# N={n} {label}: started {time.strftime('%H:%M:%S')}, load {load_average()}",
                      file=sys.stderr, flush=True)
                result = run_scheduler(kind, label, plan, root / f"{key}-{n}", guess, extra)
                if result.note and "overran" in result.note and result.startup:  # once more, with room
                    result = run_scheduler(kind, label, plan, root / f"{key}-{n}",
                                           3.0 + 1.5 * result.startup, extra)
                if result.startup:  # the per-job part of start-up (about 1 s is imports)
                    guesses[key] = max(result.startup - 1.0, 0.0) / n
                rows.append(result)
                print(f"#   -> start-up {num(result.startup, '.2f')} s, missed {result.missed}, "
                      f"p99 {ms(pct(result.lateness, 0.99))} ms, burst {num(result.burst, '.2f')} s {result.note}",
                      file=sys.stderr, flush=True)
            measure_floor()
            floor_cpu[n] = min(loops)
            floors[n] = {"pool": min(pools), "loop": floor_cpu[n][0]}
            loads.append(load_average())
    print(f"Scheduler benchmark, {'spread over the hour' if args.spread else 'all due at once'}, "
          f"{args.workers} workers, {os.cpu_count()} CPUs, load average (1/5/15 min) "
          f"{' → '.join(loads)}, {(time.time() - started) / 60:.0f} min in all; job = "
          f"{'static C stamp' if stamp[0].endswith('stamp') else 'sh + date stamp'}.\n")
    print("| N | scheduler | start-up s | restart s | idle CPU % | RSS loaded MB | RSS after MB | peak MB "
          "| first ms | p50 ms | p99 ms | max ms | missed | dup | burst s | burst / floor "
          "| p99 / APS off | burst CPU s | load |")
    print("|" + "---|" * 19)
    for n in sizes:
        floor = min(floors[n].values())
        reference = next((r for r in rows if r.n == n and "grace off" in r.name), None)
        ref_p99 = pct(reference.lateness, 0.99) if reference else None
        for key, value in (("bare Popen, pool", floors[n]["pool"]), ("bare Popen, loop", floors[n]["loop"])):
            print(f"| {n:,} | {key} | | | | | | | | | | | 0 | 0 | {value:.2f} | {value / floor:.2f} | | | |")
        for r in (r for r in rows if r.n == n):
            p99 = pct(r.lateness, 0.99)
            missed = f"{r.missed} ({100 * r.missed / r.expected:.0f} %)" if r.missed else "0"
            print(
                f"| {n:,} | {r.name}{' — ' + r.note.strip() if r.note else ''} | {num(r.startup, '.2f')} "
                f"| {num(r.restart, '.2f')} | {num(r.idle_cpu, '.3f')} | {num(r.rss_loaded, '.0f')} "
                f"| {num(r.rss_after, '.0f')} | {num(r.hwm, '.0f')} | {ms(r.lateness[0] if r.lateness else None)} "
                f"| {ms(statistics.median(r.lateness) if r.lateness else None)} | {ms(p99)} "
                f"| {ms(r.lateness[-1] if r.lateness else None)} | {missed} | {r.dup} | {num(r.burst, '.2f')} "
                f"| {num(r.burst / floor if r.burst else None, '.2f')} "
                f"| {num(p99 / ref_p99 if p99 is not None and ref_p99 else None, '.2f')} "
                f"| {num(r.burst_cpu, '.1f')} | {r.load} |"
            )
    print("\nWhere the floor's time goes (bare Popen in a loop, its fastest run; busy = CPU / (cores x seconds)):\n")
    print("| jobs at once | seconds | parent CPU s | children CPU s | cores busy |")
    print("|---|---|---|---|---|")
    for n, (took, parent, kids) in sorted(floor_cpu.items()):
        print(f"| {n:,} | {took:.2f} | {parent:.2f} | {kids:.2f} | {100 * (parent + kids) / ((os.cpu_count() or 1) * took):.0f} % |")


if __name__ == "__main__":
    main()
