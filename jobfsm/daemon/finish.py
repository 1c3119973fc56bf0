"""What the store records of a run's result: the daemon's one translation from the executor's
:class:`JobResult` to the store's :class:`Finish` (neither side knows the other's fields)."""

from __future__ import annotations

from jobfsm.runs.executor import JobResult
from jobfsm.store import Finish


def finish_of(result: JobResult) -> Finish:
    return Finish(
        run_id=result.run_id, outcome=result.status, ended_at=result.end_time, exit_code=result.exit_code,
        duration_seconds=result.duration_seconds, signal=result.signal, message=result.message,
        stdout_tail=result.stdout, stderr_tail=result.stderr,
        stdout_path=result.stdout_path, stderr_path=result.stderr_path,
    )
