"""Finding the runs of dead nodes: mark them lost, and first end what is left of them here.

A node is dead when its heartbeat is older than ``--dead-after`` by the database's clock, or it
has none, or, on this host, its process is gone (a daemon killed with -9 and restarted at once must not wait for its old
heartbeat to age). A run of a dead node of this host is not called lost while its processes go
on unseen: they are ended first, and its message says so. A node of another host ran its
processes there, out of reach.
"""

from __future__ import annotations

from datetime import datetime

from jobfsm.lifecycle import Announcer, RunLost
from jobfsm.model import RunStatus
from jobfsm.nodes import (
    local_pid,
    local_process_alive,
    pid_alive,
    this_host,
)
from jobfsm.runs.lost import RunTag, end_run_processes
from jobfsm.store import DeadNode, RunRecord, Store
from jobfsm.store.abc import Changes

LOST_KILL_GRACE_SECONDS = 2.0
"""The processes of a lost run get this long between SIGTERM and SIGKILL (nobody waits for
their output any more; the loop waits for this)."""


class LostRuns:
    """Finds the runs of dead nodes for the node ``node`` (alive): :meth:`reap`."""

    def __init__(self, store: Store, events: Announcer, *, node: str, dead_after: float) -> None:
        self._store, self._events, self._node, self._dead_after = store, events, node, dead_after
        self._changes = Changes(store)
        """Until the store changes after a look that found no run of another node, there is
        nothing to look for (an idle daemon looks every few seconds)."""

    def reap(self, now: datetime, *, found: str = "") -> list[DeadNode]:
        """Mark lost the running runs of every dead node: the nodes found dead, each with the
        runs it lost (to this caller alone: retry those).

        "Dead" is decided by the database's clock (:meth:`Store.declare_dead`, which checks the
        age again under a row lock, so a node that beat meanwhile keeps its runs); a node of this
        host whose process is gone is dead at once, and one whose process lives is not (a
        ``jobfsm run`` running a job without a daemon, which never beats)."""
        if not self._changes.look():
            return []
        others = [r for r in self._store.list_runs(status=RunStatus.RUNNING) if r.node != self._node]
        if not others:
            return []
        self._changes.forget()  # runs of other nodes: alive now, perhaps not at the next look
        host = this_host()
        beats = {n.node: n for n in self._store.nodes(seen_within=_FOREVER, dead_after=self._dead_after, at=now)}
        dead_nodes: list[DeadNode] = []
        for other in sorted({r.node for r in others}):
            if local_process_alive(other):
                continue  # a process of this host, alive: a daemon, or a local run without one
            info = beats.get(other)
            pid = local_pid(other)
            if pid is None and info is not None and info.host == host and not pid_alive(info.pid):
                pid = info.pid  # a node of this host named with --node, its process gone
            gone_here = pid is not None
            if info is not None and info.alive and not gone_here:
                continue
            note = "" if pid is None else _end_lost_processes([r for r in others if r.node == other], pid)
            dead = self._store.declare_dead(other, by=self._node, dead_after=None if gone_here else self._dead_after,
                                            found=found, note=note, at=now)
            if dead is None or not dead.lost:
                continue
            for run in dead.lost:
                self._events.announce(RunLost(run, other))
            dead_nodes.append(dead)
        return dead_nodes


_FOREVER = 10 * 365 * 86400.0


def _end_lost_processes(runs: list[RunRecord], node_pid: int) -> str:
    """End the processes of these runs of a dead process ``node_pid`` of this host; say how
    it went, for their messages (one for all: the store marks a node's runs lost at once).

    Found in /proc by the environment every run gets, not by a process group id kept in the
    store: no store write per run on the hot path and no schema change, a pid reused since
    cannot be taken for the run's, and processes that left the group (``setsid``) are found
    too. The loop waits for it (the grace at most, when something ignores SIGTERM, and a few
    seconds for SIGKILL): it is rare, and the runs must not be called lost before it is done.
    """
    tags = {run.id: RunTag(run.job, run.id, node_pid) for run in runs}
    ends = end_run_processes(tags.values(), grace_seconds=LOST_KILL_GRACE_SECONDS)
    if ends is None:
        return "; its processes on this host could not be looked for (no /proc or no pidfds here)"
    notes = []
    for run in runs:
        end = ends[tags[run.id]]
        if not end.ended and not end.left:
            note = "no process of it was left on this host"
        else:
            note = f"its {end.ended} process(es) on this host were ended"
            if end.killed:
                note += f" ({end.killed} by SIGKILL, {LOST_KILL_GRACE_SECONDS:g} s after SIGTERM)"
            if end.left:
                note += f"; {end.left} still there after SIGKILL"
        notes.append(note if len(runs) == 1 else f"run {run.id}: {note}")
    return "; " + "; ".join(notes)
