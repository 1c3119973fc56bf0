"""What :meth:`jobfsm.store.abc.Store.nodes` returns: the nodes, their heartbeats and running runs.

Every backend builds its answer with :func:`node_infos` from the heartbeats and the running runs
it read, aged at its own clock's "now" (the database's on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobfsm.nodes import node_host, node_pid

if TYPE_CHECKING:
    from jobfsm.store.abc import Heartbeat


@dataclass(frozen=True, slots=True)
class NodeRun:
    """A run in progress on a node (:attr:`NodeInfo.running`)."""

    id: int
    job: str
    started_at: datetime | None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as :meth:`Store.nodes` finds it: its last heartbeat and the runs it has running.

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
) -> list[NodeInfo]:
    """:meth:`Store.nodes` from the heartbeats and the running runs (``(node, run)`` pairs),
    aged at ``now``."""
    runs_of: dict[str, list[NodeRun]] = {}
    for node, run in sorted(running, key=lambda pair: pair[1].id):
        runs_of.setdefault(node, []).append(run)
    found: dict[str, NodeInfo] = {}
    for beat in beats:
        age = (now - beat.last_seen).total_seconds()
        if age <= seen_within or beat.node in runs_of:
            found[beat.node] = NodeInfo(
                beat.node, beat.host, beat.pid, beat.started_at, beat.last_seen, age,
                tuple(runs_of.get(beat.node, ())),
            )
    for node, runs in runs_of.items():
        if node not in found:
            found[node] = NodeInfo(node, node_host(node), node_pid(node), None, None, None, tuple(runs))
    return [found[name] for name in sorted(found)]
