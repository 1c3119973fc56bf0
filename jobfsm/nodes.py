"""Node names: ``host:pid`` by default, built and read here only.

A node is one jobfsm process that runs jobs (a daemon, or a process running jobs with no daemon
alive). Its default name says where it runs and which process it is, so a restart on the same
host can tell at once whether the old one is gone.
"""

from __future__ import annotations

import os
import socket


def this_host() -> str:
    """The host name a node records: ``JOBFSM_HOST`` when set (containers or test rigs whose
    host names do not tell their hosts apart), else the machine's."""
    return os.environ.get("JOBFSM_HOST") or socket.gethostname()


def default_node() -> str:
    """This process's node name: ``host:pid``."""
    return f"{this_host()}:{os.getpid()}"


def _parsed(node: str) -> tuple[str, int] | None:
    """(host, pid) of a default node name, or None for a name chosen with ``--node``."""
    host, _, pid = node.rpartition(":")
    return (host, int(pid)) if host and pid.isdecimal() else None  # not isdigit(): int() refuses "²"


def local_pid(node: str) -> int | None:
    """The pid in ``node`` if it names a process of this host (``host:pid``), else None (another
    host, or a name chosen with ``--node``)."""
    parsed = _parsed(node)
    return parsed[1] if parsed is not None and parsed[0] == this_host() else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def local_process_alive(node: str) -> bool:
    """Whether ``node`` names a live process of this host."""
    pid = local_pid(node)
    return pid is not None and pid_alive(pid)


DEFAULT_DEAD_AFTER_SECONDS = 10.0
"""A node whose last heartbeat is older than this (by the store's clock) is dead
(``jobfsm start --dead-after``; ``jobfsm nodes`` shows it as not alive)."""
NODES_SEEN_WITHIN_SECONDS = 3600.0
"""``jobfsm nodes`` lists the nodes heard from within this long (and every node running something)."""


def node_host(node: str) -> str | None:
    """The host in a default node name (``host:pid``), or None for a name chosen with ``--node``."""
    parsed = _parsed(node)
    return parsed[0] if parsed is not None else None


def node_pid(node: str) -> int | None:
    """The pid in a default node name (``host:pid``), or None."""
    parsed = _parsed(node)
    return parsed[1] if parsed is not None else None


def heartbeat_alive(seconds_since_heartbeat: float | None, dead_after: float) -> bool:
    """Whether a heartbeat that old says its node is alive (None: it never sent one)."""
    return seconds_since_heartbeat is not None and seconds_since_heartbeat <= dead_after
