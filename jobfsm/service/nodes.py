"""The nodes as people see them (``jobfsm nodes``, the admin page's Nodes view).

A node is alive when its last heartbeat is at most ``dead_after`` seconds old by the store's
clock (:func:`jobfsm.nodes.heartbeat_alive`). A node that never heartbeats (``jobfsm run`` with no
daemon alive) is alive while its process is, which can only be told on its own host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobfsm.clock import iso
from jobfsm.model import RunStatus
from jobfsm.nodes import heartbeat_alive, local_process_alive, node_host, node_pid
from jobfsm.store.abc import Heartbeat, Store


@dataclass(frozen=True, slots=True)
class NodeRun:
    """A run in progress on a node (:attr:`NodeSeen.running`)."""

    id: int
    job: str
    started_at: datetime | None


@dataclass(frozen=True, slots=True)
class NodeSeen:
    """A node as its heartbeats and running runs show it: its last heartbeat and the runs it has running.

    A node that runs something but never sent a heartbeat (``jobfsm run`` with no daemon alive)
    has no ``pid``, ``started_at`` or heartbeat; its ``host`` is read from its name when it can be.
    """

    node: str
    host: str | None
    pid: int | None
    started_at: datetime | None
    last_heartbeat: datetime | None
    seconds_since_heartbeat: float | None
    """By the store's clock (the database's ``now()`` on PostgreSQL), when it was asked."""
    running: tuple[NodeRun, ...] = ()


ALL_HEARTBEATS_SECONDS = 1e10
"""``max_age_seconds`` that takes every heartbeat (about 300 years)."""


def node_infos(
    beats: Sequence[Heartbeat], running: Sequence[tuple[str, NodeRun]], *, now: datetime, seen_within: float
) -> list[NodeSeen]:
    """The nodes from the heartbeats and the running runs (``(node, run)`` pairs), aged at ``now``."""
    runs_of: dict[str, list[NodeRun]] = {}
    for node, run in sorted(running, key=lambda pair: pair[1].id):
        runs_of.setdefault(node, []).append(run)
    found: dict[str, NodeSeen] = {}
    for beat in beats:
        age = (now - beat.last_seen).total_seconds()
        if age <= seen_within or beat.node in runs_of:
            found[beat.node] = NodeSeen(
                beat.node, beat.host, beat.pid, beat.started_at, beat.last_seen, age,
                tuple(runs_of.get(beat.node, ())),
            )
    for node, runs in runs_of.items():
        if node not in found:
            found[node] = NodeSeen(node, node_host(node), node_pid(node), None, None, None, tuple(runs))
    return [found[name] for name in sorted(found)]


def nodes_seen(store: Store, *, seen_within: float) -> list[NodeSeen]:
    """Every node that heartbeated within ``seen_within`` seconds (by the store's clock, the
    database's on PostgreSQL) or has a run ``running``, by name, with its running runs."""
    now = store.database_now()
    beats = store.live_nodes(now=now, max_age_seconds=ALL_HEARTBEATS_SECONDS)
    running = [(r.node, NodeRun(r.id, r.job, r.started_at)) for r in store.list_runs(status=RunStatus.RUNNING)]
    return node_infos(beats, running, now=now, seen_within=seen_within)


@dataclass(frozen=True)
class NodeView:
    """One node: where it runs, when it was last heard from, whether it is alive, what it runs."""

    node: str
    host: str | None
    pid: int | None
    started_at: datetime | None
    last_heartbeat: datetime | None
    seconds_since_heartbeat: float | None
    alive: bool
    running: tuple[NodeRun, ...]

    @classmethod
    def of(cls, info: NodeSeen, *, dead_after: float) -> NodeView:
        if info.last_heartbeat is not None:
            alive = heartbeat_alive(info.seconds_since_heartbeat, dead_after)
        else:
            alive = local_process_alive(info.node)
        return cls(info.node, info.host, info.pid, info.started_at, info.last_heartbeat,
                   info.seconds_since_heartbeat, alive, info.running)

    @property
    def alive_text(self) -> str:
        """The alive column of ``jobfsm nodes`` and the admin page's Nodes view."""
        if self.alive:
            return "yes"
        return "no heartbeat" if self.last_heartbeat is None else "no"

    def to_dict(self) -> dict[str, Any]:
        """The ``jobfsm nodes --format json`` shape (DESIGN.md §5)."""
        return {
            "node": self.node,
            "host": self.host,
            "pid": self.pid,
            "started_at": iso(self.started_at),
            "last_heartbeat": iso(self.last_heartbeat),
            "alive": self.alive,
            "running": [run.id for run in self.running],
        }
