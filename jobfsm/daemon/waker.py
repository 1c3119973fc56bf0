"""What the daemon's loop sleeps on: a flag other threads set (a run ended, a signal came), and
the file descriptors that say something happened outside (the jobs folder changed, a trigger
was requested). So an idle daemon sleeps until its next fire or housekeeping step, not on a
one-second tick, and still reacts at once.

It has the interface of ``threading.Event`` (``set``, ``clear``, ``is_set``, ``wait``), which is
what the injected clock's ``wait`` takes.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Iterable


class Waker:
    """A ``threading.Event`` whose ``wait`` also returns when a watched descriptor is readable."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._watched: tuple[int, ...] = ()

    def watch(self, fds: Iterable[int | None]) -> None:
        """Wake on these descriptors too (``None``s are skipped); replaces the previous set.
        Their owners must read them when woken, or every wait returns at once."""
        self._watched = tuple(fd for fd in fds if fd is not None)

    def set(self) -> None:
        """Safe from any thread and from a signal handler (one ``write`` of 8 bytes)."""
        self._flag.set()
        with contextlib.suppress(BlockingIOError, OSError):
            os.eventfd_write(self._fd, 1)

    def clear(self) -> None:
        if not self._flag.is_set():
            return  # nothing was written (a count a racing set() leaves only costs one early wake)
        self._flag.clear()
        with contextlib.suppress(BlockingIOError, OSError):
            os.eventfd_read(self._fd)

    def is_set(self) -> bool:
        return self._flag.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Until set, a watched descriptor is readable, or ``timeout`` seconds passed; True if
        it was set (a readable descriptor alone returns False: its owner looks)."""
        if self._flag.is_set():
            return True
        poller = select.poll()
        for fd in (self._fd, *self._watched):
            poller.register(fd, select.POLLIN)
        ms = None if timeout is None else max(int(timeout * 1000 + 0.999), 0)
        with contextlib.suppress(InterruptedError):  # a signal: its handler set the flag if it mattered
            poller.poll(ms)
        return self._flag.is_set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
