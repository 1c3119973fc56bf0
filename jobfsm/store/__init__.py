"""Where jobfsm keeps what must survive a restart: job states, runs, trigger requests, audit, heartbeats.

:func:`open_store` turns a URL into a store: ``memory://`` (tests, one process),
``sqlite:///path/to/file.db`` (the default, beside the logs) or ``postgresql://…`` (several hosts).
"""

from __future__ import annotations

from jobfsm.store.abc import (
    AuditEntry,
    Beat,
    Claim,
    DeadNode,
    Finish,
    Heartbeat,
    NodeInfo,
    RunRecord,
    Store,
    TriggerRequest,
)

__all__ = ["AuditEntry", "Beat", "Claim", "DeadNode", "Finish", "Heartbeat", "NodeInfo", "RunRecord", "Store", "TriggerRequest", "open_store"]


def open_store(url: str) -> Store:
    if url.startswith("memory:"):
        from jobfsm.store.memory import MemoryStore

        return MemoryStore()
    from jobfsm.store.sql import SqlStore

    return SqlStore(url)
