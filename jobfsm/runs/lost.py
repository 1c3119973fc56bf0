"""The processes of lost runs: found in ``/proc`` by the tag in their environment, and ended.

Every run's environment names it (``JOBFSM_JOB``, ``JOBFSM_RUN_ID``, and ``JOBFSM_NODE_PID``,
the pid of the jobfsm process that started it; see :func:`jobfsm.runs.spawn.run_env`), and
whatever it starts inherits that. :func:`end_run_processes` finds a lost run's processes by
it, after the process that started them died (see ``Scheduler.reap_lost``).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Collection
from dataclasses import dataclass

from jobfsm.runs.groups import pidfd_exited, pidfd_open, pidfds_work, signal_name, wait_pidfds

log = logging.getLogger(__name__)

_KILLED_WAIT_SECONDS = 1.0
"""How long end_run_processes() waits for SIGKILLed processes to be gone before it counts them."""


@dataclass(frozen=True, slots=True)
class RunTag:
    """What every process of a run carries in its environment (see :func:`jobfsm.runs.spawn.run_env`)."""

    job: str
    run_id: int
    node_pid: int
    """The pid of the jobfsm process (daemon, or ``jobfsm run``) that started the run."""


@dataclass(frozen=True, slots=True)
class ProcessesEnded:
    """What :func:`end_run_processes` did to the processes of one run."""

    ended: int = 0
    """Processes that are gone now (on SIGTERM or SIGKILL)."""
    killed: int = 0
    """How many of all of them had to be sent SIGKILL."""
    left: int = 0
    """Processes still there a second after SIGKILL (stuck in the kernel), or not ours to signal."""


def end_run_processes(
    tags: Collection[RunTag], *, grace_seconds: float
) -> dict[RunTag, ProcessesEnded] | None:
    """End every process on this host whose environment names one of ``tags``: SIGTERM,
    ``grace_seconds`` for them to go, then SIGKILL to what is left (and to what they started
    meanwhile). None if this system cannot tell (no ``/proc`` or no pidfds); nothing is signalled then.

    Only for runs whose starting process is gone: a live daemon's runs carry its pid, and are
    never looked at. A process is signalled through a pidfd opened *before* its environment
    was read and checked to be still alive *after*, so a pid reused by another process in
    between is never signalled. Whatever group or session a process is in, its environment
    is inherited (``setsid`` does not shed it); a process started with a cleared environment
    (``env -i``) is not found.
    """
    wanted = set(tags)
    if not wanted:
        return {}
    if not os.path.isdir("/proc") or not pidfds_work():
        return None
    found: dict[int, tuple[RunTag, int]] = {}
    killed: set[int] = set()
    try:
        _find_tagged(wanted, found)
        for _tag, fd in found.values():
            _pidfd_signal(fd, signal.SIGTERM)
        wait_pidfds([fd for _tag, fd in found.values()], grace_seconds)
        for _round in range(3):  # they may have started others before they went
            _find_tagged(wanted, found)
            alive = [pid for pid, (_tag, fd) in found.items() if not pidfd_exited(fd)]
            if not alive:
                break
            for pid in alive:
                _pidfd_signal(found[pid][1], signal.SIGKILL)
                killed.add(pid)
            wait_pidfds([found[pid][1] for pid in alive], _KILLED_WAIT_SECONDS)
        ends = dict.fromkeys(wanted, ProcessesEnded())
        for pid, (tag, fd) in found.items():
            gone, was = pidfd_exited(fd), ends[tag]
            ends[tag] = ProcessesEnded(was.ended + gone, was.killed + (pid in killed), was.left + (not gone))
    finally:
        for _tag, fd in found.values():
            os.close(fd)
    return ends


def _find_tagged(wanted: set[RunTag], found: dict[int, tuple[RunTag, int]]) -> None:
    """Add to ``found`` (pid -> (tag, pidfd)) the live processes named by one of ``wanted``."""
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or (pid := int(entry)) == me or pid in found:
            continue
        if _run_tag(pid) not in wanted:  # a cheap look first: most processes are not runs
            continue
        fd = pidfd_open(pid)
        if fd is None:  # gone meanwhile
            continue
        # Read again now that the pidfd holds the process, and check it still lives: then what
        # was read is that process's, not a newcomer's that took over a freed pid.
        tag = _run_tag(pid)
        if tag in wanted and not pidfd_exited(fd):
            assert tag is not None
            found[pid] = (tag, fd)
        else:
            os.close(fd)


def _run_tag(pid: int) -> RunTag | None:
    """The run named by the environment a process was started with, if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:  # gone, or another user's (and then not ours to signal either)
        return None
    if b"JOBFSM_NODE_PID=" not in environ:
        return None
    values: dict[bytes, bytes] = {}
    for item in environ.split(b"\0"):
        if item.startswith(b"JOBFSM_"):
            key, _, value = item.partition(b"=")
            values.setdefault(key, value)  # the first one, as getenv() sees it
    try:
        return RunTag(
            os.fsdecode(values[b"JOBFSM_JOB"]), int(values[b"JOBFSM_RUN_ID"]), int(values[b"JOBFSM_NODE_PID"])
        )
    except (KeyError, ValueError):
        return None


def _pidfd_signal(fd: int, sig: int) -> None:
    try:
        signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        log.warning("not allowed to signal a process of a lost run with %s", signal_name(sig))
