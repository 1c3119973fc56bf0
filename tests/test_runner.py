"""ProcessRunner with a real executor and real processes: the bound on concurrent runs, the
order of waiting tickets, and what a shutdown does to tickets that never got a slot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from jobfsm.executor import JobExecutor, JobResult
from jobfsm.model import JobConfig, Outcome, Trigger
from jobfsm.runner import ProcessRunner, Ticket


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


def test_at_most_max_workers_run_at_once_and_waiting_tickets_start_in_order(tmp_path: Path) -> None:
    """Each run appends 'start <id>' then 'end <id>' to one file: the interleaving shows how
    many ran at once, and in which order the waiting ones were started."""
    log = tmp_path / "trace.txt"
    executor = JobExecutor(tmp_path / "logs")
    results = Results(8)
    runner = ProcessRunner(executor, 2, results)
    try:
        for run_id in range(8):
            runner.submit(ticket(run_id, f"echo start {run_id} >> {log}; sleep 0.2; echo end {run_id} >> {log}", tmp_path))
        assert results.complete.wait(60), f"{len(results.items)} of 8 runs ended"
    finally:
        runner.close()
    running, peak, starts = 0, 0, []
    for line in log.read_text().splitlines():
        what, run_id = line.split()
        running += 1 if what == "start" else -1
        peak = max(peak, running)
        if what == "start":
            starts.append(int(run_id))
    assert peak == 2, f"{peak} runs at once with max_workers=2"
    assert starts == list(range(8)), "waiting tickets did not start oldest first"
    assert all(r.status is Outcome.SUCCEEDED for _, r in results.items)


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
        runner.submit(ticket(2, f"touch {marker}-2", tmp_path))
        runner.submit(ticket(3, f"touch {marker}-3", tmp_path))
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
