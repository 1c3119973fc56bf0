"""How long run control takes, against a real ``jobfsm start`` daemon and a SQLite file.

- kill: from ``service.kill_run`` being called to its return with the run recorded killed
  (the daemon woken by the store's bell, SIGTERM to the group; ``sleep`` ends on it), and the
  part of it until the daemon had taken the request;
- follow: from a line being written by a running job to ``service.follow_output`` yielding it.

    .venv/bin/python bench/bench_control.py [--kills 20] [--lines 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from jobfsm.service import JobManagementService
from jobfsm.store.sql import SqlStore


def _wait(predicate: object, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError("timed out")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--lines", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="jobfsm-bench-control-"))
    jobs, logs = root / "jobs", root / "logs"
    jobs.mkdir()
    url = f"sqlite:///{root / 'store.db'}"
    base = {"schedule": "0 0 1 1 *", "working_directory": "/tmp", "enabled": True}
    (jobs / "slow.json").write_text(json.dumps({"name": "slow", "command": "sleep 300", **base}))
    (jobs / "talker.json").write_text(json.dumps({
        "name": "talker", "command": f"for i in $(seq {args.lines}); do date +%s.%N; sleep 0.1; done", **base}))
    jobfsm = str(Path(sys.executable).parent / "jobfsm")
    daemon = subprocess.Popen([jobfsm, "start", "--jobs", str(jobs), "--logs", str(logs), "--store", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = SqlStore(url)
    service = JobManagementService(jobs, logs, store)  # the daemon's --logs, where the output files are
    try:
        _wait(service.daemon_alive)
        totals, pickups = [], []
        for i in range(args.kills):
            request = store.request_trigger("slow", user="bench", at=datetime.now(UTC))
            run_id = _wait(lambda r=request: store.get_trigger_request(r.id).run_id)
            t0 = time.monotonic()
            [run] = service.kill_run("slow", "bench", run_id=int(run_id))  # type: ignore[arg-type]
            totals.append(time.monotonic() - t0)
            kill = store.get_kill_request(i + 1)  # one request per kill, numbered from 1
            assert kill.claimed_at is not None and run.outcome is not None and run.outcome.value == "killed"
            pickups.append((kill.claimed_at - kill.requested_at).total_seconds())
        print(f"kill, {args.kills} runs: call to recorded killed median {statistics.median(totals) * 1000:.0f} ms, "
              f"p95 {_pct(totals, 0.95) * 1000:.0f} ms; request taken by the daemon median "
              f"{statistics.median(pickups) * 1000:.1f} ms, max {max(pickups) * 1000:.1f} ms")
        store.request_trigger("talker", user="bench", at=datetime.now(UTC))
        lags: list[float] = []
        pending = ""
        for piece in service.follow_output("talker"):
            if piece.stream != "stdout":
                continue
            now = time.time()
            pending += piece.text
            *lines, pending = pending.split("\n")
            lags.extend(now - float(line) for line in lines if line)
        print(f"follow, {len(lags)} lines: written to printed median {statistics.median(lags) * 1000:.0f} ms, "
              f"p95 {_pct(lags, 0.95) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms (poll every 0.2 s)")
    finally:
        service.close()
        store.close()
        daemon.terminate()
        daemon.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
