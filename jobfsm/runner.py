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

import functools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from jobfsm.executor import JobExecutor, JobResult
from jobfsm.model import JobConfig, Trigger


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
        """True while submitted runs are being started (some wait and a slot is free for
        them): the scheduler then lets finished runs wait, rather than compete with the starts."""
        ...

    def terminate_all(self, *, reason: str) -> None: ...

    def close(self) -> None: ...


class ProcessRunner:
    """Starts runs through a :class:`JobExecutor`, at most ``max_workers`` at a time.

    One spawner thread starts them, in the order they were submitted, and the executor's one
    reaper thread waits for all of them. The loop only queues a ticket (a few microseconds)
    and goes on recording the next fires while the spawner is inside ``fork``/``exec``, where
    it holds no GIL: the two overlap. While the spawner has work (:meth:`starting`), the
    scheduler leaves finished runs for later: a thread busy recording results would make the
    spawner wait for the GIL after each of its system calls. When ``max_workers`` runs are
    going, the spawner waits for one to end; the loop never blocks on a slot.
    """

    def __init__(
        self,
        executor: JobExecutor,
        max_workers: int,
        on_done: Callable[[Ticket, JobResult], None],
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        """``on_done(ticket, result)`` is called for every ticket, on the reaper's or the
        spawner's thread; ``on_idle()`` when the last waiting ticket has been started."""
        if max_workers < 1:
            raise ValueError(f"max_workers must be 1 or more, not {max_workers!r}")
        self.executor = executor
        self.max_workers = max_workers
        self._on_done = on_done
        self._on_idle = on_idle
        self._cond = threading.Condition()
        self._active = 0
        self._waiting: deque[Ticket] = deque()
        self._closed = False
        self._spawning = threading.Lock()
        """Held while a ticket is being launched: terminate_all() waits for it, so a run that
        was starting at that moment is registered, and terminated, too."""
        self._thread: threading.Thread | None = None

    def submit(self, ticket: Ticket) -> None:
        with self._cond:
            self._waiting.append(ticket)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._spawn_loop, name="jobfsm-spawner", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _spawn_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._waiting or self._active >= self.max_workers):
                    self._cond.wait()
                if self._closed:
                    return
                ticket = self._waiting.popleft()
                self._active += 1
                drained = not self._waiting
            with self._spawning:
                not_started = None
                if self._closed:  # terminate_all() came between: this one must not start
                    not_started = self._shutdown_result(ticket)
                else:
                    not_started = self.executor.launch(
                        ticket.job, ticket.run_id, scheduled_for=ticket.scheduled_for,
                        on_done=functools.partial(self._ended, ticket),
                    )
            if not_started is not None:
                self._ended(ticket, not_started)
            if drained and self._on_idle is not None:
                self._on_idle()

    def starting(self) -> bool:
        with self._cond:
            return bool(self._waiting) and self._active < self.max_workers and not self._closed

    def _ended(self, ticket: Ticket, result: JobResult) -> None:
        with self._cond:  # the slot first, so the spawner can go on at once
            self._active -= 1
            self._cond.notify()
        self._on_done(ticket, result)

    def _shutdown_result(self, ticket: Ticket) -> JobResult:
        return self.executor.not_started(
            ticket.job, ticket.run_id, f"{self._reason}, before its turn came (all workers were busy)")

    _reason = "the daemon stopped"

    def terminate_all(self, *, reason: str) -> None:
        """Waiting tickets end as not started (they must not start as runs are killed), then
        every run is terminated."""
        with self._cond:
            self._closed = True
            self._reason = reason
            waiting, self._waiting = list(self._waiting), deque()
            self._cond.notify_all()
        for ticket in waiting:
            self._on_done(ticket, self._shutdown_result(ticket))
        with self._spawning:  # a launch in progress registers its run before we terminate all
            self.executor.terminate_all(reason=reason)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(30)
        self.executor.close()
