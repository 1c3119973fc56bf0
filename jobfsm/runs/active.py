"""A run in progress: the state that ``terminate()``, the reaper and a supervising thread share."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from jobfsm.model import JobConfig, Outcome
from jobfsm.runs.groups import killpg

if TYPE_CHECKING:
    from jobfsm.runs.executor import JobResult


@dataclass(eq=False, slots=True)
class ActiveRun:
    """One run whose process group may still be alive. The first cause of its end wins: a run
    that already timed out stays ``TIMED_OUT`` when it is terminated as well."""

    run_id: int
    job: JobConfig
    proc: subprocess.Popen[bytes]
    pidfd: int | None
    paths: tuple[str, str]
    start_time: datetime
    t0: float
    """The executor clock's monotonic() when the run began (for its duration)."""
    on_done: Callable[[JobResult], None] | None = None
    """Where :meth:`JobExecutor.launch` delivers the result (None for :meth:`JobExecutor.execute`)."""
    deadline: float | None = None
    """time.monotonic() at which the run times out (launched runs; None: no timeout)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    exited: threading.Event = field(default_factory=threading.Event)
    """Set once the leader (the command itself) has been reaped."""
    done: threading.Event = field(default_factory=threading.Event)
    """Set once the executing thread has finished with the run's process group."""
    cause: Outcome | None = None
    """TIMED_OUT or KILLED once either was decided; the first one wins."""
    reason: str = ""
    term_deadline: float | None = None
    """time.monotonic() at which the grace period after SIGTERM ends."""
    last_signal: int | None = None
    escalated: bool = False
    """SIGKILL had to be sent because something outlived the grace period."""

    @property
    def job_name(self) -> str:
        return self.job.name

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the leader's pid is the group's id

    def decide(self, cause: Outcome, reason: str, grace: float, *, final: bool = False) -> None:
        """The first cause wins; ``final``: a later kill of the same cause says how the run was
        finally ended (its reason replaces the earlier one), and its grace may only shorten."""
        with self.lock:
            if self.cause is None or (final and self.cause is cause):
                self.cause = cause
                self.reason = reason
            deadline = time.monotonic() + grace
            if self.term_deadline is None or (final and deadline < self.term_deadline):
                self.term_deadline = deadline

    def signal_group(self, sig: int) -> None:
        if self.done.is_set():  # the group is gone; its id may belong to someone else now
            return
        with self.lock:
            self.last_signal = sig
            if sig == signal.SIGKILL:
                self.escalated = True
        killpg(self.pgid, sig)
