"""The scheduler over a real jobs folder, a real SQLite store and a fake clock, under random
interleavings of file edits, time passing (across DST days), run outcomes and restarts.

The runner is a fake that keeps runs "running" until a rule finishes them: the scheduler's
bookkeeping is what is tested here; real processes are tested in test_executor/test_daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from jobfsm import cron
from jobfsm.daemon.policy import MAX_CATCH_UP
from jobfsm.daemon.scheduler import Scheduler
from jobfsm.joblog import JobLogger
from jobfsm.model import JobState, Outcome, RunStatus, Trigger
from jobfsm.runs.executor import JobResult
from jobfsm.runs.runner import Ticket
from jobfsm.store.sql import SqlStore
from tests.conftest import FakeClock

NAMES = ["alpha", "beta", "gamma"]
# Sparse enough that a day of fires stays cheap; the hourly ones cross the DST hours.
SCHEDULES = ["0 */2 * * *", "30 * * * *", "30 2 * * *", "15 1 * * *", "0 9 * * mon-fri", "@daily"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York"]
START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # two days before Berlin's spring-forward


class FakeRunner:
    def __init__(self) -> None:
        self.running: dict[int, Ticket] = {}
        self.scheduler: Scheduler | None = None

    def submit(self, ticket: Ticket) -> None:
        self.running[ticket.run_id] = ticket

    def burst(self) -> AbstractContextManager[None]:
        return nullcontext()

    def collect(self) -> None:
        pass

    def starting(self) -> bool:
        return False

    def finish(self, run_id: int, outcome: Outcome, now: datetime) -> None:
        ticket = self.running.pop(run_id)
        code = {Outcome.SUCCEEDED: 0, Outcome.FAILED: 3}.get(outcome)
        result = JobResult(
            job_name=ticket.job.name, run_id=run_id, start_time=now, end_time=now, exit_code=code,
            stdout="", stderr="", duration_seconds=0.0, status=outcome, signal=None,
            message="" if code is not None else outcome.value, stdout_path=None, stderr_path=None,
        )
        assert self.scheduler is not None
        self.scheduler.post_result(ticket, result)

    def terminate_all(self, *, reason: str, grace_seconds: float = 0.0) -> None:
        self.kill_all(reason=reason)

    def kill_all(self, *, reason: str) -> None:
        assert self.scheduler is not None
        for run_id in list(self.running):
            self.finish(run_id, Outcome.KILLED, self.scheduler.clock.now())

    def close(self) -> None:
        pass


class SchedulerMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="jobfsm-sched-"))
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir()
        self.clock = FakeClock(START)
        self.store = SqlStore(f"sqlite:///{self.root / 'store.db'}")
        self.logger = JobLogger(self.root / "logs")
        self.files: dict[str, dict] = {}  # what the folder holds (valid documents)
        self.windows: dict[str, list[tuple[datetime, datetime, str, str]]] = {}
        self.open_since: dict[str, datetime] = {}
        self.expected_catch_up: set[tuple[str, datetime]] = set()
        # (job, fires): fires missed while down under catch_up none, never to run. The fires
        # themselves, not the window: a later edit may give the job other fire times in it,
        # which a later start-up rightly catches up (see the restart rule).
        self.forbidden: list[tuple[str, frozenset[datetime]]] = []
        self.disabled_since: dict[str, datetime] = {}
        self.generation = 0
        self._boot()

    def teardown(self) -> None:
        for scheduler in getattr(self, "schedulers", []):
            scheduler.close_folder()
        if hasattr(self, "scheduler"):
            self.logger.close()
            self.store.close()
            shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------
    def _boot(self) -> None:
        self.generation += 1
        self.runner = FakeRunner()
        self.scheduler = Scheduler(
            self.jobs_dir, self.store, self.logger, clock=self.clock,
            # a node name that is not host:pid, so never taken for a live local process
            node=f"sched-{self.generation}", runner=self.runner,
        )
        self.runner.scheduler = self.scheduler
        self.scheduler.folder.delete_settle_seconds = 0.0  # a deletion applies at once (the settle: test_watch.py)
        self.schedulers = [*getattr(self, "schedulers", []), self.scheduler]
        self.scheduler.start()
        self.scheduler.apply_results()

    def _write(self, name: str, document: dict | None, raw: str | None = None) -> None:
        path = self.jobs_dir / f"{name}.json"
        tmp = self.jobs_dir / f".{name}.tmp"
        if document is None and raw is None:
            path.unlink()
        else:
            tmp.write_text(raw if raw is not None else json.dumps(document))
            os.replace(tmp, path)  # a new inode: the reload sees the change even within one tick
        self.scheduler.reload()
        self.scheduler.apply_results()

    def _close_window(self, name: str) -> None:
        start = self.open_since.pop(name, None)
        if start is not None:
            doc = self.files[name]
            self.windows.setdefault(name, []).append(
                (start, self.clock.now(), doc["schedule"], doc.get("timezone", "UTC"))
            )

    def _open_window(self, name: str) -> None:
        doc = self.files.get(name)
        if doc is not None and doc["enabled"]:
            self.open_since[name] = self.clock.now()
            self.disabled_since.pop(name, None)
        elif doc is not None:
            self.disabled_since.setdefault(name, self.clock.now())

    def _runs(self, name: str | None = None) -> list:
        return self.store.list_runs(name)

    # -- rules: files ------------------------------------------------------------------------
    @rule(
        name=st.sampled_from(NAMES), schedule=st.sampled_from(SCHEDULES), zone=st.sampled_from(ZONES),
        overlap=st.sampled_from(["skip", "queue", "allow"]), catch_up=st.sampled_from(["none", "latest", "all"]),
        enabled=st.booleans(), retries=st.integers(0, 1),
    )
    def write_job(self, name, schedule, zone, overlap, catch_up, enabled, retries) -> None:
        if name in self.files:
            self._close_window(name)
        doc = {
            "name": name, "schedule": schedule, "timezone": zone, "command": "true",
            "working_directory": "/tmp", "enabled": enabled, "overlap": overlap,
            "catch_up": catch_up, "retries": retries, "retry_delay_seconds": 600,
        }
        old = self.files.get(name)
        self.files[name] = doc
        if old is not None and old["enabled"] and not enabled:
            self.disabled_since[name] = self.clock.now()
        self._write(name, doc)
        self._open_window(name)

    @precondition(lambda self: self.files)
    @rule(data=st.data(), enabled=st.booleans())
    def toggle(self, data, enabled) -> None:
        name = data.draw(st.sampled_from(sorted(self.files)))
        self._close_window(name)
        was = self.files[name]["enabled"]
        self.files[name] = {**self.files[name], "enabled": enabled}
        if was and not enabled:
            self.disabled_since[name] = self.clock.now()
        self._write(name, self.files[name])
        self._open_window(name)

    @precondition(lambda self: self.files)
    @rule(data=st.data())
    def delete_job(self, data) -> None:
        name = data.draw(st.sampled_from(sorted(self.files)))
        self._close_window(name)
        self._write(name, None)
        del self.files[name]
        self.disabled_since.pop(name, None)

    @precondition(lambda self: self.files)
    @rule(data=st.data())
    def break_file(self, data) -> None:
        """An invalid edit: the job keeps its last good definition (nothing else changes)."""
        name = data.draw(st.sampled_from(sorted(self.files)))
        self._write(name, None, raw='{"name": "' + name + '", "schedule": "61 * * * *"}')
        assert str(self.jobs_dir / f"{name}.json") in self.scheduler.file_problems
        assert self.scheduler.jobs[name].config.schedule == self.files[name]["schedule"]
        self._write(name, self.files[name])  # fixed again, same content as before the break

    # -- rules: time and runs ----------------------------------------------------------------
    @rule(minutes=st.integers(1, 36 * 60))
    def advance(self, minutes: int) -> None:
        target = self.clock.now() + timedelta(minutes=minutes)
        for _ in range(10_000):
            due = self.scheduler.next_due()
            if due is None or due > target:
                break
            self.clock.set(max(due.astimezone(UTC), self.clock.now()))
            self.scheduler.dispatch_due()
            self.scheduler.apply_results()
        else:
            raise AssertionError("the scheduler never ran out of due fires")
        self.clock.set(target)

    @precondition(lambda self: self.runner.running)
    @rule(data=st.data(), outcome=st.sampled_from([Outcome.SUCCEEDED, Outcome.FAILED, Outcome.TIMED_OUT]))
    def finish_run(self, data, outcome) -> None:
        run_id = data.draw(st.sampled_from(sorted(self.runner.running)))
        self.runner.finish(run_id, outcome, self.clock.now())
        self.scheduler.apply_results()
        assert self.store.get_run(run_id).status is outcome.run_status

    @rule(down_minutes=st.integers(0, 3 * 24 * 60), crash=st.booleans())
    def restart(self, down_minutes: int, crash: bool) -> None:
        for name in list(self.open_since):
            self._close_window(name)
        if not crash:
            self.scheduler.shutdown(grace_seconds=0)
            assert not self.store.list_runs(status=RunStatus.RUNNING)
        last_fires = {name: self.store.last_fire(name) for name in self.files}
        self.clock.advance(minutes=down_minutes)
        restarted = self.clock.now()
        running_before = {r.id for r in self.store.list_runs(status=RunStatus.RUNNING)}
        self._boot()
        for run_id in running_before:
            assert self.store.get_run(run_id).status is RunStatus.LOST
        for name, doc in self.files.items():
            if not doc["enabled"]:
                continue
            missed = []
            if last_fires[name] is not None:
                missed = [
                    f for f in cron.fires_between(doc["schedule"], doc.get("timezone", "UTC"), last_fires[name], restarted)
                    if f < restarted
                ]
            kept = {"none": [], "latest": missed[-1:], "all": missed[-MAX_CATCH_UP:]}[doc["catch_up"]]
            self.expected_catch_up.update((name, f.astimezone(UTC)) for f in kept)
            rest = missed[: len(missed) - len(kept)]
            if rest:  # what was not run is said once, at the newest of those fires
                records = [r for r in self.store.list_runs(name, status=RunStatus.SKIPPED)
                           if r.scheduled_for == rest[-1] and "missed while the daemon was down" in r.message]
                assert len(records) == 1, f"{name}: no record of the {len(rest)} fire(s) missed while down"
            if doc["catch_up"] == "none":
                self.forbidden.append((name, frozenset(f.astimezone(UTC) for f in missed)))
        for name in self.files:
            self._open_window(name)

    # -- invariants ---------------------------------------------------------------------------
    @invariant()
    def runs_are_what_the_schedule_and_policies_say(self) -> None:
        runs = self._runs()
        self._every_due_fire_is_recorded_once(runs)
        for run in runs:
            if run.status is RunStatus.SKIPPED:
                assert run.message, "a skipped run must say why"
        self._disabled_jobs_never_start(runs)

    def _every_due_fire_is_recorded_once(self, runs: list) -> None:
        keys = [(r.job, r.scheduled_for, r.attempt) for r in runs if r.scheduled_for is not None]
        assert len(keys) == len(set(keys)), "a fire was claimed twice"
        recorded = {(r.job, r.scheduled_for.astimezone(UTC)) for r in runs if r.scheduled_for and r.attempt == 0}
        now = self.clock.now()
        spans = [(n, w) for n, ws in self.windows.items() for w in ws]
        spans += [(n, (s, now, self.files[n]["schedule"], self.files[n].get("timezone", "UTC"))) for n, s in self.open_since.items()]
        for name, (start, end, schedule, zone) in spans:
            for fire in cron.fires_between(schedule, zone, start, end):
                assert (name, fire.astimezone(UTC)) in recorded, f"fire {fire} of {name} was dropped"
        missing = self.expected_catch_up - recorded
        assert not missing, f"catch-up fires not run: {sorted(missing)[:3]}"
        for name, fires in self.forbidden:
            late = [r for r in runs if r.job == name and r.trigger in (Trigger.SCHEDULE, Trigger.CATCH_UP)
                    and r.status is not RunStatus.SKIPPED  # a record of what did not run
                    and r.scheduled_for and r.scheduled_for.astimezone(UTC) in fires]
            assert not late, f"{name} ran fires missed while down without catch_up: {late[:2]}"

    # Property 9: disabled jobs are never scheduled
    def _disabled_jobs_never_start(self, runs: list) -> None:
        for name, since in self.disabled_since.items():
            started = [r for r in runs if r.job == name and r.status is not RunStatus.SKIPPED
                       and r.started_at is not None and r.started_at > since]
            assert not started, f"disabled job {name} started {started[:1]}"

    @invariant()
    def store_states_equal_model_states(self) -> None:
        if not hasattr(self, "scheduler"):
            return
        for name, entry in self.scheduler.jobs.items():
            assert self.store.get_state(name) == entry.model.job_state
            doc = self.files[name]
            if not doc["enabled"] and not entry.model.active_runs:
                assert entry.model.job_state is JobState.DISABLED
        assert set(self.scheduler.jobs) == set(self.files)


SchedulerMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=20, deadline=None)
test_scheduler_interleavings = pytest.mark.timeout(900)(SchedulerMachine.TestCase)
