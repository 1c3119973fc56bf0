"""Three scheduler objects on one PostgreSQL database, each with its own clock skewed up to
±30 s from the database's, under random interleavings of time passing, node deaths and
revivals, dropped connections, manual triggers, job edits and run outcomes.

The database's clock is the test's "true" time (injected into each node's store, as the
server's own clock would be); each node sees it through its skew. The runner is a fake that
keeps runs going until a rule ends them. Invariants, after every step: every fire at most once;
no two runs of a skip/queue job running at once (in the store, and among the processes of the
nodes that are up); every fire of an enabled job recorded (run, or skipped with a reason) once
a node was up around it; no result of a node that is up lost.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import create_engine, text

from jobfsm import cron
from jobfsm.daemon.scheduler import Scheduler
from jobfsm.errors import StoreUnavailableError
from jobfsm.joblog import JobLogger
from jobfsm.model import Outcome, RunStatus
from jobfsm.store.sql import SqlStore, normalize_url
from tests.conftest import FakeClock, pg_schema
from tests.test_scheduler_stateful import FakeRunner

PG_URL = os.environ.get("JOBFSM_TEST_POSTGRES")
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.skipif(not PG_URL, reason="set JOBFSM_TEST_POSTGRES")]

NAMES = ["alpha", "beta", "gamma"]
SCHEDULES = ["* * * * *", "*/2 * * * *", "*/5 * * * *"]
START = datetime(2026, 6, 1, 12, 0, 10, tzinfo=UTC)
DEAD_AFTER = 60.0
HOUSEKEEPING = DEAD_AFTER / 4
SKEW = 30.0
MARGIN = SKEW + 2.0
"""A fire is due on a node up to SKEW s before or after its time, plus the claim delay."""
NODES = 3


class SkewedClock:
    """A node's clock: the database's, off by ``skew`` seconds (the monotonic clock is shared)."""

    def __init__(self, true: FakeClock, skew: float) -> None:
        self.true, self.skew = true, timedelta(seconds=skew)

    def now(self) -> datetime:
        return self.true.now() + self.skew

    def monotonic(self) -> float:
        return self.true.monotonic()

    def wait(self, event: Any, timeout: float | None) -> bool:
        return event.is_set()


class CuttableStore:
    """A node's store whose connection can be cut: every call fails while it is."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self.cut = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.cut:
                raise StoreUnavailableError("the connection to the store was cut (test)")
            return attr(*args, **kwargs)
        return call

    @contextmanager
    def batch(self) -> Iterator[None]:
        if self.cut:
            raise StoreUnavailableError("the connection to the store was cut (test)")
        with self._store.batch():
            yield


class Node:
    def __init__(self, machine: ClusterMachine, index: int, skew: float) -> None:
        self.index, self.name = index, f"node-{index}"
        self.clock = SkewedClock(machine.clock, skew)
        self.store = CuttableStore(SqlStore(machine.url, database_clock=machine.clock))
        self.logger = JobLogger(machine.root / f"logs-{index}")
        self.machine = machine
        self.scheduler: Scheduler | None = None
        self.runner = FakeRunner()
        self.up_since: datetime | None = None
        """Database time since when it has been running and connected (None: it is not)."""
        self.results: dict[int, Outcome] = {}
        """Results its runner handed over, by run id (what must reach the store)."""

    @property
    def alive(self) -> bool:
        return self.scheduler is not None

    @property
    def healthy(self) -> bool:
        return self.scheduler is not None and not self.store.cut

    def boot(self) -> None:
        self.runner = FakeRunner()
        self.results = {}
        self.scheduler = Scheduler(self.machine.jobs_dir, self.store, self.logger,  # type: ignore[arg-type]
                                   clock=self.clock, node=self.name, runner=self.runner, dead_after=DEAD_AFTER)
        self.runner.scheduler = self.scheduler
        self.scheduler.heartbeat()  # as the daemon does: beat, then start
        self.scheduler.start()
        self.scheduler.apply_results()
        self.next_housekeeping = self.machine.clock.now().timestamp() + HOUSEKEEPING
        self.up_since = self.machine.clock.now()

    def kill(self) -> None:
        """The host dies: the process and its runs are gone, nothing more is recorded."""
        assert self.scheduler is not None
        self.scheduler.close_folder()
        self.scheduler = None
        self.up_since = None

    def housekeeping(self) -> None:
        scheduler = self.scheduler
        assert scheduler is not None
        scheduler.probe_store(force=True)
        for step in (scheduler.heartbeat, scheduler.reap_lost, scheduler.retry_waiting, scheduler.reload,
                     scheduler.poll_triggers):
            scheduler.guarded(step)
        scheduler.apply_results()

    def next_event(self) -> float | None:
        """When (database time, as a timestamp) this node's loop wakes next."""
        if self.scheduler is None:
            return None
        times = [self.next_housekeeping]
        due = self.scheduler.next_due()
        if due is not None:
            times.append(due.timestamp() - self.clock.skew.total_seconds())
        return min(times)

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close_folder()
        self.logger.close()
        self.store._store.close()


class ClusterMachine(RuleBasedStateMachine):
    url: str

    @initialize(skews=st.lists(st.floats(-SKEW, SKEW), min_size=NODES, max_size=NODES))
    def setup(self, skews: list[float]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="jobfsm-cluster-"))
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir()
        self.clock = FakeClock(START)
        self._empty_database()
        self.files: dict[str, dict[str, Any]] = {}
        self.stable_since: dict[str, datetime] = {}
        """Since when the job's file is as it is now (fires before that are not checked)."""
        self.spans: list[tuple[datetime, datetime]] = []
        """Closed spans of database time during which some node was up throughout."""
        self.nodes = [Node(self, i, skew) for i, skew in enumerate(skews)]
        for node in self.nodes:
            node.boot()

    def _empty_database(self) -> None:
        engine = create_engine(normalize_url(self.url))
        with engine.begin() as conn:
            for table in ("trigger_requests", "runs", "job_states", "heartbeats", "audit"):
                conn.execute(text(f"DELETE FROM {table}"))
        engine.dispose()

    def teardown(self) -> None:
        for node in getattr(self, "nodes", []):
            node.close()
        if hasattr(self, "root"):
            shutil.rmtree(self.root, ignore_errors=True)

    def _store(self) -> SqlStore:
        return next(n.store._store for n in self.nodes)

    # -- rules: files --------------------------------------------------------------------------
    @rule(name=st.sampled_from(NAMES), schedule=st.sampled_from(SCHEDULES),
          overlap=st.sampled_from(["skip", "queue", "allow"]), catch_up=st.sampled_from(["none", "latest"]),
          enabled=st.booleans(), retries=st.integers(0, 1))
    def write_job(self, name: str, schedule: str, overlap: str, catch_up: str, enabled: bool, retries: int) -> None:
        doc = {"name": name, "schedule": schedule, "command": "true", "working_directory": "/tmp",
               "enabled": enabled, "overlap": overlap, "catch_up": catch_up, "retries": retries,
               "retry_delay_seconds": 20}
        tmp = self.jobs_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.jobs_dir / f"{name}.json")
        self.files[name] = doc
        self.stable_since[name] = self.clock.now()
        for node in self.nodes:
            if node.healthy:
                assert node.scheduler is not None
                node.scheduler.guarded(node.scheduler.reload)

    # -- rules: time ------------------------------------------------------------------------------
    @rule(seconds=st.integers(1, 240))
    def advance(self, seconds: int) -> None:
        target = self.clock.now().timestamp() + seconds
        for _ in range(5000):
            events = [(t, n.index) for n in self.nodes if (t := n.next_event()) is not None]
            if not events:
                break
            when, index = min(events)
            if when > target:
                break
            if when > self.clock.now().timestamp():
                self.clock.set(datetime.fromtimestamp(when, tz=UTC))
            node = self.nodes[index]
            assert node.scheduler is not None
            if node.next_housekeeping <= when:
                node.next_housekeeping = when + HOUSEKEEPING
                node.housekeeping()
            node.scheduler.dispatch_due()
            node.scheduler.apply_results()
        else:
            raise AssertionError("the nodes never ran out of things to do")
        self.clock.set(datetime.fromtimestamp(target, tz=UTC))

    # -- rules: nodes -------------------------------------------------------------------------------
    def _down(self, node: Node) -> None:
        if node.up_since is not None:
            self.spans.append((node.up_since, self.clock.now()))
            node.up_since = None

    @precondition(lambda self: any(n.alive for n in self.nodes))
    @rule(data=st.data())
    def kill(self, data: st.DataObject) -> None:
        node = data.draw(st.sampled_from([n for n in self.nodes if n.alive]))
        self._down(node)
        node.kill()

    @precondition(lambda self: any(not n.alive for n in self.nodes))
    @rule(data=st.data())
    def revive(self, data: st.DataObject) -> None:
        node = data.draw(st.sampled_from([n for n in self.nodes if not n.alive]))
        node.store.cut = False
        node.boot()

    @precondition(lambda self: any(n.healthy for n in self.nodes))
    @rule(data=st.data())
    def cut(self, data: st.DataObject) -> None:
        """The node's connections drop (the server restarts, the network splits): it goes on,
        but can reach nothing until :meth:`reconnect`."""
        node = data.draw(st.sampled_from([n for n in self.nodes if n.healthy]))
        self._down(node)
        node.store.cut = True
        assert node.scheduler is not None
        node.scheduler.store_failed(StoreUnavailableError("cut"))

    @precondition(lambda self: any(n.alive and n.store.cut for n in self.nodes))
    @rule(data=st.data())
    def reconnect(self, data: st.DataObject) -> None:
        node = data.draw(st.sampled_from([n for n in self.nodes if n.alive and n.store.cut]))
        node.store.cut = False
        assert node.scheduler is not None
        node.housekeeping()
        assert node.scheduler.outage is None
        node.up_since = self.clock.now()

    # -- rules: runs ----------------------------------------------------------------------------------
    @precondition(lambda self: any(n.alive and n.runner.running for n in self.nodes))
    @rule(data=st.data(), outcome=st.sampled_from([Outcome.SUCCEEDED, Outcome.FAILED]))
    def finish_run(self, data: st.DataObject, outcome: Outcome) -> None:
        node = data.draw(st.sampled_from([n for n in self.nodes if n.alive and n.runner.running]))
        run_id = data.draw(st.sampled_from(sorted(node.runner.running)))
        node.runner.finish(run_id, outcome, node.clock.now())
        node.results[run_id] = outcome
        assert node.scheduler is not None
        node.scheduler.apply_results()

    @precondition(lambda self: self.files)
    @rule(data=st.data())
    def trigger(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.files)))
        self._store().request_trigger(name, user="ann", at=self.clock.now())

    # -- invariants -------------------------------------------------------------------------------------
    @invariant()
    def every_fire_at_most_once(self) -> None:
        runs = self._store().list_runs()
        keys = [(r.job, r.scheduled_for, r.attempt) for r in runs if r.scheduled_for is not None]
        assert len(keys) == len(set(keys)), "a fire was claimed twice"
        for run in runs:
            if run.status is RunStatus.SKIPPED:
                assert run.message, f"run {run.id} was skipped without a reason"
        taken = [r.id for r in self._store().list_runs() if r.trigger.value == "manual"]
        assert len(taken) == len(set(taken))

    @invariant()
    def no_two_runs_of_a_skip_or_queue_job_at_once(self) -> None:
        engine_store = self._store()
        with engine_store._read() as conn:
            doubled = conn.execute(text(
                "SELECT job FROM runs WHERE status = 'running' AND exclusive GROUP BY job HAVING count(*) > 1"
            )).all()
        assert not doubled, f"jobs running twice at once: {doubled}"
        going: dict[str, list[int]] = {}
        status = {r.id: r.status for r in engine_store.list_runs(status=RunStatus.RUNNING)}
        for node in self.nodes:
            if not node.healthy:
                continue
            for run_id, ticket in node.runner.running.items():
                if ticket.job.overlap.value != "allow" and status.get(run_id) is RunStatus.RUNNING:
                    going.setdefault(ticket.job.name, []).append(run_id)
        assert all(len(ids) == 1 for ids in going.values()), f"two processes of one job at once: {going}"

    @invariant()
    def every_fire_of_an_enabled_job_is_recorded_when_a_node_was_up(self) -> None:
        now = self.clock.now()
        spans = self.spans + [(n.up_since, now) for n in self.nodes if n.up_since is not None]
        recorded = {(r.job, r.scheduled_for) for r in self._store().list_runs() if r.scheduled_for is not None}
        for name, doc in self.files.items():
            if not doc["enabled"]:
                continue
            since = self.stable_since[name] + timedelta(seconds=MARGIN)
            until = now - timedelta(seconds=MARGIN)
            for fire in cron.fires_between(doc["schedule"], "UTC", since, until):
                margin = timedelta(seconds=MARGIN)
                covered = any(start <= fire - margin and fire + margin <= end for start, end in spans)
                if covered:
                    assert (name, fire) in recorded, f"fire {fire} of {name} was neither run nor skipped"

    @invariant()
    def no_completion_of_a_node_that_is_up_is_lost(self) -> None:
        for node in self.nodes:
            if not node.healthy:
                continue
            for run_id, outcome in node.results.items():
                run = self._store().get_run(run_id)
                assert run.status is outcome.run_status, f"run {run_id}'s result on {node.name} was not recorded"


ClusterMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=20, deadline=None)


@pytest.fixture
def cluster_url() -> Iterator[str]:
    assert PG_URL
    with pg_schema(PG_URL) as url:
        SqlStore(url).close()  # the schema, once: each example empties the tables
        yield url


@pytest.mark.timeout(1800)
def test_three_nodes_on_one_database(cluster_url: str) -> None:
    ClusterMachine.url = cluster_url
    ClusterMachine.TestCase("runTest").runTest()
