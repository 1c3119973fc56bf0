"""How the scheduler's runs are started and waited for: :class:`Ticket` (one run handed over),
the :class:`Runner` protocol the scheduler needs (tests give it a fake), and
:class:`ProcessRunner`, the daemon's: real processes through a :class:`JobExecutor`.

Why not a thread pool: a pool of N threads each running ``Popen`` then waiting makes every
start wait for a worker to win the GIL (up to the 5 ms switch interval behind the loop) and
every run cost a thread hand-off; measured on a burst of 10,000 short jobs, the pool's daemon
needed 4.5 to 5.8 times what bare ``Popen`` takes. Here the loop starts the processes itself and one
reaper thread waits for all of them (see :meth:`JobExecutor.launch`).
"""

from __future__ import annotations

import dataclasses
import functools
import signal
import threading
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from jobfsm.model import JobConfig, Outcome, Trigger
from jobfsm.runs.executor import JobExecutor, JobResult


@dataclass(frozen=True, slots=True)
class Ticket:
    """One run handed to a runner."""

    run_id: int
    job: JobConfig
    trigger: Trigger
    scheduled_for: datetime | None
    attempt: int


class Runner(Protocol):
    def submit(self, ticket: Ticket) -> None: ...

    def starting(self) -> bool:
        """True while submitted runs wait to be started: the scheduler then lets finished
        runs wait (a bounded time) rather than compete with the starts for the GIL."""
        ...

    def burst(self) -> AbstractContextManager[None]:
        """Many runs are about to be submitted: runs that end meanwhile are handled after, or
        by :meth:`collect`."""
        ...

    def collect(self) -> None:
        """Inside :meth:`burst`: handle the runs that have ended, on this thread, now."""
        ...

    def terminate_all(self, *, reason: str, grace_seconds: float = 0.0) -> None:
        """SIGTERM to every run's process group, and no more starts; returns at once. What a
        run's command leaves in its group gets SIGKILL ``grace_seconds`` later; the commands
        themselves are the caller's to :meth:`kill_all` (it keeps the clock)."""
        ...

    def kill_all(self, *, reason: str) -> None:
        """SIGKILL to every run's process group now, and no more starts; returns at once."""
        ...

    def terminate(self, run_id: int, *, reason: str) -> bool:
        """End one run as KILLED with ``reason`` (SIGTERM to its group, the grace period,
        SIGKILL); returns at once. False when the run is not this runner's (it ended)."""
        ...

    def close(self) -> None: ...


class ProcessRunner:
    """Starts runs through a :class:`JobExecutor`, at most ``max_workers`` at a time.

    A run starts on the calling thread: the loop, right after the batch that claimed it
    commits. The executor's one reaper thread waits for all of them. Beyond ``max_workers``
    running, tickets wait here in order and start as runs end, on the reaper's thread, so the
    loop never blocks on a slot.

    In a burst only one thread works at a time, because two threads that both want the GIL
    hand it over at every system call and ``Popen`` makes several: while the loop records the
    fires, the reaper is paused (:meth:`burst`) and the loop itself collects the runs that
    ended between its chunks (:meth:`collect`), so runs go on starting (their processes run on
    the other core meanwhile); then the reaper starts the rest as runs end, while the
    scheduler holds back the recording of finished runs (:meth:`starting`).

    Measured against a spawner thread fed by the loop (which lets the loop's recording of fires
    overlap ``fork``/``exec``): on a burst of 10,000 the spawner thread was slower, 2.4 against
    2.0 times bare ``Popen``, and its first run later, 10-15 ms against 6 ms. Two threads that
    both want the GIL hand it back and forth at every system call, and ``Popen`` makes several.
    """

    def __init__(
        self,
        executor: JobExecutor,
        max_workers: int,
        on_done: Callable[[Ticket, JobResult], None],
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        """``on_done(ticket, result)`` is called once for every ticket (on the reaper's thread,
        or the caller's for a run that could not start); ``on_idle()`` when the last waiting
        ticket has been started."""
        if max_workers < 1:
            raise ValueError(f"max_workers must be 1 or more, not {max_workers!r}")
        self.executor = executor
        self.max_workers = max_workers
        self._on_done = on_done
        self._on_idle = on_idle
        self._lock = threading.Lock()
        self._active = 0
        self._waiting: deque[Ticket] = deque()
        self._closed = False

    def submit(self, ticket: Ticket) -> None:
        with self._lock:
            if self._closed or self._active >= self.max_workers:
                self._waiting.append(ticket)
                return
            self._active += 1
        self._start_from(ticket)

    def burst(self) -> AbstractContextManager[None]:
        return self.executor.reaping_paused()

    def collect(self) -> None:
        self.executor.reap_now()

    def starting(self) -> bool:
        with self._lock:
            return bool(self._waiting) and not self._closed

    def _start_from(self, ticket: Ticket | None) -> None:
        """Start ``ticket`` (a slot is held for it), then waiting ones while runs fail to
        start (a loop, not recursion: thousands may wait)."""
        while ticket is not None:
            current = ticket
            not_started = self.executor.launch(
                current.job, current.run_id, scheduled_for=current.scheduled_for,
                on_done=functools.partial(self._ended, current),
            )
            if not_started is None:
                return
            self._on_done(current, not_started)
            ticket = self._next()

    def _ended(self, ticket: Ticket, result: JobResult) -> None:
        self._on_done(ticket, result)
        self._start_from(self._next())

    def _next(self) -> Ticket | None:
        """Pass a freed slot to the oldest waiting ticket, or release it."""
        with self._lock:
            if self._waiting and not self._closed:
                ticket = self._waiting.popleft()
                drained = not self._waiting
            else:
                self._active -= 1
                return None
        if drained and self._on_idle is not None:
            self._on_idle()
        return ticket

    def terminate_all(self, *, reason: str, grace_seconds: float = 0.0) -> None:
        """Waiting tickets end as not started (they must not start as runs are killed), then
        every run gets SIGTERM; returns at once (see :meth:`Runner.terminate_all`)."""
        self._cancel_waiting(reason)
        self.executor.signal_all(signal.SIGTERM, reason=reason, grace_seconds=grace_seconds)

    def kill_all(self, *, reason: str) -> None:
        """As :meth:`terminate_all`, with SIGKILL."""
        self._cancel_waiting(reason)
        self.executor.signal_all(signal.SIGKILL, reason=reason)

    def terminate(self, run_id: int, *, reason: str) -> bool:
        """A ticket still waiting for a slot ends at once as KILLED; a run in progress is ended
        by :meth:`JobExecutor.terminate` (the one path that ends a run, as at a timeout or a
        shutdown), on a thread of its own: its grace period must not hold up the caller."""
        with self._lock:
            ticket = next((t for t in self._waiting if t.run_id == run_id), None)
            if ticket is not None:
                self._waiting.remove(ticket)
        if ticket is not None:
            result = self.executor.not_started(ticket.job, run_id, f"{reason}, before it started")
            self._on_done(ticket, dataclasses.replace(result, status=Outcome.KILLED))
            return True
        if run_id not in self.executor.running():
            return False
        threading.Thread(
            target=self.executor.terminate, args=(run_id,), kwargs={"reason": reason},
            name=f"jobfsm-kill-{run_id}", daemon=True,
        ).start()
        return True

    def _cancel_waiting(self, reason: str) -> None:
        with self._lock:
            self._closed = True
            waiting, self._waiting = list(self._waiting), deque()
        for ticket in waiting:
            self._on_done(ticket, self.executor.not_started(
                ticket.job, ticket.run_id, f"{reason}, before its turn came (all workers were busy)"))

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.executor.close()
