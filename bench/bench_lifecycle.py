"""Memory and time of the lifecycle at 10,000 and 40,000 jobs: unregistered vs ``add_model``.

Both variants use the same :class:`jobfsm.lifecycle.Lifecycle` (same machine, same table, same
side-effect hooks, a store that discards writes) and drive every job through start and
succeed the same way (``machine.events[name].trigger(job)``); the only difference is that the
registered variant first calls ``machine.add_model(job)``, as the usual transitions idiom
does. Memory is what ``tracemalloc`` sees retained after driving a sample of jobs, divided by
the sample size; time is CPU seconds for all n jobs, measured in a second, untraced pass.

Run: ``python bench/bench_lifecycle.py [N ...]``; prints a Markdown table.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from datetime import UTC, datetime

from jobfsm.lifecycle import JobModel, Lifecycle
from jobfsm.model import JobState, Trigger

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MEMORY_SAMPLE = 5_000


class _FixedClock:
    def now(self) -> datetime:
        return T0


class _NullStore:
    def set_state(self, job: str, state: JobState, at: datetime) -> None:
        pass


class _RegisteredJob(JobModel):
    """No ``__slots__`` here: ``add_model`` sets ~17 bound partials on each model."""


def _drive(n: int, *, register: bool) -> list[JobModel]:
    """Create, (register,) start and succeed ``n`` jobs on a fresh Lifecycle."""
    lc = Lifecycle(_NullStore(), clock=_FixedClock())  # type: ignore[arg-type]
    jobs = []
    for i in range(n):
        job: JobModel
        if register:
            job = _RegisteredJob(f"job-{i:05d}", JobState.IDLE)
            lc.machine.add_model(job, initial=job.state)
        else:
            job = lc.model_for(f"job-{i:05d}", enabled=True)
        lc.start(job, trigger=Trigger.SCHEDULE)
        lc.succeed(job)
        jobs.append(job)
    assert all(j.state == "succeeded" for j in jobs)
    return jobs


def bytes_per_job(n: int, *, register: bool) -> float:
    """Python memory retained per job (tracemalloc; includes the Lifecycle, amortized)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        jobs = _drive(n, register=register)
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - base) / len(jobs)
    finally:
        tracemalloc.stop()


def cpu_seconds(n: int, *, register: bool) -> float:
    """CPU seconds of this process (not wall time: the figure survives a busy machine).
    Measured without tracemalloc, which slows every allocation several times."""
    started = time.process_time()
    _drive(n, register=register)
    return time.process_time() - started


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [10_000, 40_000]
    print(
        f"Memory: tracemalloc over the first {MEMORY_SAMPLE:,} jobs (the cost per job does not"
        " depend on n), scaled to n. Time: CPU seconds to create and drive all n jobs.\n"
    )
    print("| jobs | variant | bytes/job | MiB total | CPU seconds | µs/job |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        results = {}
        for register in (False, True):
            per_job = bytes_per_job(min(n, MEMORY_SAMPLE), register=register)
            seconds = cpu_seconds(n, register=register)
            results[register] = (per_job, seconds)
            label = "add_model (registered)" if register else "unregistered (jobfsm)"
            print(
                f"| {n:,} | {label} | {per_job:,.0f} | {per_job * n / 2**20:.1f} "
                f"| {seconds:.2f} | {seconds / n * 1e6:.0f} |"
            )
        (m0, t0), (m1, t1) = results[False], results[True]
        print(f"| {n:,} | ratio registered/unregistered | {m1 / m0:.1f}x | | {t1 / t0:.1f}x | |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
