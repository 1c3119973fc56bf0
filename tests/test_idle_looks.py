"""An idle daemon skips the looks nothing can have changed, and never misses a change by it:
the SQLite store's change mark, and the look for lost runs that trusts it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from jobfsm.model import RunStatus, Trigger
from jobfsm.store import Claim
from jobfsm.store.memory import MemoryStore
from jobfsm.store.sql import SqlStore
from tests.scheduler_support import T0, Rig


def test_the_mark_ignores_the_stores_own_beats_and_moves_for_every_other_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store, other = SqlStore(url), SqlStore(url)
    try:
        quiet = store.change_mark()
        assert quiet is not None
        store.beat("here:1", pid=os.getpid(), host="here", at=T0)
        assert store.change_mark() == quiet, "its own heartbeat must not wake a look"
        other.claim_run(Claim("job", Trigger.MANUAL, "there:2", T0))
        moved = store.change_mark()
        assert moved != quiet, "another process's commit"
        store.request_trigger("job", user="alice", at=T0)
        assert store.change_mark() != moved, "this process's other calls commit on other connections"
    finally:
        store.close()
        other.close()


def test_the_memory_stores_mark_counts_its_writes_and_an_in_memory_sqlite_has_none() -> None:
    memory = MemoryStore()
    quiet = memory.change_mark()
    memory.get_state("job")
    assert memory.change_mark() == quiet
    memory.request_trigger("job", user="alice", at=T0)
    assert memory.change_mark() != quiet
    in_memory = SqlStore("sqlite://")
    try:
        assert in_memory.change_mark() is None  # one shared connection: nothing to compare
    finally:
        in_memory.close()


def test_a_run_left_by_a_dead_process_after_a_quiet_look_is_still_found(tmp_path: Path) -> None:
    """The look for lost runs is skipped while the store is unchanged since one that found
    none; a run written afterwards (a ``jobfsm run`` whose process then died) moves the mark."""
    rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 1)
    assert rig.scheduler.reap_lost(T0) == 0
    assert rig.scheduler.reap_lost(T0) == 0  # quiet: the store did not change
    other = SqlStore(rig.url)
    try:
        gone = other.claim_run(Claim("job-000", Trigger.MANUAL, f"{socket.gethostname()}:999999999", T0))
        assert gone is not None
        rig.scheduler.heartbeat()  # the daemon's own beat between the write and the look
        assert rig.scheduler.reap_lost(T0) == 1
        assert rig.store.get_run(gone.id).status is RunStatus.LOST
    finally:
        other.close()
