"""What an idle daemon costs: `jobfsm start` with N jobs and nothing due, against a bare Python
loop that wakes once a second, both measured over the same window from
``/proc/PID/task/*/schedstat`` (nanoseconds on the CPU, every thread).

    python bench/bench_idle.py [--jobs 10000] [--seconds 60] [--repeat 2]

Prints one markdown table: CPU % of one core for each, and their ratio. The jobs fire once a
year (``0 0 1 1 *``, enabled), so nothing is due in the window: what remains is heartbeats,
housekeeping and whatever the loop does when it wakes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scheduler import cpu_seconds
from jobgen import generate

BARE_LOOP = "import time\nwhile True:\n    time.sleep(1)\n"


def measure(jobs: int, seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(folder / "jobs", jobs, schedule="0 0 1 1 *")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "jobfsm", "start", "--jobs", str(folder / "jobs"), "--logs", str(folder / "logs")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        bare = subprocess.Popen([sys.executable, "-c", BARE_LOOP])
        try:
            log = folder / "logs" / "scheduler_main.log"
            deadline = time.monotonic() + 120
            while not (log.exists() and "settings:" in log.read_text()):
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit("the daemon did not start")
                time.sleep(0.2)
            time.sleep(5)  # start-up's last writes and the first heartbeat are not idling
            d0, b0, t0 = cpu_seconds(daemon.pid), cpu_seconds(bare.pid), time.monotonic()
            time.sleep(seconds)
            d1, b1, t1 = cpu_seconds(daemon.pid), cpu_seconds(bare.pid), time.monotonic()
        finally:
            for process in (daemon, bare):
                process.terminate()
                process.wait(30)
    window = t1 - t0
    return 100 * (d1 - d0) / window, 100 * (b1 - b0) / window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"idle CPU, {args.jobs} jobs, nothing due, {args.seconds:g} s windows (load {os.getloadavg()[0]:.1f})\n")
    print("| run | jobfsm start % | bare 1 s loop % | ratio |")
    print("|---|---|---|---|")
    for i in range(args.repeat):
        daemon, bare = measure(args.jobs, args.seconds)
        print(f"| {i + 1} | {daemon:.4f} | {bare:.4f} | {daemon / bare:.2f} |" if bare else f"| {i + 1} | {daemon:.4f} | 0 | - |")


if __name__ == "__main__":
    main()
