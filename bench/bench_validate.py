"""Time ``jobfsm validate`` against ``check-jsonschema`` on the same 10,000 job files, same run.

    python bench/bench_validate.py [--count 10000] [--repeat 3]

jobfsm does schema + cron + time zone + file name + duplicate checks; check-jsonschema does the
schema alone. Both run as fresh processes (start-up included), the median of ``--repeat`` runs is
kept, and the result is a ratio (this machine is noisy; ratios measured in one run are not).
Also reports ``jobfsm --help`` start-up time against a bare ``python -c pass``.

``--against DIR`` also times ``jobfsm validate`` of another checkout (its ``jobfsm`` package
imported through ``PYTHONPATH``, same interpreter, same files), interleaved with this one's runs,
and prints the ratio: what a change costs, measured in one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jobgen import generate

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], repeat: int, ok_codes: tuple[int, ...] = (0,)) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode not in ok_codes:
            raise SystemExit(f"{cmd[:3]} exited {proc.returncode}: {proc.stderr.decode()[:500]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", metavar="DIR", help="another checkout to compare validate with")
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    jobfsm = str(bindir / "jobfsm")
    checker = shutil.which("check-jsonschema", path=str(bindir)) or "check-jsonschema"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "jobs"
        paths = [str(p) for p in generate(folder, args.count)]
        ours = timed([jobfsm, "validate", str(folder)], args.repeat)
        theirs = timed(
            [checker, "--schemafile", str(ROOT / "schemas" / "job.schema.json"), *paths], args.repeat
        )
        versus = _against(args.against, folder, args.repeat) if args.against else None
    bare = timed([sys.executable, "-c", "pass"], 20)
    help_time = timed([jobfsm, "--help"], 20)
    print(f"| what ({args.count:,} files) | seconds | ratio |")
    print("|---|---|---|")
    print(f"| check-jsonschema (schema only) | {theirs:.2f} | 1.00 |")
    print(f"| jobfsm validate (schema + cron + zone + names + lint) | {ours:.2f} | {ours / theirs:.2f} |")
    print(f"| python -c pass | {bare * 1000:.0f} ms | 1.00 |")
    print(f"| jobfsm --help | {help_time * 1000:.0f} ms | {help_time / bare:.2f} |")
    if versus is not None:
        other, this = versus
        print(f"| jobfsm validate of {args.against} (interleaved) | {other:.2f} | 1.00 |")
        print(f"| jobfsm validate of this checkout (interleaved) | {this:.2f} | {this / other:.2f} |")


def _against(other: str, folder: Path, repeat: int) -> tuple[float, float]:
    """(median seconds of the other checkout's validate, of this one's), run alternately."""
    code = "import sys; from jobfsm.cli import main; sys.argv[0] = 'jobfsm'; main()"
    envs = ({**os.environ, "PYTHONPATH": str(Path(other).resolve())}, {**os.environ, "PYTHONPATH": str(ROOT)})
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(max(repeat, 5)):
        for env, out in zip(envs, times, strict=True):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code, "validate", str(folder)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


if __name__ == "__main__":
    main()
