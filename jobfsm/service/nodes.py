"""The nodes as people see them (``jobfsm nodes``, the admin page's Nodes view).

A node is alive when its last heartbeat is at most ``dead_after`` seconds old by the store's
clock (:func:`jobfsm.nodes.heartbeat_alive`). A node that never heartbeats (``jobfsm run`` with no
daemon alive) is alive while its process is, which can only be told on its own host.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobfsm.nodes import heartbeat_alive, local_process_alive
from jobfsm.store.nodes import NodeInfo, NodeRun


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


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
    def of(cls, info: NodeInfo, *, dead_after: float) -> NodeView:
        if info.last_heartbeat is not None:
            alive = heartbeat_alive(info.seconds_since_heartbeat, dead_after)
        else:
            alive = local_process_alive(info.node)
        return cls(info.node, info.host, info.pid, info.started_at, info.last_heartbeat,
                   info.seconds_since_heartbeat, alive, info.running)

    def to_dict(self) -> dict[str, Any]:
        """The ``jobfsm nodes --format json`` shape (DESIGN.md §5)."""
        return {
            "node": self.node,
            "host": self.host,
            "pid": self.pid,
            "started_at": _iso(self.started_at),
            "last_heartbeat": _iso(self.last_heartbeat),
            "alive": self.alive,
            "running": [run.id for run in self.running],
        }
