"""The one thread that waits for every launched run: an ``epoll`` over their pidfds and a heap
of their timeouts, so a burst of thousands of runs needs no thread per run, only a ``Popen``
each."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable

from jobfsm.runs.active import ActiveRun

log = logging.getLogger(__name__)


class Reaper:
    """One thread that waits for every launched run at once: an ``epoll`` over their pidfds,
    a heap of their timeouts, and an eventfd that wakes it for a nearer timeout or to stop.

    It only notices; the executor decides (``on_exit`` when a run's command ended,
    ``on_timeout`` when its time is up). A run leaves the reaper before either is called,
    so each run is handled once.
    """

    def __init__(self, on_exit: Callable[[ActiveRun], None], on_timeout: Callable[[ActiveRun], None]) -> None:
        self._on_exit = on_exit
        self._on_timeout = on_timeout
        self._lock = threading.Lock()
        self._epoll = select.epoll()
        self._wakeup = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wakeup, select.EPOLLIN)
        self._watched: dict[int, tuple[ActiveRun, int]] = {}
        """pidfd -> (run, key of its timeout or -1)."""
        self._timeouts: list[tuple[float, int]] = []
        """(deadline, key) of runs with a timeout; entries of runs gone are dropped lazily."""
        self._timed: dict[int, ActiveRun] = {}
        """key -> run, for the runs still watched that have a timeout."""
        self._keys = itertools.count()
        self._closed = False
        self._paused = 0
        """How many pause() calls are not yet resumed."""
        self._pauses = 0
        """How many pause() calls there have been: a poll that spans one is discarded."""
        self._resumed = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._loop, name="jobfsm-reaper", daemon=True)
        self._thread.start()

    def watch(self, run: ActiveRun) -> None:
        assert run.pidfd is not None
        wake = False
        with self._lock:
            key = -1
            if run.deadline is not None:
                key = next(self._keys)
                wake = not self._timeouts or run.deadline < self._timeouts[0][0]
                heapq.heappush(self._timeouts, (run.deadline, key))
                self._timed[key] = run
            self._watched[run.pidfd] = (run, key)
            self._epoll.register(run.pidfd, select.EPOLLIN)  # level-triggered: an exit already
        if wake:                                               # past is reported at once
            os.eventfd_write(self._wakeup, 1)

    def pause(self) -> None:
        with self._lock:
            self._paused += 1
            self._pauses += 1

    def resume(self) -> None:
        with self._lock:
            self._paused -= 1
            if not self._paused:
                self._resumed.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._resumed.notify_all()
        os.eventfd_write(self._wakeup, 1)
        self._thread.join(10)
        self._epoll.close()
        os.close(self._wakeup)

    def _take(self, fd: int) -> ActiveRun | None:
        """Stop watching the run of ``fd`` (lock held)."""
        item = self._watched.pop(fd, None)
        if item is None:
            return None
        run, key = item
        self._epoll.unregister(fd)
        self._timed.pop(key, None)
        if len(self._timeouts) > 64 + 2 * len(self._timed):  # mostly stale: rebuild, so a long
            self._timeouts = [t for t in self._timeouts if t[1] in self._timed]  # timeout does
            heapq.heapify(self._timeouts)  # not keep an entry per finished run for its duration
        return run

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._paused and not self._closed:
                    self._resumed.wait()
                if self._closed:
                    return
                pauses = self._pauses
                wait = max(0.0, self._timeouts[0][0] - time.monotonic()) if self._timeouts else -1.0
            events = self._epoll.poll(wait)
            with self._lock:
                if self._closed:
                    return
                if self._pauses != pauses:  # paused meanwhile: another thread may have handled
                    continue  # these runs since, and their pidfd numbers may be new runs' now
                ended, expired = self._collect(events)
            self._handle(ended, expired)

    def poll_now(self) -> None:
        """Handle, on the calling thread and without waiting, the runs that have ended and the
        timeouts that have passed. For the thread that paused the reaper (a burst)."""
        events = self._epoll.poll(0)
        with self._lock:
            ended, expired = self._collect(events)
        self._handle(ended, expired)

    def _collect(self, events: list[tuple[int, int]]) -> tuple[list[ActiveRun], list[ActiveRun]]:
        """Take the runs of ``events`` and of passed timeouts out of the watch (lock held)."""
        ended: list[ActiveRun] = []
        expired: list[ActiveRun] = []
        for fd, _mask in events:
            if fd == self._wakeup:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wakeup)
            elif (run := self._take(fd)) is not None:
                ended.append(run)
        now = time.monotonic()
        while self._timeouts and self._timeouts[0][0] <= now:
            _, key = heapq.heappop(self._timeouts)
            timed = self._timed.get(key)
            if timed is not None and timed.pidfd is not None and self._take(timed.pidfd):
                expired.append(timed)
        return ended, expired

    def _handle(self, ended: list[ActiveRun], expired: list[ActiveRun]) -> None:
        for run in ended:
            _guarded(self._on_exit, run)
        for run in expired:
            _guarded(self._on_timeout, run)


def _guarded(handler: Callable[[ActiveRun], None], run: ActiveRun) -> None:
    """One run's trouble must not stop the reaper, which waits for every other run."""
    try:
        handler(run)
    except Exception:
        log.exception("the reaper failed on run %s of job %r; it goes on with the others",
                      run.run_id, run.job_name)
