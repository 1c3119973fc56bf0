"""What the store records of a run's result: the daemon's one translation from the executor's
:class:`JobResult` to the store's :class:`Finish` (neither side knows the other's fields)."""

from __future__ import annotations

from dataclasses import replace

from jobfsm.runs.executor import JobResult
from jobfsm.store import Finish

REFUSED_TEXTS = ("recorded without its output tails and message: the store refused one of them "
                 "(scheduler_main.log says why); the output files hold the whole output")
"""The message of a run whose texts the store refused (:func:`without_texts`)."""
REFUSED_NOTE = "its result is recorded without its output tails and message (the output files hold the whole output)"
"""What the main log says after the store's reason when it refused a run's texts."""


def finish_of(result: JobResult) -> Finish:
    return Finish(
        run_id=result.run_id, outcome=result.status, ended_at=result.end_time, exit_code=result.exit_code,
        duration_seconds=result.duration_seconds, signal=result.signal, message=result.message,
        stdout_tail=result.stdout, stderr_tail=result.stderr,
        stdout_path=result.stdout_path, stderr_path=result.stderr_path,
    )


def without_texts(finish: Finish) -> Finish:
    """``finish`` without the texts a job's output or a message put in it, for a store that
    refused one of them (:class:`jobfsm.errors.StoreValueError`): how the run ended (status,
    exit code, signal, times, output files) is still recorded, and the next try is not refused
    again."""
    return replace(finish, message=REFUSED_TEXTS, stdout_tail="", stderr_tail="")
