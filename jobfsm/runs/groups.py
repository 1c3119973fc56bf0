"""Process groups and pidfds: signalling a run's group, finding its members, waiting for them.

Waiting is event-driven. CPython 3.11's ``Popen.wait(timeout=...)`` is itself a loop of sleeps
(1 ms doubling up to 50 ms), which adds latency to every short run. Where Linux has
``pidfd_open`` (5.3+) a process is waited for by polling its pidfd; elsewhere the callers fall
back to ``Popen.wait(timeout=...)`` or one bounded sleep. Processes of a group other than its
leader are not our children: they are found in ``/proc`` (only when ``killpg(pgid, 0)`` says
some remain, so a normal run pays one syscall) and their pidfds are polled as well.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import signal
import threading
import time

log = logging.getLogger(__name__)


def pidfd_open(pid: int) -> int | None:
    """A pidfd for ``pid``; None where there are none, or when the process is gone."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:  # ENOSYS on old kernels, ESRCH for a process already gone
        return None
    return fd


def pidfds_work() -> bool:
    """True if this system can open pidfds and signal through them."""
    fd = pidfd_open(os.getpid())
    if fd is None or not hasattr(signal, "pidfd_send_signal"):
        return False
    os.close(fd)
    return True


def poll_ms(timeout: float | None) -> int | None:
    """``timeout`` seconds as ``poll()`` takes it (None: for ever)."""
    return None if timeout is None else max(0, math.ceil(timeout * 1000))


def pidfd_exited(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def wait_pidfds(fds: list[int], timeout: float) -> None:
    """Until every one of these processes has exited, or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    pending = set(fds)
    for fd in fds:
        poller.register(fd, select.POLLIN)
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        for fd, _event in poller.poll(poll_ms(remaining)):
            poller.unregister(fd)
            pending.discard(fd)


def killpg(pgid: int, sig: int) -> None:
    """Signal the group; a group already gone is no error."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # a member changed its uid (setuid program); nothing we can do
        log.warning("not allowed to signal process group %s with %s", pgid, signal_name(sig))


def group_alive(pgid: int) -> bool:
    """True if any process (zombies included) is still in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes of a group, from /proc."""
    members: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and fields[0] not in (b"Z", b"X") and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def wait_group(pgid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the group's live processes to end; True if some remain."""
    if not group_alive(pgid):
        return False
    members = group_members(pgid)
    if not members:
        return False
    if not hasattr(os, "pidfd_open"):
        # no pidfds on this platform: one bounded wait, then the caller escalates
        threading.Event().wait(timeout)
        return bool(group_members(pgid))
    fds = [fd for fd in map(pidfd_open, members) if fd is not None]
    try:
        wait_pidfds(fds, timeout)
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    return bool(group_members(pgid))


def signal_name(sig: int) -> str:
    """``SIGTERM (15)``, for messages and logs."""
    try:
        return f"{signal.Signals(sig).name} ({sig})"
    except ValueError:
        return str(sig)
