"""The store contract, checked on every backend by one parametrized ``store`` fixture.

Backends: ``memory``, ``sqlite`` (a real file in ``tmp_path``) and ``postgresql`` (when
``JOBFSM_TEST_POSTGRES`` names a server; each test gets a fresh schema through ``search_path``
and drops it afterwards). SQL-only behaviour (schema versions, reopening, open errors, several
processes on one database) has its own ``sql_url`` fixture over the two SQL backends.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    create_engine,
    delete,
    event,
    insert,
    text,
)

from jobfsm.clock import utc
from jobfsm.errors import (
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
    StoreValueError,
    TriggerRequestNotFoundError,
)
from jobfsm.model import JobState, Outcome, RunStatus, Trigger
from jobfsm.store import AuditEntry, Beat, Claim, Finish, RunRecord, Store, open_store
from jobfsm.store.abc import WARM_UP_AT, WARM_UP_JOB
from jobfsm.store.memory import MemoryStore
from jobfsm.store.sql import METADATA, MIGRATIONS, SqlStore, mask_url, normalize_url
from tests.conftest import pg_schema

PG_URL = os.environ.get("JOBFSM_TEST_POSTGRES")
PG_SKIP_REASON = "set JOBFSM_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL store tests"

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema, dropped after the test."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with pg_schema(PG_URL) as url:
        yield url


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
SQL_BACKENDS = BACKENDS[1:]


def _url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'jobfsm.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    backend: Store
    if request.param == "memory":
        backend = MemoryStore()
    else:
        backend = SqlStore(_url_for(request.param, request, tmp_path))
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url_for(request.param, request, tmp_path)


def claim(store: Store, job: str = "backup", minutes: float = 0, **kw: Any) -> RunRecord:
    kw.setdefault("trigger", Trigger.SCHEDULE)
    kw.setdefault("node", "node-a")
    if kw["trigger"] in (Trigger.SCHEDULE, Trigger.CATCH_UP, Trigger.RETRY):
        kw.setdefault("scheduled_for", at(minutes))
    run = store.claim_run(Claim(job, started_at=kw.pop("started_at", at(minutes)), **kw))
    assert run is not None
    return run


def is_utc(dt: datetime | None) -> bool:
    return dt is not None and dt.tzinfo is not None and dt.utcoffset() == timedelta(0)


# -- job states --------------------------------------------------------------------------------

def test_job_states_are_set_listed_replaced_and_deleted(store: Store) -> None:
    assert store.get_state("backup") is None
    assert store.all_states() == {}
    store.set_state("backup", JobState.IDLE, at(0))
    store.set_state("report", JobState.DISABLED, at(0))
    store.set_state("backup", JobState.RUNNING, at(1))
    assert store.get_state("backup") is JobState.RUNNING
    assert store.all_states() == {"backup": JobState.RUNNING, "report": JobState.DISABLED}
    store.delete_state("backup")
    store.delete_state("never-existed")
    assert store.get_state("backup") is None
    assert store.all_states() == {"report": JobState.DISABLED}


# -- claiming and finishing runs -------------------------------------------------------------

def test_claim_run_records_every_field(store: Store) -> None:
    run = store.claim_run(Claim(
        "backup", trigger=Trigger.RETRY, node="node-a", started_at=at(1), scheduled_for=at(0),
        attempt=2, message="retry 2 of 3", user=None,
    ))
    assert run is not None
    assert (run.job, run.status, run.trigger, run.node) == ("backup", RunStatus.RUNNING, Trigger.RETRY, "node-a")
    assert (run.scheduled_for, run.started_at, run.attempt, run.message) == (at(0), at(1), 2, "retry 2 of 3")
    assert run.ended_at is None and run.exit_code is None and run.outcome is None
    assert store.get_run(run.id) == run


def test_claiming_the_same_fire_twice_gives_none_the_second_time(store: Store) -> None:
    first = claim(store, "backup", 0)
    again = store.claim_run(Claim("backup", trigger=Trigger.SCHEDULE, node="node-b", started_at=at(0),
                                  scheduled_for=at(0)))
    assert again is None
    # Another attempt of the same fire, or the same time for another job, is a different fire.
    retry = claim(store, "backup", 0, trigger=Trigger.RETRY, attempt=1)
    other = claim(store, "report", 0)
    assert len({first.id, retry.id, other.id}) == 3
    assert [r.id for r in store.list_runs("backup")] == sorted([first.id, retry.id], reverse=True)
    # The same instant written in another zone is the same fire.
    assert store.claim_run(Claim("backup", trigger=Trigger.SCHEDULE, node="n", started_at=at(0),
                                 scheduled_for=at(0).astimezone(PLUS2))) is None


def test_manual_runs_never_conflict(store: Store) -> None:
    runs = [store.claim_run(Claim("backup", trigger=Trigger.MANUAL, node="node-a", started_at=at(0), user="ann"))
            for _ in range(3)]
    assert all(r is not None and r.scheduled_for is None and r.user == "ann" for r in runs)
    assert len({r.id for r in runs if r is not None}) == 3
    assert len(store.list_runs("backup")) == 3


def test_a_skipped_fire_is_claimed_with_its_reason(store: Store) -> None:
    run = claim(store, "backup", 5, status=RunStatus.SKIPPED, message="previous run still going")
    assert store.get_run(run.id).status is RunStatus.SKIPPED
    assert store.get_run(run.id).message == "previous run still going"
    assert store.claim_run(Claim("backup", trigger=Trigger.SCHEDULE, node="n", started_at=at(5),
                                 scheduled_for=at(5))) is None


@pytest.mark.parametrize("outcome", list(Outcome), ids=[o.value for o in Outcome])
def test_finish_run_sets_status_from_outcome(store: Store, outcome: Outcome) -> None:
    run = claim(store, "backup", 0, message="from the claim")
    done = store.finish_run(Finish(
        run.id, outcome=outcome, ended_at=at(2), exit_code=3, duration_seconds=120.25, signal=15,
        stdout_tail="out\n", stderr_tail="err\n", stdout_path="logs/runs/1.out", stderr_path="logs/runs/1.err",
    ))
    assert done.status is outcome.run_status
    assert done.outcome is outcome
    assert (done.ended_at, done.exit_code, done.signal, done.duration_seconds) == (at(2), 3, 15, 120.25)
    assert (done.stdout_tail, done.stderr_tail) == ("out\n", "err\n")
    assert (done.stdout_path, done.stderr_path) == ("logs/runs/1.out", "logs/runs/1.err")
    assert done.message == "from the claim", "an empty message must keep the claim's message"
    assert store.get_run(run.id) == done


def test_finish_run_message_replaces_the_old_one(store: Store) -> None:
    run = claim(store)
    done = store.finish_run(Finish(run.id, outcome=Outcome.NOT_STARTED, ended_at=at(0), exit_code=None,
                                   duration_seconds=None, message="working directory '/nope' does not exist"))
    assert done.status is RunStatus.FAILED
    assert store.get_run(run.id).message == "working directory '/nope' does not exist"


def test_missing_runs_raise_run_not_found(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match="no run with id 999"):
        store.get_run(999)
    with pytest.raises(RunNotFoundError, match="999"):
        store.finish_run(Finish(999, outcome=Outcome.SUCCEEDED, ended_at=at(0), exit_code=0, duration_seconds=1.0))
    with pytest.raises(LookupError):
        store.get_run(-1)


def test_returned_records_are_copies(store: Store) -> None:
    run = claim(store)
    run.status = RunStatus.LOST
    run.message = "scribbled"
    assert store.get_run(run.id).status is RunStatus.RUNNING
    assert store.get_run(run.id).message == ""


# -- listing runs ------------------------------------------------------------------------------

def test_list_runs_newest_first_with_filters(store: Store) -> None:
    a1 = claim(store, "a", 1)
    b2 = claim(store, "b", 2)
    a3 = claim(store, "a", 3)
    a3_tie = claim(store, "a", 3, trigger=Trigger.MANUAL)  # same start as a3: higher id first
    store.finish_run(Finish(a1.id, outcome=Outcome.FAILED, ended_at=at(2), exit_code=1, duration_seconds=60))
    assert [r.id for r in store.list_runs()] == [a3_tie.id, a3.id, b2.id, a1.id]
    assert [r.id for r in store.list_runs("a")] == [a3_tie.id, a3.id, a1.id]
    assert [r.id for r in store.list_runs("a", status=RunStatus.FAILED)] == [a1.id]
    assert [r.id for r in store.list_runs(since=at(2), until=at(3))] == [a3_tie.id, a3.id, b2.id]
    assert [r.id for r in store.list_runs(since=at(2).astimezone(PLUS2), until=at(2))] == [b2.id]
    assert [r.id for r in store.list_runs(limit=2)] == [a3_tie.id, a3.id]
    assert store.list_runs(limit=0) == []
    assert store.list_runs("nobody") == []


def test_latest_runs_are_each_jobs_newest_in_one_call(store: Store) -> None:
    assert store.latest_runs() == {}
    claim(store, "a", 1)
    b2 = claim(store, "b", 2)
    claim(store, "a", 3)
    a3_tie = claim(store, "a", 3, trigger=Trigger.MANUAL)
    store.finish_run(Finish(b2.id, outcome=Outcome.FAILED, ended_at=at(4), exit_code=1, duration_seconds=60))
    latest = store.latest_runs()
    assert {job: run.id for job, run in latest.items()} == {"a": a3_tie.id, "b": b2.id}
    assert latest["b"] == store.list_runs("b", limit=1)[0]  # the whole record, finished fields too


def test_last_fire_counts_scheduled_and_catch_up_runs_only(store: Store) -> None:
    assert store.last_fire("backup") is None
    claim(store, "backup", 10)
    claim(store, "backup", 5, trigger=Trigger.CATCH_UP)
    claim(store, "backup", 60, trigger=Trigger.RETRY, attempt=1)
    claim(store, "backup", 90, trigger=Trigger.MANUAL)
    claim(store, "other", 120)
    skipped = claim(store, "backup", 20, status=RunStatus.SKIPPED, message="overlap")
    assert skipped.status is RunStatus.SKIPPED
    last = store.last_fire("backup")
    assert last == at(20) and is_utc(last)


# -- lost runs and pruning -------------------------------------------------------------------

def test_mark_lost_turns_running_runs_of_a_node_into_lost(store: Store) -> None:
    a_running = claim(store, "j", 1, node="node-a")
    a_done = claim(store, "j", 2, node="node-a")
    store.finish_run(Finish(a_done.id, outcome=Outcome.SUCCEEDED, ended_at=at(3), exit_code=0, duration_seconds=60))
    b_running = claim(store, "j", 4, node="node-b")

    lost = store.mark_lost(at=at(10), node="node-a", message="node-a stopped heartbeating")
    assert [r.id for r in lost] == [a_running.id]
    assert lost[0].status is RunStatus.LOST and lost[0].ended_at == at(10)
    assert store.get_run(a_running.id).message == "node-a stopped heartbeating"
    assert store.get_run(a_done.id).status is RunStatus.SUCCEEDED
    assert store.get_run(b_running.id).status is RunStatus.RUNNING

    everyone = store.mark_lost(at=at(11), message="daemon restarted")
    assert [r.id for r in everyone] == [b_running.id]
    assert store.mark_lost(at=at(12), message="again") == []
    assert store.list_runs(status=RunStatus.RUNNING) == []


def test_prune_runs_deletes_finished_runs_beyond_keep_last_and_older_than_keep_days(store: Store) -> None:
    now = T0 + timedelta(days=30)
    days_ago = {d: now - timedelta(days=d) for d in (20, 15, 10, 9, 8, 1)}
    ids: dict[str, dict[int, int]] = {"a": {}, "b": {}}
    for job in ids:
        for d, started in days_ago.items():
            run = claim(store, job, started_at=started, scheduled_for=started)
            store.finish_run(Finish(run.id, outcome=Outcome.SUCCEEDED, ended_at=started, exit_code=0, duration_seconds=1))
            ids[job][d] = run.id
    old_running = claim(store, "a", started_at=now - timedelta(days=40), scheduled_for=now - timedelta(days=40))
    request = store.request_trigger("a", user="ann", at=now)
    store.resolve_trigger_request(request.id, ids["a"][20])

    deleted = store.prune_runs(now=now, keep_last=3, keep_days=9.5)

    # Per job: the newest 3 finished runs are kept (1, 8, 9 days); of the rest, those older
    # than 9.5 days go (10, 15, 20 days). A running run is never pruned.
    expected = sorted(ids[job][d] for job in ids for d in (20, 15, 10))
    assert [r.id for r in deleted] == expected
    assert all(r.status is RunStatus.SUCCEEDED for r in deleted)
    remaining = {r.id for r in store.list_runs()}
    assert remaining == {ids[job][d] for job in ids for d in (9, 8, 1)} | {old_running.id}
    assert store.get_trigger_request(request.id).run_id is None
    with pytest.raises(RunNotFoundError):
        store.get_run(ids["a"][20])
    # A pruned fire's key is free again; nothing left to prune under the same policy.
    assert store.claim_run(Claim("a", trigger=Trigger.SCHEDULE, node="n", started_at=now,
                                 scheduled_for=days_ago[20])) is not None
    assert store.prune_runs(now=now, keep_last=3, keep_days=9.5) == []


def test_prune_keeps_young_runs_even_beyond_keep_last(store: Store) -> None:
    for i in range(5):
        run = claim(store, "j", i)
        store.finish_run(Finish(run.id, outcome=Outcome.FAILED, ended_at=at(i), exit_code=1, duration_seconds=1))
    assert store.prune_runs(now=at(10), keep_last=0, keep_days=1) == []
    assert len(store.prune_runs(now=at(10) + timedelta(days=2), keep_last=0, keep_days=1)) == 5


# -- trigger requests --------------------------------------------------------------------------

def test_trigger_requests_are_claimed_once(store: Store) -> None:
    r1 = store.request_trigger("backup", user="ann", at=at(0))
    r2 = store.request_trigger("report", user="bob", at=at(1).astimezone(PLUS2))
    assert (r1.job, r1.user, r1.requested_at, r1.claimed_by, r1.run_id) == ("backup", "ann", at(0), None, None)
    assert is_utc(r2.requested_at)

    taken = store.claim_trigger_requests(node="node-a", at=at(2))
    assert [r.id for r in taken] == [r1.id, r2.id]
    assert all(r.claimed_by == "node-a" and r.claimed_at == at(2) for r in taken)
    assert store.claim_trigger_requests(node="node-b", at=at(3)) == []

    r3 = store.request_trigger("backup", user="ann", at=at(4))
    assert [r.id for r in store.claim_trigger_requests(node="node-b", at=at(5))] == [r3.id]

    run = claim(store, "backup", trigger=Trigger.MANUAL, user="ann")
    store.resolve_trigger_request(r1.id, run.id)
    got = store.get_trigger_request(r1.id)
    assert (got.claimed_by, got.run_id) == ("node-a", run.id)
    with pytest.raises(TriggerRequestNotFoundError, match="no trigger request with id 404"):
        store.get_trigger_request(404)
    with pytest.raises(TriggerRequestNotFoundError):
        store.resolve_trigger_request(404, run.id)


def test_concurrent_threads_claim_each_fire_and_request_once(store: Store) -> None:
    requests = {store.request_trigger("j", user="u", at=at(0)).id for _ in range(20)}
    won: dict[str, list[int]] = {}
    taken: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(node: str) -> None:
        try:
            barrier.wait(timeout=10)
            won[node], taken[node] = [], []
            for i in range(25):
                if store.claim_run(Claim("j", trigger=Trigger.SCHEDULE, node=node, started_at=at(i),
                                         scheduled_for=at(i))) is not None:
                    won[node].append(i)
                taken[node].extend(r.id for r in store.claim_trigger_requests(node=node, at=at(i)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"node-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    all_won = sorted(i for fires in won.values() for i in fires)
    assert all_won == list(range(25))
    all_taken = sorted(i for ids in taken.values() for i in ids)
    assert all_taken == sorted(requests)


# -- audit -------------------------------------------------------------------------------------

def test_audit_entries_round_trip_and_filter(store: Store) -> None:
    e1 = store.add_audit(AuditEntry(time=at(0), user="ann", action="enable", job="backup", outcome="allowed",
                                    details={"from": "disabled", "to": "idle", "n": 1, "tags": ("x", "y")}))
    e2 = store.add_audit(AuditEntry(time=at(5).astimezone(PLUS2), user="bob", action="trigger", job="backup",
                                    outcome="denied", details={"role": "viewer"}))
    e3 = store.add_audit(AuditEntry(time=at(10), user="ann", action="login", job=None, outcome="allowed"))
    assert e1.id is not None and e2.id is not None and e3.id is not None
    assert len({e1.id, e2.id, e3.id}) == 3
    assert e1.details == {"from": "disabled", "to": "idle", "n": 1, "tags": ["x", "y"]}
    assert e2.time == at(5) and is_utc(e2.time)

    assert [e.id for e in store.list_audit()] == [e3.id, e2.id, e1.id]
    assert store.list_audit()[2] == e1
    assert [e.id for e in store.list_audit(user="ann")] == [e3.id, e1.id]
    assert [e.id for e in store.list_audit(job="backup")] == [e2.id, e1.id]
    assert [e.id for e in store.list_audit(since=at(5))] == [e3.id, e2.id]
    assert [e.id for e in store.list_audit(user="ann", job="backup", since=at(0))] == [e1.id]
    assert [e.id for e in store.list_audit(limit=1)] == [e3.id]
    assert store.list_audit(user="nobody") == []
    assert store.list_audit()[0].to_dict()["time"] == at(10).isoformat()


# -- heartbeats --------------------------------------------------------------------------------

def test_heartbeats_live_nodes_and_remove_node(store: Store) -> None:
    assert store.live_nodes(now=at(0), max_age_seconds=30) == []
    store.heartbeat("node-a", pid=100, host="h1", at=at(0))
    store.heartbeat("node-b", pid=200, host="h2", at=at(0))
    store.heartbeat("node-a", pid=100, host="h1", at=at(1))

    live = store.live_nodes(now=at(1), max_age_seconds=30)
    assert [h.node for h in live] == ["node-a"]
    assert (live[0].pid, live[0].host, live[0].started_at, live[0].last_seen) == (100, "h1", at(0), at(1))
    assert [h.node for h in store.live_nodes(now=at(1), max_age_seconds=60)] == ["node-a", "node-b"]

    # The same node name from a new process is a restart: started_at moves.
    store.heartbeat("node-a", pid=101, host="h1", at=at(2))
    again = store.live_nodes(now=at(2), max_age_seconds=1)
    assert [(h.node, h.pid, h.started_at) for h in again] == [("node-a", 101, at(2))]

    store.remove_node("node-a")
    store.remove_node("never-seen")
    assert [h.node for h in store.live_nodes(now=at(2), max_age_seconds=3600)] == ["node-b"]


# -- time zones --------------------------------------------------------------------------------

def test_aware_datetimes_come_back_equal_and_in_utc(store: Store) -> None:
    local = datetime(2024, 3, 31, 2, 30, 15, 123456, tzinfo=PLUS2)
    run = store.claim_run(Claim("tz", trigger=Trigger.SCHEDULE, node="n", started_at=local, scheduled_for=local))
    assert run is not None
    store.finish_run(Finish(run.id, outcome=Outcome.SUCCEEDED, ended_at=local + timedelta(seconds=1), exit_code=0,
                            duration_seconds=1.0))
    got = store.get_run(run.id)
    for value in (got.started_at, got.scheduled_for, store.last_fire("tz")):
        assert value == local and is_utc(value)
    assert got.ended_at == local + timedelta(seconds=1) and is_utc(got.ended_at)
    assert got.to_dict()["started_at"] == "2024-03-31T00:30:15.123456+00:00"
    store.heartbeat("n", pid=1, host="h", at=local)
    beat = store.live_nodes(now=local, max_age_seconds=0)[0]
    assert beat.last_seen == local and is_utc(beat.last_seen) and is_utc(beat.started_at)
    # Naive datetimes are taken to be UTC already.
    naive = claim(store, "naive", started_at=datetime(2024, 1, 1, 8), scheduled_for=datetime(2024, 1, 1, 8))
    assert store.get_run(naive.id).started_at == datetime(2024, 1, 1, 8, tzinfo=UTC)


# -- Property 18 -------------------------------------------------------------------------------

TIMES = [T0 + timedelta(minutes=m) for m in (0, 0.5, 1, 7, 60, 1440)]
ZONES = [UTC, PLUS2, timezone(timedelta(hours=-5, minutes=-30))]
instants = st.builds(lambda t, z: t.astimezone(z), st.sampled_from(TIMES), st.sampled_from(ZONES))
bounds = st.one_of(
    st.none(), instants,
    st.builds(lambda t, us: t + timedelta(microseconds=us), st.sampled_from(TIMES), st.sampled_from([-1, 1])),
)
run_specs = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(list(RunStatus)), instants), max_size=25
)
filters = st.fixed_dictionaries({
    "job": st.sampled_from([None, "a", "b", "c", "zz"]),
    "status": st.one_of(st.none(), st.sampled_from(list(RunStatus))),
    "since": bounds,
    "until": bounds,
    "limit": st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
})


def _expected(inserted: list[RunRecord], f: dict[str, Any]) -> list[RunRecord]:
    found = [
        r for r in inserted
        if (f["job"] is None or r.job == f["job"])
        and (f["status"] is None or r.status == f["status"])
        and (f["since"] is None or (r.started_at is not None and r.started_at >= f["since"]))
        and (f["until"] is None or (r.started_at is not None and r.started_at <= f["until"]))
    ]
    found.sort(key=lambda r: (r.started_at, r.id), reverse=True)
    return found if f["limit"] is None else found[: f["limit"]]


def _wipe(store: Store) -> Store:
    """An empty store of the same kind: a new MemoryStore, or every SQL table emptied."""
    if isinstance(store, MemoryStore):
        return MemoryStore()
    assert isinstance(store, SqlStore)
    with store._engine.begin() as conn:  # test-only: emptying the tables is cheaper than a new file
        for table in reversed(METADATA.sorted_tables):
            if table.name != "meta":
                conn.execute(delete(table))
    return store


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_history_filtering_property(backend: str, tmp_path: Path) -> None:
    # Property 18: history filtering
    holder: list[Store] = [MemoryStore() if backend == "memory" else SqlStore(f"sqlite:///{tmp_path / 'p18.db'}")]

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(specs=run_specs, f=filters)
    def check(specs: list[tuple[str, RunStatus, datetime]], f: dict[str, Any]) -> None:
        store = holder[0] = _wipe(holder[0])
        inserted = []
        for job, status, started in specs:
            run = store.claim_run(Claim(job, trigger=Trigger.MANUAL, node="n", started_at=started, status=status))
            assert run is not None
            inserted.append(run)
        got = store.list_runs(f["job"], status=f["status"], since=f["since"], until=f["until"], limit=f["limit"])
        expected = _expected(inserted, f)
        assert [r.id for r in got] == [r.id for r in expected]
        assert got == expected
        assert all(is_utc(r.started_at) for r in got)

    try:
        check()
    finally:
        holder[0].close()


# -- batched claims and finishes -------------------------------------------------------------

def finish(run_id: int, outcome: Outcome = Outcome.SUCCEEDED, i: int = 0, message: str = "") -> Finish:
    """A finish of ``run_id`` that sets every field, varied by ``i``."""
    return Finish(
        run_id, outcome=outcome, ended_at=at(10 + i), exit_code=None if outcome is Outcome.KILLED else i,
        duration_seconds=60.0 + i / 8, signal=9 if outcome is Outcome.KILLED else None,
        message=message, stdout_tail=f"out {i}\n", stderr_tail=f"err {i}\n" if i % 2 else "",
        stdout_path=f"logs/runs/{i}.out", stderr_path=None if i % 2 else f"logs/runs/{i}.err",
    )


def test_the_finishes_in_these_tests_set_every_field_of_finish() -> None:
    made = [finish(1, outcome, i, message="m") for outcome in (Outcome.SUCCEEDED, Outcome.KILLED) for i in (0, 1)]
    for f in dataclasses.fields(Finish):
        if f.default is not dataclasses.MISSING:
            assert any(getattr(m, f.name) != f.default for m in made), f.name


def unnumbered(run: RunRecord | None) -> RunRecord | None:
    """The run without its id (ids of two stores, or of two jobs, differ)."""
    return replace(run, id=0) if run is not None else None


def statements(store: Store) -> list[str]:
    """Every SQL statement the store sends from now on but BEGIN and COMMIT (none for memory)."""
    sent: list[str] = []
    if isinstance(store, SqlStore):
        @event.listens_for(store._engine, "before_cursor_execute")
        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not statement.startswith(("BEGIN", "COMMIT")):
                sent.append(statement.split(None, 1)[0])

    return sent


def test_claim_runs_records_each_claim_as_claim_run_would(store: Store) -> None:
    claims = [
        Claim("backup", Trigger.SCHEDULE, "node-a", at(1), at(0)),
        Claim("backup", Trigger.RETRY, "node-a", at(2), at(0), attempt=1, message="retry 1 of 3"),
        Claim("report", Trigger.CATCH_UP, "node-b", at(3).astimezone(PLUS2), at(0).astimezone(PLUS2),
              status=RunStatus.SKIPPED, message="missed while down", user="ann"),
        Claim("naive", Trigger.SCHEDULE, "node-a", datetime(2024, 1, 1, 8), datetime(2024, 1, 1, 8)),
    ]
    runs = store.claim_runs(claims)
    assert all(r is not None for r in runs)
    ids = [r.id for r in runs if r is not None]
    assert ids == sorted(set(ids)), "ids increase in the order of the claims"
    for c, r in zip(claims, runs, strict=True):
        assert r is not None
        assert (r.job, r.trigger, r.node, r.attempt, r.status, r.message, r.user) == (
            c.job, c.trigger, c.node, c.attempt, c.status, c.message, c.user)
        assert r.scheduled_for == utc(c.scheduled_for) and is_utc(r.scheduled_for)
        assert r.started_at == utc(c.started_at) and is_utc(r.started_at)
        assert (r.ended_at, r.exit_code, r.outcome, r.stdout_tail, r.stderr_tail) == (None, None, None, "", "")
        assert store.get_run(r.id) == r


def test_claim_runs_gives_none_for_fires_claimed_before_or_earlier_in_the_call(store: Store) -> None:
    taken = claim(store, "backup", 0)
    runs = store.claim_runs([
        Claim("backup", Trigger.SCHEDULE, "node-b", at(0), at(0)),  # claimed before
        Claim("report", Trigger.SCHEDULE, "node-b", at(0), at(0)),
        Claim("report", Trigger.SCHEDULE, "node-c", at(0), at(0).astimezone(PLUS2)),  # the same fire
        Claim("backup", Trigger.RETRY, "node-b", at(0), at(0), attempt=1),  # another attempt
        Claim("backup", Trigger.SCHEDULE, "node-b", at(1), at(0).astimezone(PLUS2)),  # claimed before
    ])
    assert [r is None for r in runs] == [True, False, True, False, True]
    report = runs[1]
    assert report is not None and store.get_run(report.id).node == "node-b", "the first claim wins"
    assert len(store.list_runs()) == 3
    assert store.get_run(taken.id) == taken
    assert store.claim_runs([Claim("report", Trigger.SCHEDULE, "n", at(0), at(0))]) == [None]


def test_manual_claims_in_a_batch_never_conflict_and_keep_their_place(store: Store) -> None:
    runs = store.claim_runs([
        Claim("backup", Trigger.MANUAL, "node-a", at(0), user="ann"),
        Claim("backup", Trigger.SCHEDULE, "node-a", at(0), at(0)),
        Claim("backup", Trigger.MANUAL, "node-a", at(0), user="ann"),
        Claim("backup", Trigger.SCHEDULE, "node-b", at(0), at(0)),  # the same fire
        Claim("report", Trigger.MANUAL, "node-a", at(0), status=RunStatus.SKIPPED, message="paused"),
    ])
    assert [r is None for r in runs] == [False, False, False, True, False]
    ids = [r.id for r in runs if r is not None]
    assert ids == sorted(ids)
    assert [(r.trigger, r.scheduled_for, r.user, r.status) for r in runs if r is not None] == [
        (Trigger.MANUAL, None, "ann", RunStatus.RUNNING), (Trigger.SCHEDULE, at(0), None, RunStatus.RUNNING),
        (Trigger.MANUAL, None, "ann", RunStatus.RUNNING), (Trigger.MANUAL, None, None, RunStatus.SKIPPED),
    ]


def test_claim_runs_and_finish_runs_of_nothing_touch_nothing(store: Store) -> None:
    sent = statements(store)
    assert store.claim_runs([]) == []
    store.finish_runs([])
    assert sent == []


def test_finish_runs_stores_what_finish_run_stores(store: Store) -> None:
    # Every outcome with and without a message, over runs with and without a claim message.
    cases = [(outcome, message) for outcome in Outcome for message in ("", f"it {outcome.value}")]
    claimed = {
        job: [claim(store, job, i, message="from the claim" if i % 3 else "") for i in range(len(cases))]
        for job in ("batched", "one-by-one")
    }
    store.finish_runs([
        finish(run.id, outcome, i, message)
        for i, (run, (outcome, message)) in enumerate(zip(claimed["batched"], cases, strict=True))
    ])
    for i, (run, (outcome, message)) in enumerate(zip(claimed["one-by-one"], cases, strict=True)):
        store.finish_run(finish(run.id, outcome, i, message))
    batched, one_by_one = ([replace(store.get_run(r.id), id=0, job="") for r in claimed[job]]
                           for job in ("batched", "one-by-one"))
    assert batched == one_by_one
    assert [r.outcome for r in batched] == [outcome for outcome, _ in cases]
    assert {r.message for r in batched} > {"", "from the claim", "it killed"}


def test_finish_runs_warns_like_finish_run_about_runs_that_were_not_running(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    lost = claim(store, "lost", 0)
    store.mark_lost(at=at(1), message="its node died")
    twice, reference, fine = (claim(store, job, 0) for job in ("twice", "reference", "fine"))
    caplog.set_level(logging.WARNING)
    store.finish_runs([
        finish(lost.id, Outcome.SUCCEEDED, 1),
        finish(twice.id, Outcome.FAILED, 2, "first"),
        finish(fine.id, Outcome.SUCCEEDED, 3),
        finish(twice.id, Outcome.SUCCEEDED, 4),
    ])
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"run {lost.id} of job 'lost' finished as succeeded but was lost; recording the real result",
        f"run {twice.id} of job 'twice' finished as succeeded but was failed; recording the real result",
    ]
    assert store.get_run(lost.id).status is RunStatus.SUCCEEDED
    assert store.get_run(lost.id).message == "its node died"
    # A run finished twice in one call ends as two finish_run calls leave it.
    store.finish_run(finish(reference.id, Outcome.FAILED, 2, "first"))
    store.finish_run(finish(reference.id, Outcome.SUCCEEDED, 4))
    assert replace(store.get_run(twice.id), id=0, job="") == replace(store.get_run(reference.id), id=0, job="")


def test_finish_runs_with_an_unknown_id_raises_before_writing_anything(store: Store) -> None:
    run = claim(store)
    with pytest.raises(RunNotFoundError, match="no run with id 999999"):
        store.finish_runs([finish(run.id), finish(999999)])
    assert store.get_run(run.id) == run


def test_claim_runs_and_finish_runs_inside_a_batch(store: Store) -> None:
    with store.batch():
        runs = store.claim_runs([Claim(job, Trigger.SCHEDULE, "n", at(0), at(0)) for job in "abc"])
        assert store.claim_runs([Claim("a", Trigger.SCHEDULE, "n", at(0), at(0))]) == [None]
        ids = [r.id for r in runs if r is not None]
        store.finish_runs([finish(ids[0]), finish(ids[1], Outcome.FAILED, message="exit 1")])
        assert store.get_run(ids[0]).status is RunStatus.SUCCEEDED  # our own writes are visible
    assert [store.get_run(i).status for i in ids] == [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.RUNNING]


# Keys repeat often: 2 jobs x 2 instants (each written in 3 zones) x 2 attempts; some claims are manual.
some_claims = st.lists(
    st.builds(
        Claim,
        job=st.sampled_from(["a", "b"]),
        trigger=st.sampled_from([Trigger.SCHEDULE, Trigger.CATCH_UP, Trigger.RETRY]),
        node=st.sampled_from(["n1", "n2"]),
        started_at=instants,
        scheduled_for=st.none() | st.builds(lambda t, z: t.astimezone(z), st.sampled_from(TIMES[:2]),
                                            st.sampled_from(ZONES)),
        attempt=st.integers(min_value=0, max_value=1),
        status=st.sampled_from([RunStatus.RUNNING, RunStatus.SKIPPED]),
        message=st.sampled_from(["", "why"]),
        user=st.sampled_from([None, "ann"]),
    ),
    max_size=12,
)


@contextmanager
def _two_stores(backend: str, tmp_path: Path) -> Iterator[list[Store]]:
    if backend == "memory":
        yield [MemoryStore(), MemoryStore()]
        return
    with ExitStack() as stack:
        if backend == "sqlite":
            urls = [f"sqlite:///{tmp_path / f'{name}.db'}" for name in ("batched", "one-by-one")]
        else:
            if not PG_URL:
                pytest.skip(PG_SKIP_REASON)
            urls = [stack.enter_context(pg_schema(PG_URL)) for _ in range(2)]
        stores: list[Store] = [SqlStore(url) for url in urls]
        for s in stores:
            stack.callback(s.close)
        yield stores


@pytest.mark.parametrize("backend", BACKENDS)
def test_claim_runs_equals_claim_run_one_by_one_property(backend: str, tmp_path: Path) -> None:
    """On random claims with repeated fires, after the same earlier claims: ``claim_runs`` on
    one store and ``claim_run`` after ``claim_run`` on another give the same Nones, the same
    runs and the same stored rows (ids aside: a PostgreSQL sequence is not reset by a wipe)."""
    with _two_stores(backend, tmp_path) as stores:

        @given(earlier=some_claims, claims=some_claims)  # 100 examples: the profile in conftest.py
        def check(earlier: list[Claim], claims: list[Claim]) -> None:
            stores[:] = [_wipe(s) for s in stores]
            batched, one_by_one = stores
            for c in earlier:
                batched.claim_run(c)
                one_by_one.claim_run(c)
            got = batched.claim_runs(claims)
            want = [one_by_one.claim_run(c) for c in claims]
            assert [r is None for r in got] == [r is None for r in want]
            assert [unnumbered(r) for r in got] == [unnumbered(r) for r in want]
            ids = [r.id for r in got if r is not None]
            assert ids == sorted(set(ids))
            rows = [[unnumbered(r) for r in sorted(s.list_runs(), key=lambda r: r.id)] for s in stores]
            assert rows[0] == rows[1]

        check()


# -- SQL only: schema versions, reopening, errors -----------------------------------------------

def _meta_version(url: str) -> int:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar_one())
    finally:
        engine.dispose()


def _set_meta_version(url: str, version: int) -> None:
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"), {"v": str(version)})
    finally:
        engine.dispose()


def test_schema_version_is_recorded_and_reopening_keeps_data(sql_url: str) -> None:
    first = SqlStore(sql_url)
    run = claim(first, "backup", 0)
    first.set_state("backup", JobState.RUNNING, at(0))
    first.close()
    assert _meta_version(sql_url) == len(MIGRATIONS)

    second = SqlStore(sql_url)
    try:
        assert second.schema_version == len(MIGRATIONS)
        assert second.get_run(run.id) == run
        assert second.get_state("backup") is JobState.RUNNING
        assert second.claim_run(Claim("backup", trigger=Trigger.SCHEDULE, node="n", started_at=at(0),
                                      scheduled_for=at(0))) is None
    finally:
        second.close()


def test_a_store_from_a_newer_jobfsm_is_refused(sql_url: str) -> None:
    SqlStore(sql_url).close()
    _set_meta_version(sql_url, len(MIGRATIONS) + 1)
    with pytest.raises(StoreError, match=rf"schema version {len(MIGRATIONS) + 1}, written by a newer jobfsm.*upgrade jobfsm"):
        SqlStore(sql_url)


def _add_notes(conn: Connection) -> None:
    """A stand-in second migration: a new table, and a row proving it ran (once)."""
    notes = Table("notes_v2", MetaData(), Column("id", Integer, primary_key=True))
    notes.create(conn)
    conn.execute(insert(notes).values(id=1))


class StoreV2(SqlStore):
    migrations = (*MIGRATIONS, _add_notes)


def test_an_old_store_is_migrated_forward_step_by_step(sql_url: str) -> None:
    v1 = SqlStore(sql_url)
    run = claim(v1, "backup", 0)
    v1.close()

    v2 = StoreV2(sql_url)
    assert v2.schema_version == len(MIGRATIONS) + 1
    assert v2.get_run(run.id) == run
    v2.close()
    StoreV2(sql_url).close()  # already at 2: the step must not run again (it would fail: table exists)
    engine = create_engine(normalize_url(sql_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notes_v2")).scalar_one() == 1
    engine.dispose()
    with pytest.raises(StoreError, match="newer jobfsm"):
        SqlStore(sql_url)


def test_a_version_zero_file_gets_every_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)")
        raw.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    raw.close()
    store = SqlStore(f"sqlite:///{path}")
    try:
        assert store.schema_version == len(MIGRATIONS)
        assert claim(store).id == 1
    finally:
        store.close()
    with sqlite3.connect(path) as raw:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    raw.close()
    assert tables >= {"meta", "job_states", "runs", "trigger_requests", "audit", "heartbeats"}


def test_a_missing_table_is_created_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    SqlStore(url).close()
    with sqlite3.connect(tmp_path / "x.db") as raw:
        raw.execute("DROP TABLE heartbeats")
    raw.close()
    store = SqlStore(url)
    try:
        store.heartbeat("n", pid=1, host="h", at=at(0))
        assert [h.node for h in store.live_nodes(now=at(0), max_age_seconds=1)] == ["n"]
    finally:
        store.close()


def test_sqlite_file_folder_is_created_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "jobfsm.db"
    store = SqlStore(f"sqlite:///{path}")
    store.set_state("j", JobState.IDLE, at(0))
    store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_sqlite_relative_path_is_relative_to_the_working_directory(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///var/jobfsm.db")
    try:
        assert isinstance(store, SqlStore)
        store.set_state("j", JobState.IDLE, at(0))
    finally:
        store.close()
    assert (tmp_path / "var" / "jobfsm.db").is_file()
    assert isinstance(open_store("memory://"), MemoryStore)


def test_in_memory_sqlite_works_from_several_threads() -> None:
    store = SqlStore("sqlite://")
    try:
        threads = [threading.Thread(target=claim, args=(store, f"job-{i}", i)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(r.job for r in store.list_runs()) == [f"job-{i}" for i in range(4)]
    finally:
        store.close()


def test_a_sqlite_writer_waits_for_another_connections_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    store = SqlStore(f"sqlite:///{path}")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("INSERT INTO job_states VALUES ('other', 'idle', '2024-01-01 00:00:00.000000')")
    errors: list[BaseException] = []
    started = threading.Event()

    def write() -> None:
        started.set()
        try:
            store.set_state("j", JobState.RUNNING, at(0))
        except BaseException as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    assert started.wait(timeout=10)
    writer.join(timeout=0.5)
    assert writer.is_alive(), "the writer should be waiting for the write lock"
    blocker.execute("COMMIT")
    blocker.close()
    writer.join(timeout=30)
    assert not writer.is_alive() and not errors
    assert store.all_states() == {"other": JobState.IDLE, "j": JobState.RUNNING}
    store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", r"cannot open the store 'not a url': not a database URL; use sqlite:///"),
        ("mysql://u:pw@host/db", r"unsupported database 'mysql'"),
        ("sqlite+nosuchdriver:///x.db", r"cannot open the store 'sqlite\+nosuchdriver:///x.db'"),
    ],
    ids=["garbage", "unsupported", "unknown-driver"],
)
def test_bad_urls_raise_store_error(url: str, expected: str) -> None:
    with pytest.raises(StoreError, match=expected):
        SqlStore(url)


def test_unwritable_sqlite_path_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    url = f"sqlite:///{blocker}/sub/jobfsm.db"
    with pytest.raises(StoreError, match=r"cannot open the store .*a-file/sub/jobfsm.db.*writable path"):
        SqlStore(url)


def test_unreachable_server_raises_store_error_with_the_password_masked() -> None:
    url = "postgresql://jobfsm:s3cret@127.0.0.1:1/jobs"
    with pytest.raises(StoreError) as info:
        SqlStore(url)
    message = str(info.value)
    assert "s3cret" not in message
    assert message.startswith("cannot open the store 'postgresql://jobfsm:***@127.0.0.1:1/jobs': ")
    assert "server is running and reachable" in message


def test_url_helpers() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert mask_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert "pw" not in mask_url("weird://u:pw@h:bad-port/db")


@pytest.mark.postgres
def test_plain_postgresql_urls_use_psycopg(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    store = SqlStore(plain)
    try:
        assert store.url == plain
        run = claim(store)
        assert store.get_run(run.id) == run
    finally:
        store.close()


# -- several processes on one database ----------------------------------------------------------

CLAIMER = r"""
import json, sys
from datetime import UTC, datetime, timedelta
from jobfsm.model import Outcome, Trigger
from jobfsm.store import Claim, Finish
from jobfsm.store.sql import SqlStore

url, node, fires = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = SqlStore(url)
print("ready", flush=True)
sys.stdin.readline()
t0 = datetime(2024, 1, 1, tzinfo=UTC)
won, taken = [], []
for i in range(fires):
    fire = t0 + timedelta(minutes=i)
    run = store.claim_run(Claim("job", trigger=Trigger.SCHEDULE, node=node, started_at=fire, scheduled_for=fire))
    if run is not None:
        won.append(i)
        # finish_run reads, then writes, in one transaction: the case that fails with
        # "database is locked" unless writes take the lock up front.
        store.finish_run(Finish(run.id, outcome=Outcome.SUCCEEDED, ended_at=fire, exit_code=0, duration_seconds=0.5))
    taken.extend(r.id for r in store.claim_trigger_requests(node=node, at=fire))
store.close()
print(json.dumps({"won": won, "taken": taken}), flush=True)
"""


@pytest.mark.slow
def test_several_processes_claim_each_fire_and_request_exactly_once(sql_url: str, tmp_path: Path) -> None:
    processes, fires = 3, 30
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, sql_url, f"node-{n}", str(fires)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        )
        for n in range(processes)
    ]
    try:
        # They all opened (and migrated) the fresh database at once; wait until each is ready.
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.strip() == "ready", child.stderr.read() if child.stderr else ""
        store = SqlStore(sql_url)
        requests = sorted(store.request_trigger("job", user="ann", at=at(0)).id for _ in range(15))
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            assert "locked" not in err
            results.append(json.loads(out))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    won = sorted(i for r in results for i in r["won"])
    taken = sorted(i for r in results for i in r["taken"])
    assert won == list(range(fires)), "every fire claimed exactly once"
    assert taken == requests, "every trigger request claimed exactly once"
    nodes = {f"node-{n}" for n in range(processes)}
    runs = store.list_runs("job")
    assert len(runs) == fires and {r.node for r in runs} <= nodes
    assert {r.status for r in runs} == {RunStatus.SUCCEEDED}
    assert all(store.get_trigger_request(i).claimed_by in nodes for i in requests)
    store.close()



def test_a_batch_shares_one_transaction_and_survives_a_lost_claim(sql_url: str) -> None:
    """The daemon records a burst of fires in one batch: a fire another node already claimed
    must come back as None without spoiling the batch (PostgreSQL aborts a transaction on a
    unique-key error, which is why claims use ON CONFLICT DO NOTHING)."""
    from jobfsm.store.sql import SqlStore

    ours, other = SqlStore(sql_url), SqlStore(sql_url)
    at = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    try:
        assert other.claim_run(Claim("a", trigger=Trigger.SCHEDULE, node="n2", started_at=at, scheduled_for=at))
        with ours.batch():
            lost = ours.claim_run(Claim("a", trigger=Trigger.SCHEDULE, node="n1", started_at=at, scheduled_for=at))
            won = ours.claim_run(Claim("b", trigger=Trigger.SCHEDULE, node="n1", started_at=at, scheduled_for=at))
            ours.set_state("b", JobState.RUNNING, at)
            assert lost is None and won is not None
            assert ours.get_run(won.id).status is RunStatus.RUNNING  # our own writes are visible
        assert other.get_run(won.id).job == "b" and other.get_state("b") is JobState.RUNNING
    finally:
        ours.close()
        other.close()


def test_state_writes_inside_a_batch_are_seen_at_once_and_stored_at_commit(sql_url: str) -> None:
    from jobfsm.store.sql import SqlStore

    ours, other = SqlStore(sql_url), SqlStore(sql_url)
    at = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    try:
        with ours.batch():
            ours.set_state("a", JobState.RUNNING, at)
            ours.set_state("a", JobState.SUCCEEDED, at)
            ours.set_state("b", JobState.IDLE, at)
            ours.delete_state("b")
            assert ours.get_state("a") is JobState.SUCCEEDED
            assert ours.all_states() == {"a": JobState.SUCCEEDED}
            assert other.get_state("a") is None  # not committed yet
        assert other.all_states() == {"a": JobState.SUCCEEDED}
    finally:
        ours.close()
        other.close()


class _Rollback(Exception):
    pass


def test_two_threads_batch_at_once_each_in_its_own_transaction(sql_url: str) -> None:
    """One thread's batch rolls back while another's, opened meanwhile, commits: each thread's
    claims and state writes stay in its own transaction. On PostgreSQL both batches are open at
    once; on SQLite the second waits for the first (one writer per file), with the same result."""
    store = SqlStore(sql_url)
    both_open = not store.url.startswith("sqlite")
    first_in, second_in = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def failing() -> None:
        try:
            with store.batch():
                claim(store, "undone", 0)
                store.set_state("undone", JobState.RUNNING, at(0))
                first_in.set()
                if both_open:
                    assert second_in.wait(10), "the second batch did not open beside the first"
                claim(store, "undone", 1)
                store.set_state("undone", JobState.FAILED, at(1))
                raise _Rollback
        except _Rollback:
            pass
        except BaseException as exc:
            errors.append(exc)

    def committing() -> None:
        try:
            assert first_in.wait(10)
            with store.batch():
                claim(store, "kept", 0)
                second_in.set()
                store.set_state("kept", JobState.RUNNING, at(0))
                claim(store, "kept", 1)
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=failing), threading.Thread(target=committing)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        assert [r.scheduled_for for r in store.list_runs("undone")] == []
        assert sorted(r.scheduled_for for r in store.list_runs("kept")) == [at(0), at(1)]
        assert store.all_states() == {"kept": JobState.RUNNING}
    finally:
        store.close()


def test_idle_trigger_polls_skip_the_query_but_never_miss_a_request(tmp_path: Path) -> None:
    from jobfsm.store.sql import SqlStore

    url = f"sqlite:///{tmp_path / 'probe.db'}"
    daemon, cli = SqlStore(url), SqlStore(url)
    at = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    try:
        assert daemon.claim_trigger_requests(node="d", at=at) == []
        assert not daemon._database_changed()  # nothing committed since: the next poll is free
        request = cli.request_trigger("a", user="ana", at=at)
        [claimed] = daemon.claim_trigger_requests(node="d", at=at)
        assert claimed.id == request.id and claimed.claimed_by == "d"
        daemon.heartbeat("d", pid=1, host="h", at=at)  # our own other connections count too
        second = cli.request_trigger("b", user="ana", at=at)
        assert [r.id for r in daemon.claim_trigger_requests(node="d", at=at)] == [second.id]
    finally:
        daemon.close()
        cli.close()


def test_a_chunk_of_claims_is_one_statement_and_of_finishes_two(sql_url: str) -> None:
    """What makes the batch methods fast: a chunk of claims is one INSERT (ON CONFLICT DO NOTHING
    RETURNING included): over a JSON recordset on PostgreSQL, SQLAlchemy's "insertmanyvalues" on SQLite."""
    store = SqlStore(sql_url)
    try:
        claim(store, "job-0", 0)
        sent = statements(store)
        runs = store.claim_runs([Claim(f"job-{i}", Trigger.SCHEDULE, "n", at(0), at(0)) for i in range(256)])
        assert sent == ["INSERT"]
        assert sum(r is None for r in runs) == 1
        sent.clear()
        ids = [r.id for r in runs if r is not None]
        sqlite = sql_url.startswith("sqlite")
        store.finish_runs([finish(run_id) for run_id in ids])
        # PostgreSQL: one UPDATE over a JSON recordset that returns each status before (no lookup to race
        # another host's prune); SQLite, whose writer holds the file: a lookup, then the UPDATE
        assert sent == (["SELECT", "UPDATE"] if sqlite else ["WITH"])
        sent.clear()
        store.finish_runs([finish(run_id, message="again" if run_id % 2 else "") for run_id in ids])
        # rows with and without a message: one executemany each on SQLite
        assert sent == (["SELECT", "UPDATE", "UPDATE"] if sqlite else ["WITH"])
        assert {store.get_run(i).message for i in ids} == {"", "again"}
    finally:
        store.close()


def test_batched_claims_and_finishes_share_the_batch_transaction(sql_url: str) -> None:
    ours, other = SqlStore(sql_url), SqlStore(sql_url)
    try:
        assert other.claim_run(Claim("a", trigger=Trigger.SCHEDULE, node="n2", started_at=at(0), scheduled_for=at(0)))
        with ours.batch():
            lost, won = ours.claim_runs([Claim(job, Trigger.SCHEDULE, "n1", at(0), at(0)) for job in "ab"])
            assert lost is None and won is not None  # a lost claim does not spoil the transaction
            ours.finish_runs([finish(won.id)])
            assert ours.get_run(won.id).status is RunStatus.SUCCEEDED
            assert [r.job for r in other.list_runs()] == ["a"]  # not committed yet
        assert other.get_run(won.id).status is RunStatus.SUCCEEDED
        with pytest.raises(RunNotFoundError), ours.batch():
            [new] = ours.claim_runs([Claim("c", Trigger.SCHEDULE, "n1", at(0), at(0))])
            ours.finish_runs([finish(999999)])
        assert new is not None and sorted(r.job for r in other.list_runs()) == ["a", "b"], "rolled back"
    finally:
        ours.close()
        other.close()


def test_batched_claims_and_finishes_raise_store_error_on_database_errors(sql_url: str) -> None:
    store = SqlStore(sql_url)
    run = claim(store)
    engine = create_engine(normalize_url(sql_url))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE trigger_requests"))
        conn.execute(text("DROP TABLE runs"))
    engine.dispose()
    try:
        with pytest.raises(StoreError, match=r"the store .* failed: .*runs"):
            store.claim_runs([Claim("a", Trigger.SCHEDULE, "n", at(0), at(0))])
        with pytest.raises(StoreError, match=r"the store .* failed: .*runs"):
            store.finish_runs([finish(run.id)])
    finally:
        store.close()


def test_a_value_the_database_refuses_is_a_value_error_not_an_outage(sql_url: str) -> None:
    """Text that PostgreSQL's ``text`` refuses (a NUL) or that no driver encodes (a lone
    surrogate) would be refused on every try: :class:`StoreValueError`, not the
    :class:`StoreUnavailableError` the daemon waits out, alone or in a batch; the store goes on."""
    store = SqlStore(sql_url)
    try:
        run = claim(store)
        refused = [{"stderr_tail": "c\ud800"}, {"message": "m\udcff"}]
        if sql_url.startswith("postgresql"):
            refused += [{"stdout_tail": "a\x00b"}, {"message": "m\x00"}]
        for fields in refused:
            bad = replace(finish(run.id), **fields)
            for record in (store.finish_run, lambda f: store.finish_runs([f]), lambda f: _in_a_batch(store, f)):
                with pytest.raises(StoreValueError, match=r"the store .* refused a value: ") as info:
                    record(bad)
                assert not isinstance(info.value, StoreUnavailableError), fields
        assert store.get_run(run.id).status is RunStatus.RUNNING, "a refused finish was written"
        store.finish_run(finish(run.id))
        assert store.get_run(run.id).stdout_tail == "out 0\n"
    finally:
        store.close()


def _in_a_batch(store: Store, done: Finish) -> None:
    with store.batch():
        store.claim_runs([Claim("other", Trigger.SCHEDULE, "n", at(5), at(5))])
        store.finish_runs([done])


def test_warm_up_leaves_no_trace_and_can_be_repeated(store: Store) -> None:
    """The daemon warms the store up at every start: nothing of it may show (no run, no state,
    no used fire key), on any backend."""
    store.warm_up()
    store.warm_up()
    assert store.list_runs() == []
    assert store.all_states() == {}
    for fire in (WARM_UP_AT, WARM_UP_AT + timedelta(minutes=1)):  # the fires it rehearses are free
        run = store.claim_run(Claim(WARM_UP_JOB, trigger=Trigger.SCHEDULE, node="n", started_at=fire, scheduled_for=fire))
        assert run is not None and run.job == WARM_UP_JOB


# -- several hosts: overlap, liveness, fencing (DESIGN.md §4) ----------------------------------

class StepClock:
    """What stands in for the database's clock: moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()

    def wait(self, event: Any, timeout: float | None) -> bool:
        return False


@pytest.fixture(params=BACKENDS)
def clocked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, StepClock]]:
    """A store of every backend whose "database clock" the test moves (on PostgreSQL the
    server's own clock is checked separately, in test_postgresql_beats_by_its_own_clock)."""
    db_clock = StepClock(at(0))
    backend: Store
    if request.param == "memory":
        backend = MemoryStore(database_clock=db_clock)
    else:
        backend = SqlStore(_url_for(request.param, request, tmp_path), database_clock=db_clock)
    try:
        yield backend, db_clock
    finally:
        backend.close()


def test_an_exclusive_job_has_one_running_run_across_nodes(store: Store) -> None:
    first = store.claim_run(Claim("sync", trigger=Trigger.SCHEDULE, node="node-a", started_at=at(0),
                                  scheduled_for=at(0), exclusive=True))
    assert first is not None
    # Another node, another fire: refused while the first runs, and the refusal names it.
    assert store.claim_run(Claim("sync", trigger=Trigger.SCHEDULE, node="node-b", started_at=at(1),
                                 scheduled_for=at(1), exclusive=True)) is None
    met = store.running_exclusive("sync")
    assert met is not None and (met.id, met.node) == (first.id, "node-a")
    assert store.fire_claimed("sync", at(1)) is None, "the refused fire is not recorded by the refusal"
    assert store.fire_claimed("sync", at(0).astimezone(PLUS2)) == first
    # A manual run is refused too; a skipped record, another job, or an allow run are not.
    assert store.claim_run(Claim("sync", trigger=Trigger.MANUAL, node="node-b", started_at=at(1), exclusive=True)) is None
    skipped = store.claim_run(Claim("sync", trigger=Trigger.SCHEDULE, node="node-b", started_at=at(1),
                                    scheduled_for=at(1), status=RunStatus.SKIPPED, message="busy", exclusive=True))
    assert skipped is not None
    assert claim(store, "other", 1, exclusive=True).status is RunStatus.RUNNING
    assert claim(store, "sync", 2, node="node-c").status is RunStatus.RUNNING  # not exclusive
    # A batch of claims obeys it as well.
    batch = store.claim_runs([Claim("sync", Trigger.SCHEDULE, "node-b", at(3), at(3), exclusive=True),
                              Claim("free", Trigger.SCHEDULE, "node-b", at(3), at(3), exclusive=True)])
    assert batch[0] is None and batch[1] is not None
    # Once it ends, the next one may start, and a waiting one may begin.
    store.finish_run(Finish(first.id, outcome=Outcome.SUCCEEDED, ended_at=at(4), exit_code=0, duration_seconds=1.0))
    assert store.running_exclusive("sync") is None
    waiting = store.claim_run(Claim("sync", trigger=Trigger.SCHEDULE, node="node-b", started_at=at(4),
                                    scheduled_for=at(4), status=RunStatus.SKIPPED, message="queued", exclusive=True))
    assert waiting is not None
    second = store.claim_run(Claim("sync", trigger=Trigger.SCHEDULE, node="node-c", started_at=at(5),
                                   scheduled_for=at(5), exclusive=True))
    assert second is not None
    assert store.start_queued_run(waiting.id, started_at=at(5)) is None, "a waiting run waits for the running one"
    assert store.get_run(waiting.id).status is RunStatus.SKIPPED
    store.mark_lost(at=at(6), node="node-c", message="gone")
    started = store.start_queued_run(waiting.id, started_at=at(6))
    assert started is not None and started.status is RunStatus.RUNNING


def test_a_refused_waiting_start_does_not_abort_the_batch(sql_url: str) -> None:
    store = SqlStore(sql_url)
    try:
        running = claim(store, "sync", 0, exclusive=True)
        waiting = claim(store, "sync", 1, status=RunStatus.SKIPPED, message="queued", exclusive=True)
        with store.batch():
            assert store.start_queued_run(waiting.id, started_at=at(2)) is None
            later = claim(store, "later", 2)
        assert store.get_run(later.id).status is RunStatus.RUNNING, "the rest of the batch committed"
        assert store.running_exclusive("sync") == running
    finally:
        store.close()


def test_exclusive_claims_from_many_connections_start_one_run(sql_url: str) -> None:
    """Ten connections race for ten fires of one skip job: exactly one runs; the rest are refused."""
    stores = [SqlStore(sql_url) for _ in range(5)]
    barrier = threading.Barrier(len(stores))
    won: list[int] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            for i in range(2):
                run = stores[n].claim_run(Claim("sync", trigger=Trigger.SCHEDULE, node=f"node-{n}",
                                                started_at=at(n), scheduled_for=at(2 * n + i), exclusive=True))
                if run is not None:
                    won.append(run.id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors
        assert len(won) == 1
        assert [r.id for r in stores[0].list_runs("sync", status=RunStatus.RUNNING)] == won
    finally:
        for s in stores:
            s.close()


def test_beats_liveness_and_declaring_a_node_dead(clocked: tuple[Store, StepClock]) -> None:
    store, db = clocked
    skewed = at(0) + timedelta(hours=1)  # a node's own clock, an hour off: it does not matter
    beat = store.beat("node-a", pid=1, host="h1", at=skewed)
    assert beat.at == at(0) and beat.declared_dead_by is None
    store.beat("node-b", pid=2, host="h2", at=skewed)
    lost_run = claim(store, "long", 0, node="node-b")
    db.at = at(0) + timedelta(seconds=8)
    store.beat("node-a", pid=1, host="h1", at=skewed)
    nodes = store.nodes(seen_within=60, dead_after=10)
    assert [(n.node, n.alive, n.running) for n in nodes] == [("node-a", True, ()), ("node-b", True, (lost_run.id,))]
    assert nodes[0].last_heartbeat == at(0) + timedelta(seconds=8) and nodes[0].started_at == at(0)
    assert store.declare_dead("node-b", by="node-a", dead_after=10) is None, "seen 8 s ago: alive"

    db.at = at(0) + timedelta(seconds=11)
    assert [n.alive for n in store.nodes(seen_within=60, dead_after=10)] == [True, False]
    dead = store.declare_dead("node-b", by="node-a", dead_after=10, found="by housekeeping")
    assert dead is not None and dead.last_seen == at(0) and dead.at == db.at
    assert [r.id for r in dead.lost] == [lost_run.id]
    run = store.get_run(lost_run.id)
    assert run.status is RunStatus.LOST and run.ended_at == db.at
    assert "node node-b" in run.message and at(0).isoformat() in run.message and "by node-a" in run.message
    again = store.declare_dead("node-b", by="node-c", dead_after=10)
    assert again is not None and again.lost == (), "each lost run goes to one finder"
    info = store.nodes(seen_within=60)[1]
    assert (info.declared_dead_by, info.declared_dead_at, info.alive) == ("node-a", db.at, False)

    # Its result comes in after all: kept on the run. It beats: told, and registered again.
    store.finish_run(Finish(lost_run.id, outcome=Outcome.SUCCEEDED, ended_at=db.at, exit_code=0, duration_seconds=11.0))
    assert store.get_run(lost_run.id).status is RunStatus.SUCCEEDED
    back = store.beat("node-b", pid=2, host="h2", at=skewed)
    assert (back.declared_dead_by, back.declared_dead_at) == ("node-a", db.at)
    assert store.beat("node-b", pid=2, host="h2").declared_dead_by is None
    assert all(n.alive for n in store.nodes(seen_within=60, dead_after=10))
    assert [n.node for n in store.nodes(seen_within=5, dead_after=10)] == ["node-a", "node-b"]
    db.at += timedelta(seconds=30)
    assert store.nodes(seen_within=5) == []
    assert store.nodes(seen_within=60)[1].to_dict()["last_heartbeat"] == (at(0) + timedelta(seconds=11)).isoformat()


def test_a_node_without_heartbeat_or_known_gone_is_dead_at_once(clocked: tuple[Store, StepClock]) -> None:
    store, _ = clocked
    orphan = claim(store, "job", 0, node="never-beat")
    dead = store.declare_dead("never-beat", by="node-a", dead_after=10)
    assert dead is not None and dead.last_seen is None and [r.id for r in dead.lost] == [orphan.id]
    assert "no heartbeat" in store.get_run(orphan.id).message
    store.beat("node-b", pid=2, host="h", at=at(0))
    run = claim(store, "job", 1, node="node-b")
    forced = store.declare_dead("node-b", by="node-a", dead_after=None, note="; its process is gone")
    assert forced is not None and [r.id for r in forced.lost] == [run.id]
    assert store.get_run(run.id).message.endswith("; its process is gone")


def test_postgresql_beats_by_its_own_clock(pg_url: str) -> None:
    """No injected clock: the server's clock stamps beats, whatever the node's clock says."""
    store = SqlStore(pg_url)
    try:
        engine = create_engine(normalize_url(pg_url))
        with engine.connect() as conn:
            server = utc(conn.execute(text("SELECT clock_timestamp()")).scalar_one())
        engine.dispose()
        wrong = server - timedelta(days=3)
        beat = store.beat("node-a", pid=1, host="h", at=wrong)
        assert abs((beat.at - server).total_seconds()) < 5
        assert abs((store.database_now(wrong) - server).total_seconds()) < 5
        [node] = store.nodes(seen_within=10, dead_after=10, at=wrong)
        assert node.alive and node.last_heartbeat == beat.at
        assert store.declare_dead("node-a", by="node-b", dead_after=10, at=wrong + timedelta(days=30)) is None
    finally:
        store.close()


def test_sqlite_and_memory_take_the_callers_clock(store: Store) -> None:
    """One host: its clock is the only one; the caller's (injected in tests) is it."""
    if isinstance(store, SqlStore) and store.sqlite_path is None:
        pytest.skip("PostgreSQL has a clock of its own")
    assert store.beat("node-a", pid=1, host="h", at=at(0)).at == at(0)
    assert [n.alive for n in store.nodes(seen_within=60, dead_after=10, at=at(0) + timedelta(seconds=5))] == [True]
    assert [n.alive for n in store.nodes(seen_within=60, dead_after=10, at=at(1))] == [False]


def test_a_beat_on_a_sqlite_file_is_one_statement_that_still_tells_of_a_declared_death(tmp_path: Path) -> None:
    """An idle daemon's wake-ups are mostly beats: on SQLite a beat is one statement on a
    connection of its own; only a beat that finds its node declared dead writes more."""
    url = f"sqlite:///{tmp_path / 'jobfsm.db'}"
    ours, other = SqlStore(url), SqlStore(url)
    try:
        ours.beat("a:1", pid=1, host="h", at=at(0))  # opens its connection
        assert ours._direct is not None
        direct: list[str] = []
        ours._direct._connection.set_trace_callback(lambda sql: direct.append(sql.split(None, 1)[0]))
        pooled = statements(ours)
        assert ours.beat("a:1", pid=1, host="h", at=at(1)) == Beat(at(1))
        assert other.declare_dead("a:1", by="b:2", dead_after=None, at=at(2)) is not None
        assert ours.beat("a:1", pid=1, host="h", at=at(3)) == Beat(at(3), "b:2", at(2))
        assert ours.beat("a:1", pid=1, host="h", at=at(4)) == Beat(at(4))
        assert direct == ["INSERT"] * 3
        assert pooled == ["UPDATE"], "the declaration is cleared once"
        assert [(n.node, n.alive) for n in other.nodes(seen_within=60, at=at(4))] == [("a:1", True)]
    finally:
        ours.close()
        other.close()


def test_an_old_store_gets_the_cluster_columns(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    SqlStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as raw:  # back to the first schema
        raw.execute("DROP INDEX uq_runs_one_running")
        raw.execute("ALTER TABLE runs DROP COLUMN exclusive")
        raw.execute("ALTER TABLE heartbeats DROP COLUMN declared_dead_by")
        raw.execute("ALTER TABLE heartbeats DROP COLUMN declared_dead_at")
        raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        raw.execute("INSERT INTO runs (job, status, \"trigger\", node, attempt, message, stdout_tail, stderr_tail) "
                    "VALUES ('old', 'running', 'manual', 'n', 0, '', '', '')")
    raw.close()
    store = SqlStore(f"sqlite:///{path}")
    try:
        assert store.schema_version == len(MIGRATIONS)
        assert store.get_run(1).status is RunStatus.RUNNING
        assert claim(store, "old", 0, exclusive=True).status is RunStatus.RUNNING, "old runs are not exclusive"
        assert claim(store, "sync", 0, exclusive=True) is not None
        assert store.claim_run(Claim("sync", trigger=Trigger.SCHEDULE, node="n", started_at=at(1), scheduled_for=at(1),
                                     exclusive=True)) is None
        assert store.beat("n", pid=1, host="h", at=at(0)).declared_dead_by is None
    finally:
        store.close()


def test_claimed_fires_names_the_fires_taken_already(store: Store) -> None:
    claim(store, "a", 0)
    claim(store, "b", 0, attempt=1, trigger=Trigger.RETRY)
    claim(store, "c", 1)
    asked = [("a", at(0).astimezone(PLUS2), 0), ("b", at(0), 0), ("b", at(0), 1), ("c", at(1), 0), ("d", at(1), 0)]
    assert store.claimed_fires(asked) == {("a", at(0), 0), ("b", at(0), 1), ("c", at(1), 0)}
    assert store.claimed_fires([]) == set()
