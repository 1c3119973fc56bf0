"""ProcessRunner with a real executor and real processes: the bound on concurrent runs, the
order of waiting tickets, and what a shutdown does to tickets that never got a slot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from jobfsm.model import JobConfig, Outcome, Trigger
from jobfsm.runs.executor import JobExecutor, JobResult
from jobfsm.runs.runner import ProcessRunner, Ticket
from tests.conftest import wait_for


def ticket(run_id: int, command: str, cwd: Path) -> Ticket:
    job = JobConfig(name=f"job-{run_id}", schedule="* * * * *", command=command, working_directory=str(cwd), enabled=True)
    return Ticket(run_id, job, Trigger.SCHEDULE, datetime(2026, 1, 1, tzinfo=UTC), 0)


class Results:
    def __init__(self, expected: int) -> None:
        self.items: list[tuple[Ticket, JobResult]] = []
        self.expected = expected
        self.lock = threading.Lock()
        self.complete = threading.Event()

    def __call__(self, t: Ticket, result: JobResult) -> None:
        with self.lock:
            self.items.append((t, result))
            if len(self.items) >= self.expected:
                self.complete.set()


def read_trace(log: Path) -> list[tuple[str, int]]:
    return [(what, int(run_id)) for what, run_id in (line.split() for line in log.read_text().splitlines())]


def test_at_most_max_workers_run_at_once(tmp_path: Path) -> None:
    """Runs 0 and 1 wait for a go file that the test writes only once both have started
    (so two really ran at once); every run appends 'start N' and 'end N' to one file, and the
    interleaving never shows a third one running."""
    log, go = tmp_path / "trace.txt", tmp_path / "go"
    wait_go = f"i=0; while [ ! -e {go} ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done"
    executor = JobExecutor(tmp_path / "logs")
    results = Results(8)
    runner = ProcessRunner(executor, 2, results)
    try:
        for run_id in range(8):
            body = wait_go if run_id < 2 else "sleep 0.05"
            runner.submit(ticket(run_id, f"echo start {run_id} >> {log}; {body}; echo end {run_id} >> {log}", tmp_path))
        wait_for(lambda: log.exists() and len(read_trace(log)) >= 2, 30, "runs 0 and 1 to start together",
                 lambda: log.read_text() if log.exists() else "no trace")
        assert sorted(read_trace(log)) == [("start", 0), ("start", 1)]
        go.touch()
        assert results.complete.wait(60), f"{len(results.items)} of 8 runs ended"
    finally:
        runner.close()
    running, peak = 0, 0
    for what, _run_id in read_trace(log):
        running += 1 if what == "start" else -1
        peak = max(peak, running)
    assert peak == 2, f"{peak} runs at once with max_workers=2"
    assert all(r.status is Outcome.SUCCEEDED for _, r in results.items)


def test_waiting_tickets_start_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "trace.txt"
    executor = JobExecutor(tmp_path / "logs")
    results = Results(6)
    runner = ProcessRunner(executor, 1, results)
    try:
        for run_id in range(6):
            runner.submit(ticket(run_id, f"echo start {run_id} >> {log}", tmp_path))
        assert results.complete.wait(60), f"{len(results.items)} of 6 runs ended"
    finally:
        runner.close()
    assert [run_id for _, run_id in read_trace(log)] == list(range(6))
    assert [t.run_id for t, _ in results.items] == list(range(6))


def test_a_ticket_that_cannot_start_frees_its_slot_for_the_next(tmp_path: Path) -> None:
    executor = JobExecutor(tmp_path / "logs")
    results = Results(3)
    runner = ProcessRunner(executor, 1, results)
    try:
        runner.submit(ticket(1, "sleep 0.2", tmp_path))
        runner.submit(ticket(2, "true", tmp_path / "missing"))  # waits, then fails to start
        runner.submit(ticket(3, "true", tmp_path))  # must still run
        assert results.complete.wait(30), f"{len(results.items)} of 3 results"
    finally:
        runner.close()
    by_id = {t.run_id: r for t, r in results.items}
    assert by_id[1].status is Outcome.SUCCEEDED
    assert by_id[2].status is Outcome.NOT_STARTED and "does not exist" in by_id[2].message
    assert by_id[3].status is Outcome.SUCCEEDED


def test_terminate_all_ends_waiting_tickets_as_not_started_without_starting_them(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    executor = JobExecutor(tmp_path / "logs", kill_grace_seconds=0.5)
    results = Results(3)
    runner = ProcessRunner(executor, 1, results)
    try:
        runner.submit(ticket(1, "sleep 60", tmp_path))
        wait_for(lambda: executor.running() == [1], 30, "run 1 to start", lambda: str(executor.running()))
        runner.submit(ticket(2, f"touch {marker}-2", tmp_path))
        runner.submit(ticket(3, f"touch {marker}-3", tmp_path))
        assert runner.starting(), "tickets wait for a slot, yet the runner says none is waiting"
        runner.terminate_all(reason="killed at daemon shutdown")
        assert results.complete.wait(30), f"{len(results.items)} of 3 results"
    finally:
        runner.close()
    by_id = {t.run_id: r for t, r in results.items}
    assert by_id[1].status is Outcome.KILLED
    for run_id in (2, 3):
        assert by_id[run_id].status is Outcome.NOT_STARTED
        assert by_id[run_id].message == (
            "killed at daemon shutdown, before its turn came (all workers were busy)"
        )
    assert not list(tmp_path.glob("started-*")), "a waiting ticket started during the shutdown"
