"""The scheduler core: which job fires when, what a fire does, and what a finished run changes.

It knows nothing of signals, threads or the housekeeping timetable (that is :mod:`jobfsm.daemon.process`),
and it takes its clock, store, runner and logger from its caller, so a test can drive it through
months of fires in milliseconds (``tests/test_scheduler_stateful.py``).

- **Timing.** Each enabled job has one entry in a heap keyed by its next fire (UTC timestamp);
  the loop sleeps until the heap's top. No scan of every job, ever. A job whose schedule changes
  gets a new *generation*; stale heap entries are dropped when they surface.
- **Dispatch first, compute later.** :meth:`dispatch_due` starts every due run before it computes
  any next fire, so computing next fires never delays a start.
- **One thread owns every transition.** Runs go to a :class:`~jobfsm.runs.runner.Runner` (in
  production a :class:`~jobfsm.runs.runner.ProcessRunner`: bounded, one reaper thread); results come
  back through :meth:`post_result`, which sets :attr:`wake`; only the loop thread, in
  :meth:`apply_results`, touches the lifecycle, the store and the job entries.
- **Each fire once.** A fire is claimed in the store under (job, scheduled_for, attempt) before it
  starts, so two daemons sharing a store never both run it. A skipped fire is claimed too, as a
  ``skipped`` run with the reason. Fires the loop itself missed (the host was suspended or
  overloaded past the next fire) are recorded as skipped with the reason: never dropped silently.
- **Overlap** is enforced per node, from the job's model (``active_runs``): ``skip`` records the
  fire as skipped, ``queue`` keeps at most one waiting schedule fire (more are skipped, with the
  reason), ``allow`` starts at once. Catch-up, retries and manual triggers wait in the same queue
  when the job is busy, so catch-up runs of one job run one after another, oldest first.
"""

from __future__ import annotations

import functools
import heapq
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from jobfsm import cron
from jobfsm.clock import Clock, utc
from jobfsm.config.loader import validate_file
from jobfsm.daemon import cluster, policy, recovery, shutdown, spool
from jobfsm.daemon.control import Control
from jobfsm.daemon.finish import finish_of
from jobfsm.daemon.jobfolder import JobFolder
from jobfsm.daemon.policy import Start, Verdict
from jobfsm.daemon.unit import UnitOfWork
from jobfsm.daemon.waker import Waker
from jobfsm.errors import InvalidTransitionError, StoreError
from jobfsm.joblog import JobLogger
from jobfsm.lifecycle import (
    Announcer,
    JobModel,
    Lifecycle,
    RunFinished,
    RunSkipped,
    RunStarted,
)
from jobfsm.model import JobConfig, JobState, Outcome, Overlap, RunStatus, Trigger
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS, this_host
from jobfsm.problems import Problem
from jobfsm.runs.executor import JobExecutor, JobResult
from jobfsm.runs.runner import ProcessRunner, Runner, Ticket
from jobfsm.store import Claim, DeadNode, Finish, RunRecord, Store, TriggerRequest
from jobfsm.store.abc import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_RUNS

log = logging.getLogger(__name__)

MAX_RESULT_HOLD_SECONDS = 3.0
"""Finished runs wait at most about this long while a burst of runs is being started."""
DISPATCH_CHUNK = 256
"""At most this many fires (or results) are recorded in one store transaction."""
SKIP_CHUNK = 1000
"""Skipped fires (a late loop, a store outage, a clock step) are recorded this many at a time."""
CLOCK_JUMP_SECONDS = 2.0
"""A wall clock that moved this much more or less than the monotonic clock was stepped."""
PROBE_FIRST_SECONDS = 0.25
PROBE_MAX_SECONDS = 5.0
"""A failed store is tried again after 0.25 s, then twice as long each time, at most 5 s apart."""
SPOOL_FILE = "unrecorded-results.jsonl"
"""Results the store could not take before the daemon stopped: recorded at the next start."""
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(eq=False, slots=True)
class JobEntry:
    config: JobConfig
    model: JobModel
    next_fire: datetime | None = None
    generation: int = 0
    waiting: deque[Start] | None = None
    """Starts waiting for the job's current run; created on first use (most jobs never queue)."""
    delay: float = 0.0
    """Seconds after ``next_fire`` at which this node claims it (:func:`cluster.claim_delay`)."""




@dataclass(slots=True)
class Outage:
    """The store failed: since when, why, and when to try it again."""

    since: datetime
    reason: str
    next_probe: float
    """``clock.monotonic()`` of the next attempt."""
    attempts: int = 1


class Scheduler:
    def __init__(
        self,
        jobs_dir: Path,
        store: Store,
        logger: JobLogger,
        *,
        clock: Clock,
        node: str,
        runner: Runner | None = None,
        executor: JobExecutor | None = None,
        max_workers: int = 32,
        keep_runs: int = DEFAULT_KEEP_RUNS,
        keep_days: float = DEFAULT_KEEP_DAYS,
        events: Announcer | None = None,
        fires: bool = True,
        dead_after: float = DEFAULT_DEAD_AFTER_SECONDS,
    ) -> None:
        self.jobs_dir = Path(jobs_dir)
        self.store = store
        self.logger = logger
        self.clock = clock
        self.node = node
        self.keep_runs = keep_runs
        self.keep_days = keep_days
        self.events = events if events is not None else Announcer()
        """What happens to runs and states is announced here; the job log listens, others may."""
        self.events.subscribe(logger.on_event)
        self.lifecycle = Lifecycle(store, clock=clock, announce=self.events.announce, before_event=self._touch)
        self.wake = Waker()
        """What the loop sleeps on: runs ending set it (and a signal, through the daemon)."""
        self._results: queue.SimpleQueue[tuple[Ticket, JobResult]] = queue.SimpleQueue()
        if runner is None:
            runner = ProcessRunner(
                executor or JobExecutor(logger.log_dir, clock=clock), max_workers, self.post_result,
                on_idle=self.wake.set,
            )
        self.runner = runner
        self.jobs: dict[str, JobEntry] = {}
        self.file_problems: dict[str, list[Problem]] = {}
        self.in_flight: dict[int, tuple[Ticket, JobModel]] = {}
        self.stopping = False
        self._heap: list[tuple[float, int, str, int]] = []
        self._retries: list[tuple[float, int, str, Start]] = []
        self._seq = 0
        self._unit: UnitOfWork | None = None
        self.outage: Outage | None = None
        """Set while the store is failing: no fires are claimed, results wait in memory."""
        self._unrecorded: deque[tuple[Ticket, JobResult, bool]] = deque()
        """Results not yet recorded (the store failed), with whether their log line is written.
        Bounded by the runs in flight: no run starts while the store is failing."""
        self._requests_backlog: list[TriggerRequest] = []
        """Trigger requests claimed from the store but not yet served (the store failed)."""
        self._late_reason: str | None = None
        """Why the loop is late, when it knows (a store outage, a clock step), for skipped fires."""
        self._seen: tuple[float, float] | None = None
        """(wall timestamp, monotonic) when the loop last looked: a step of the wall clock shows."""
        self._new_states: dict[str, JobState] = {}
        self._held_since: float | None = None
        """clock.monotonic() since when finished runs wait for the runner to finish starting."""
        self.folder = JobFolder(self.jobs_dir, self.logger.error)
        self._last_fires: dict[str, datetime] = {}
        self.fires = fires
        """False for a scheduler that only runs what it is asked to (the service's local runs)."""
        self.control = Control(self)
        """Pauses and kill requests (:mod:`jobfsm.daemon.control`)."""
        self.dead_after = dead_after
        """Seconds without a heartbeat, by the database's clock, after which a node is dead."""
        self.live_nodes: list[str] = []
        self._started = False
        """The live nodes at the last heartbeat (this one included): who claims which fire first."""
        self.clock_watch = cluster.ClockWatch(lambda message: self.logger.error(message, component="cluster"))
        self._declared_lost: dict[int, str] = {}
        """Runs of this node that another declared lost while they went on: by whom."""
        self._catch_up_missed = True
        """False when another node was alive at start-up: nothing was missed then."""
        self._blocked: set[str] = set()
        """Jobs whose waiting starts wait for a run on another node (looked at by :meth:`retry_waiting`)."""

    # -- start-up -------------------------------------------------------------------------
    def start(self) -> None:
        """Recover from a crash, load every job, catch up missed fires, schedule the rest.

        Fires are caught up only when no other node is alive (:attr:`live_nodes`, from the
        heartbeat the daemon sends first): while one is, the schedule was not down, and a node
        joining must not record as missed a fire the others are about to run (its clock may be
        ahead). Nodes starting together all catch up; the fires' unique keys make it once."""
        now = self.clock.now()
        self._replay_spool()
        self.reap_lost(now, found="at start-up")
        self.control.refresh()  # before catch-up: a paused job's missed fires are skipped as paused
        self._catch_up_missed = not any(node != self.node for node in self.live_nodes)
        self._started = True
        if not self.store.spans_hosts:
            self.live_nodes = []
        self.reload(catch_up=True)
        self.store.warm_up()  # the first fire must not pay for compiling the store's statements
        self._seen = (now.timestamp(), self.clock.monotonic())

    def _replay_spool(self) -> None:
        spool.replay(Path(self.logger.log_dir) / SPOOL_FILE, self.store, self.logger)

    def spool_unrecorded(self) -> None:
        """The daemon stops with results the store could not take: keep them in the logs folder."""
        self._drain_results()
        if self._unrecorded:
            spool.write(Path(self.logger.log_dir) / SPOOL_FILE, [(t.run_id, r) for t, r, _ in self._unrecorded], self.logger)
            self._unrecorded.clear()

    def close_folder(self) -> None:
        self.folder.close()

    def reap_lost(self, now: datetime | None = None, *, found: str = "") -> int:
        """Mark lost the runs of every dead node (:func:`jobfsm.daemon.recovery.reap_lost`) and
        retry those whose job has retries left, here; how many runs were lost."""
        now = now or self.clock.now()
        dead = recovery.reap_lost(self.store, self.events, node=self.node, now=now, found=found,
                                  dead_after=self.dead_after)
        for node in dead:
            self._retry_lost(node, now)
        return sum(len(node.lost) for node in dead)

    def _retry_lost(self, dead: DeadNode, now: datetime) -> None:
        """A lost run is retried like a failed one (trigger ``retry``, the next attempt of its
        fire), due ``retry_delay_seconds`` after its node was last seen: detecting the death
        counts towards the delay. Each lost run came back to this node alone, so once."""
        for run in dead.lost:
            entry = self.jobs.get(run.job)
            if entry is None:
                continue
            since = dead.last_seen or now
            due = policy.retry_due(entry.config, attempt=run.attempt, succeeded=False,
                                   enabled=entry.config.enabled, now=since)
            if due is None:
                continue
            self.logger.info(
                f"run {run.id} of job {run.job!r} was lost with node {dead.node}; retrying it here "
                f"(attempt {run.attempt + 1} of {entry.config.retries})", component="cluster")
            retry = Start(Trigger.RETRY, scheduled_for=run.scheduled_for, attempt=run.attempt + 1, user=run.user)
            self._push_retry(max(due, now).timestamp(), run.job, retry)

    # -- job files ----------------------------------------------------------------------
    @property
    def watch_fd(self) -> int | None:
        """Readable when the jobs folder changed (None: it is not watched; reload polls)."""
        return self.folder.fd

    @property
    def watching(self) -> bool:
        return self.folder.fd is not None

    def reload(self, *, catch_up: bool = False) -> bool:
        """Apply new, changed and deleted job files; True if anything changed. When the store
        fails part way, the files applied so far stay applied and the rest are read again on
        the next call (from a full scan: the watcher has handed over their changes already)."""
        if self._new_states:
            self._write_new_states()
        folder = self.folder
        stats = folder.current()
        if stats is None:
            return False
        now = self.clock.now()
        states = self.store.all_states() if catch_up else None  # start-up: one query, not one a job
        self._last_fires = self.store.last_fires() if catch_up else {}
        before, applied = folder.applied, dict(folder.applied)
        try:
            for path in sorted(set(before) - set(stats)):
                self.file_problems.pop(path, None)
                self._remove(Path(path).stem)
                del applied[path]
            for path in sorted(stats):
                if before.get(path) != stats[path]:
                    self._apply_file(path, now, catch_up=catch_up, states=states)
                applied[path] = stats[path]
        finally:
            folder.applied = applied
        folder.done()
        self._write_new_states()
        if catch_up:
            enabled = sum(1 for e in self.jobs.values() if e.config.enabled)
            self.logger.info(f"loaded {len(self.jobs)} job(s), {enabled} enabled", component="loader")
        return True

    def _apply_file(self, path: str, now: datetime, *, catch_up: bool, states: dict[str, JobState] | None) -> None:
        report = validate_file(path)
        for warning in report.warnings:
            self.logger.info(f"config warning: {warning}", component="loader")
        if not report.valid or report.config is None:
            self.file_problems[path] = report.errors
            kept = " (keeping its last good version)" if Path(path).stem in self.jobs else ""
            for problem in report.errors:
                self.logger.config_error(path, f"{problem.json_path}: {problem.message}{kept}")
            return
        self.file_problems.pop(path, None)
        self._upsert(report.config, now, catch_up=catch_up, states=states)

    def _write_new_states(self) -> None:
        """The states of jobs seen for the first time, in one statement (kept if it fails)."""
        if self._new_states:
            self.store.set_states(self._new_states, self.clock.now())
            self._new_states = {}

    def _restore_model(self, config: JobConfig, state: JobState | None, user: str | None = None) -> JobModel:
        model = self.lifecycle.model_for(config.name, enabled=config.enabled, state=state)
        if state is None:
            self._new_states[config.name] = model.job_state  # written in one batch by reload()
        elif state is JobState.RUNNING and not self._has_running_runs(config.name):
            self.lifecycle.fail(model, reason="its run was lost when the daemon stopped")
        self.lifecycle.sync(model, enabled=config.enabled, user=user)
        return model

    def _has_running_runs(self, name: str) -> bool:
        return bool(self.store.list_runs(name, status=RunStatus.RUNNING, limit=1))

    def _upsert(
        self, config: JobConfig, now: datetime, *, catch_up: bool, states: dict[str, JobState] | None,
        user: str | None = None,
    ) -> None:
        entry = self.jobs.get(config.name)
        if entry is None:
            state = states.get(config.name) if states is not None else self.store.get_state(config.name)
            entry = JobEntry(config, self._restore_model(config, state, user))
            if not catch_up:  # at start-up one summary line says it
                self.logger.info(
                    f"loaded job {config.name!r} ({'enabled' if config.enabled else 'disabled'})",
                    component="loader",
                )
            if catch_up and config.enabled and self._catch_up_missed:
                self._catch_up(entry, now, self._last_fires.get(config.name))
            self.jobs[config.name] = entry  # only now: a store failure above leaves the job new
            self._reschedule(entry, now)
            return
        old, entry.config = entry.config, config
        self.lifecycle.sync(entry.model, enabled=config.enabled, user=user)
        self.logger.info(f"reloaded job {config.name!r}", component="loader")
        if (old.schedule, old.timezone, old.enabled) != (config.schedule, config.timezone, config.enabled):
            self._reschedule(entry, now)

    # -- what the service's local runs ask for ------------------------------------------
    def add_job(self, config: JobConfig, *, user: str | None = None) -> None:
        """Load or update one job, as a reload of its file would (``user`` is who changed it)."""
        self._upsert(config, self.clock.now(), catch_up=False, states=None, user=user)
        self._write_new_states()

    def remove_job(self, name: str) -> None:
        """Forget a deleted job (a run in progress finishes)."""
        if name in self.jobs:
            self._remove(name)
        else:
            self.store.delete_state(name)

    def trigger(self, name: str, *, user: str) -> RunRecord | None:
        """Run a loaded job now, under its overlap policy: the run, or the skipped run saying why."""
        self.control.refresh()  # the service's local runs hear no bell: read the pauses now
        with self._batched():
            return self._fire(self.jobs[name], Start(Trigger.MANUAL, user=user))

    def busy(self) -> bool:
        """Runs going, retries due or starts waiting: work that is not done yet."""
        return bool(self.in_flight or self._retries or any(e.waiting for e in self.jobs.values()))

    def reconcile(self) -> None:
        """Close the runs a job's model counts but this scheduler did not start (another
        process's, running when the job was loaded) once the store says they ended; then what
        waited for them may start."""
        ours: dict[int, int] = {}
        for _, model in self.in_flight.values():
            ours[id(model)] = ours.get(id(model), 0) + 1
        for entry in list(self.jobs.values()):
            model = entry.model
            foreign = model.active_runs - ours.get(id(model), 0)
            if foreign <= 0:
                continue
            runs = self.store.list_runs(entry.config.name, limit=50)
            still = sum(1 for r in runs if r.status is RunStatus.RUNNING and r.id not in self.in_flight)
            ended = next((r for r in runs if r.status not in (RunStatus.RUNNING, RunStatus.SKIPPED)), None)
            outcome = ended.outcome if ended is not None and ended.outcome is not None else Outcome.FAILED
            with self._batched():
                for _ in range(foreign - still):
                    self.lifecycle.finish(model, outcome, reason="it ended in another process")
                self._start_waiting(entry)

    def _remove(self, name: str) -> None:
        entry = self.jobs.pop(name, None)
        if entry is None:
            return
        entry.generation = -1
        self.store.delete_state(name)
        self.logger.info(f"job {name!r} removed (its file is gone); a run in progress finishes", component="loader")

    def _reschedule(self, entry: JobEntry, after: datetime) -> None:
        self._seq += 1
        entry.generation = self._seq  # unique across entries: a re-created job never revives old heap items
        entry.next_fire = None
        if not entry.config.enabled or not self.fires:
            return
        try:
            fire = cron.next_fire(entry.config.schedule, entry.config.timezone, after)
        except Exception as exc:  # a schedule that validated but cannot be computed
            self.logger.schedule_error(entry.config.name, str(exc))
            return
        entry.next_fire = fire
        entry.delay = cluster.claim_delay(self.node, self.live_nodes, entry.config.name, fire)
        self._seq += 1
        heapq.heappush(self._heap, (fire.timestamp() + entry.delay, self._seq, entry.config.name, entry.generation))

    def _catch_up(self, entry: JobEntry, now: datetime, last: datetime | None) -> None:
        """Fires missed while the daemon was down, after the job's last recorded fire ``last``:
        run per ``catch_up``, and one skipped record that says what was not."""
        config = entry.config
        missed = policy.catch_up(config, last, now) if last is not None else None
        if missed is None:
            return
        how_many = f"{missed.count}" if missed.count is not None else "more than a year of"
        self.logger.info(
            f"job {config.name!r}: {how_many} fire(s) missed while the daemon was down, from "
            f"{missed.first.isoformat()}; catching up {len(missed.run)} (catch_up: {config.catch_up.value})",
            component="scheduler",
        )
        with self._batched():
            if missed.record is not None:
                skipped = (missed.count or 0) - len(missed.run)
                what = f"{skipped} fire(s)" if missed.count is not None else "fires"
                self._skip_many([(entry, Start(Trigger.SCHEDULE, scheduled_for=missed.record),
                                  f"missed while the daemon was down: {what} from {missed.first.isoformat()} "
                                  f"to {missed.record.isoformat()} did not run (catch_up: {config.catch_up.value})")])
            for fire in missed.run:
                self._fire(entry, Start(Trigger.CATCH_UP, scheduled_for=fire))

    # -- fires ------------------------------------------------------------------------------
    def next_due(self) -> datetime | None:
        """When the loop must wake next for a fire or a retry (None: nothing scheduled, or
        the store is failing and nothing may be claimed until it is back)."""
        if self.outage is not None:
            return None
        while self._heap:
            _, _, name, generation = self._heap[0]
            entry = self.jobs.get(name)
            if entry is not None and entry.generation == generation:
                break
            heapq.heappop(self._heap)
        times = []
        if self._heap:  # the fire time, plus this node's claim delay
            times.append(datetime.fromtimestamp(self._heap[0][0], tz=self.clock.now().tzinfo))
        if self._retries:
            times.append(datetime.fromtimestamp(self._retries[0][0], tz=self.clock.now().tzinfo))
        pause_end = self.control.next_end()
        if pause_end is not None:
            times.append(pause_end)
        return min(times) if times else None

    def dispatch_due(self) -> int:
        """Start every run that is due now; returns how many jobs' fires were handled."""
        now = self.clock.now()
        self._notice_clock(now)
        if not self.stopping and self.outage is None and self.control.next_end() is not None:
            self.control.expire(now)
        if self.stopping or self.outage is not None or not self._due(now.timestamp()):
            return 0
        with self.runner.burst():
            handled = self._start_due(now)
        for entry, after in handled:  # next fires only after every due run was started
            self._reschedule(entry, after)
        self._late_reason = None
        return len(handled)

    def _due(self, stamp: float) -> bool:
        return bool((self._heap and self._heap[0][0] <= stamp) or (self._retries and self._retries[0][0] <= stamp))

    def _start_due(self, now: datetime) -> list[tuple[JobEntry, datetime]]:
        """Claim and start the fires and retries due at ``now``: the jobs whose fire it was, each
        with the time to compute its next fire after. When the store fails part way, the jobs
        and retries it did not record go back where they were, to be tried when it is back."""
        stamp = now.timestamp()
        handled: list[tuple[JobEntry, datetime]] = []
        work: list[tuple[JobEntry, Start]] = []
        skips: list[tuple[JobEntry, Start, str]] = []
        after: dict[int, datetime] = {}
        first_started = False
        try:
            while self._heap and self._heap[0][0] <= stamp:
                _, _, name, generation = heapq.heappop(self._heap)
                entry = self.jobs.get(name)
                if entry is None or entry.generation != generation or entry.next_fire is None:
                    continue
                fire = entry.next_fire
                if now - fire < timedelta(seconds=1 + entry.delay):
                    starts, late = [Start(Trigger.SCHEDULE, scheduled_for=fire)], list[tuple[JobEntry, Start, str]]()
                    after[id(entry)] = max(fire, now - _JUST_BEFORE)
                else:
                    starts, late = self._late_fires(entry, fire, now)
                    after[id(entry)] = now
                if not first_started and not late:  # the first run of a burst starts before the rest is sorted out
                    first_started = True
                    handled.append((entry, after[id(entry)]))
                    with self._batched():
                        self._fire_many([(entry, starts[0])])
                    continue
                work.extend((entry, start) for start in starts)
                skips.extend(late)
                handled.append((entry, after[id(entry)]))
            while self._retries and self._retries[0][0] <= stamp:
                _, _, name, retry = heapq.heappop(self._retries)
                retry_entry = self.jobs.get(name)
                if retry_entry is not None and retry_entry.config.enabled:
                    work.append((retry_entry, retry))
        except StoreError as exc:  # the first fire: nothing else was taken from the heap yet
            self._put_back(handled[-1:], [])
            self.store_failed(exc)
            return handled[:-1]
        done = skipped = 0
        try:
            # One store transaction per chunk; chunks grow so that a burst costs few commits.
            size = 4
            while done < len(work):
                with self._batched():
                    self._fire_many(work[done : done + size])
                self.runner.collect()  # runs that ended free their slots for the next ones
                done = min(done + size, len(work))
                size = min(size * 4, DISPATCH_CHUNK)
            while skipped < len(skips):  # after every start: the starts matter more
                with self._batched():
                    self._skip_many(skips[skipped : skipped + SKIP_CHUNK])
                skipped = min(skipped + SKIP_CHUNK, len(skips))
        except StoreError as exc:
            pending = {id(entry) for entry, _ in work[done:]} | {id(entry) for entry, _, _ in skips[skipped:]}
            retries = [(entry, start) for entry, start in work[done:] if start.trigger is Trigger.RETRY]
            back = [(entry, when) for entry, when in handled if id(entry) in pending]
            self._put_back(back, retries)
            self.store_failed(exc)
            return [(entry, when) for entry, when in handled if id(entry) not in pending]
        return handled

    def _put_back(self, entries: list[tuple[JobEntry, datetime]], retries: list[tuple[JobEntry, Start]]) -> None:
        """Fires and retries the store did not record become due again, as they were. Claims
        that did commit are not repeated: a fire's unique key returns nothing the second time."""
        for entry, _ in entries:
            if entry.next_fire is not None:
                self._seq += 1
                heapq.heappush(self._heap, (entry.next_fire.timestamp() + entry.delay, self._seq,
                                            entry.config.name, entry.generation))
        now = self.clock.now().timestamp()
        for entry, retry in retries:
            self._seq += 1
            heapq.heappush(self._retries, (now, self._seq, entry.config.name, retry))

    def _late_fires(self, entry: JobEntry, fire: datetime, now: datetime) -> tuple[list[Start], list[tuple[JobEntry, Start, str]]]:
        """The policy's answer for a job the loop comes to late (:func:`policy.late_fires`)."""
        late = policy.late_fires(entry.config, fire, now, why=self._late_reason)
        if late.due > len(late.starts) + len(late.skips):
            self.logger.info(
                f"job {entry.config.name!r}: {late.due} fires were due while "
                f"{self._late_reason or 'the daemon was late'}; recording the newest "
                f"{len(late.starts) + len(late.skips)}", component="scheduler",
            )
        return late.starts, [(entry, start, reason) for start, reason in late.skips]

    def _notice_clock(self, now: datetime) -> None:
        """Compare how far the wall clock and the monotonic clock moved since the last look: a
        step of the wall clock (an operator, a bad NTP start) is logged, retries keep their delay
        (a duration, not a time), and fires it jumped over are recorded as skipped, saying so."""
        mono, wall = self.clock.monotonic(), now.timestamp()
        seen, self._seen = self._seen, (wall, mono)
        if seen is None:
            return
        step = (wall - seen[0]) - (mono - seen[1])
        if abs(step) < CLOCK_JUMP_SECONDS:
            return
        direction = "forward" if step > 0 else "back"
        self.logger.error(
            f"the wall clock jumped {direction} by {abs(step):.0f} s; "
            + ("fires it jumped over are recorded as skipped (catch_up decides), retries keep their delay"
               if step > 0 else "fires already run are not run again when their times come back; "
               "retries keep their delay"),
            component="scheduler",
        )
        if step > 0:
            self._late_reason = f"the wall clock jumped forward by {step:.0f} s"
        self._retries = [(due + step, seq, name, start) for due, seq, name, start in self._retries]
        heapq.heapify(self._retries)

    def _fire(self, entry: JobEntry, start: Start) -> RunRecord | None:
        """Run, skip or queue ``start`` as the policy decides; the run recorded, if any."""
        model, config = entry.model, entry.config
        decision = policy.decide(
            config, start, enabled=model.enabled, running=model.active_runs,
            running_ids=self._running_ids(model),
            fire_waiting=any(w.trigger is Trigger.SCHEDULE for w in entry.waiting or ()),
            paused=self.control.paused(config.name),
        )
        if decision.verdict is Verdict.RUN:
            return self._start(entry, start)
        if decision.verdict is Verdict.SKIP:
            return self._record_skip(entry, start, decision.reason)
        if decision.verdict is Verdict.QUEUE:
            return self._enqueue(entry, start, decision.reason)
        return None

    def _running_ids(self, model: JobModel) -> str:
        if not model.active_runs:
            return ""
        return ", ".join(str(i) for i, (_, m) in self.in_flight.items() if m is model) or "?"

    def _fire_many(self, work: list[tuple[JobEntry, Start]]) -> None:
        """:meth:`_fire` for each, with the plain starts (a keyed fire of a job that is free)
        claimed in one store call. A job's later fires in the same list, and every fire that
        may skip or wait, go one by one after them, in order: a job's fires keep their order."""
        plain: list[tuple[JobEntry, Start]] = []
        rest: list[tuple[JobEntry, Start]] = []
        refused: list[tuple[JobEntry, Start]] = []
        seen: set[str] = set()
        for entry, start in work:
            name = entry.config.name
            (rest if name in seen or not self._plain_start(entry, start) else plain).append((entry, start))
            seen.add(name)
        late = [(e, s) for e, s in plain if e.delay > 0 and s.scheduled_for is not None]
        if late:  # fires another node comes first for: claim only those it has not taken (no lock waits)
            taken = self.store.claimed_fires([(e.config.name, s.scheduled_for, s.attempt)
                                              for e, s in late if s.scheduled_for is not None])
            if taken:
                plain = [(e, s) for e, s in plain if s.scheduled_for is None
                         or (e.config.name, utc(s.scheduled_for), s.attempt) not in taken]
        if plain:
            now = self.clock.now()
            runs = self.store.claim_runs([
                Claim(
                    entry.config.name, trigger=start.trigger, node=self.node, started_at=now,
                    scheduled_for=start.scheduled_for, attempt=start.attempt, user=start.user,
                    exclusive=_exclusive(entry.config),
                )
                for entry, start in plain
            ])
            for (entry, start), run in zip(plain, runs, strict=True):
                if run is not None:
                    self._begin(entry, start, run)
                elif _exclusive(entry.config):
                    refused.append((entry, start))  # taken by another node, or the job runs there
                else:
                    log.debug("fire %s of %r was claimed by another node", start.scheduled_for, entry.config.name)
        if refused:  # in a cluster, mostly fires another node claimed first: one query for all
            taken = self.store.claimed_fires([(e.config.name, s.scheduled_for, s.attempt)
                                              for e, s in refused if s.scheduled_for is not None])
            for entry, start in refused:
                if start.scheduled_for is not None and (entry.config.name, utc(start.scheduled_for),
                                                        start.attempt) in taken:
                    continue
                if not self._claim_refused(entry, start)[0]:
                    self._fire(entry, start)
        for entry, start in rest:
            self._fire(entry, start)

    def _skip_many(self, skips: list[tuple[JobEntry, Start, str]]) -> None:
        """Record fires as skipped with their reasons, in one store call."""
        now = self.clock.now()
        runs = self.store.claim_runs([
            Claim(entry.config.name, trigger=start.trigger, node=self.node, started_at=now,
                  scheduled_for=start.scheduled_for, attempt=start.attempt, status=RunStatus.SKIPPED,
                  message=reason)
            for entry, start, reason in skips
        ])
        for (entry, start, reason), run in zip(skips, runs, strict=True):
            if run is not None:
                self.events.announce(RunSkipped(entry.config.name, run.id, reason, start.trigger))

    def _plain_start(self, entry: JobEntry, start: Start) -> bool:
        return policy.is_plain(entry.config, start, enabled=entry.model.enabled, running=entry.model.active_runs,
                               paused=self.control.paused(entry.config.name) is not None)

    def _enqueue(self, entry: JobEntry, start: Start, reason: str) -> RunRecord | None:
        """Record the waiting start at once (as ``skipped``, saying why), so a crash can never
        make it vanish; it becomes ``running`` when its turn comes. It is claimed exclusive, so
        that its start is refused while the job runs on another node."""
        run = self._record_skip(entry, start, reason, exclusive=_exclusive(entry.config))
        if run is not None:
            if entry.waiting is None:
                entry.waiting = deque()
            waiting = entry.waiting
            waiting.append(replace(start, run_id=run.id))
            self._on_rollback(waiting.pop)
        return run

    def _record_skip(self, entry: JobEntry, start: Start, reason: str, *, exclusive: bool = False) -> RunRecord | None:
        now = self.clock.now()
        run = self.store.claim_run(Claim(
            entry.config.name,
            trigger=start.trigger,
            node=self.node,
            started_at=now,
            scheduled_for=start.scheduled_for,
            attempt=start.attempt,
            status=RunStatus.SKIPPED,
            message=reason,
            user=start.user,
            exclusive=exclusive,
        ))
        if run is None:
            return None  # another node claimed this fire
        self.events.announce(RunSkipped(entry.config.name, run.id, reason, start.trigger))
        if start.request_id is not None:
            self.store.resolve_trigger_request(start.request_id, run.id)
        return run

    def _start(self, entry: JobEntry, start: Start) -> RunRecord | None:
        config = entry.config
        exclusive = _exclusive(config)
        for _ in range(3):  # an exclusive claim refused by a run that ended meanwhile is made again
            if start.run_id is not None:
                run = self.store.start_queued_run(start.run_id, started_at=self.clock.now())
                if run is None and exclusive and self._still_waiting(entry, start):
                    return None
            else:
                run = self.store.claim_run(Claim(
                    config.name,
                    trigger=start.trigger,
                    node=self.node,
                    started_at=self.clock.now(),
                    scheduled_for=start.scheduled_for,
                    attempt=start.attempt,
                    user=start.user,
                    exclusive=exclusive,
                ))
                if run is None and exclusive:
                    settled, record = self._claim_refused(entry, start)
                    if not settled:
                        continue
                    return record
            break
        if run is None:
            log.debug("fire %s of %r was claimed by another node", start.scheduled_for, config.name)
            return None
        self._begin(entry, start, run)
        return run

    def _claim_refused(self, entry: JobEntry, start: Start) -> tuple[bool, RunRecord | None]:
        """An exclusive claim (``overlap: skip``/``queue``) came back empty: the fire is another
        node's, or the job runs on another node, and this fire is skipped or waits, naming that
        run. ``(False, None)``: neither any more (that run ended meanwhile); claim again."""
        name = entry.config.name
        if start.scheduled_for is not None and self.store.fire_claimed(name, start.scheduled_for, start.attempt):
            return True, None
        met = self.store.running_exclusive(name)
        if met is None:
            return False, None
        decision = policy.decide(
            entry.config, start, enabled=entry.model.enabled, running=1, running_ids=f"{met.id} on node {met.node}",
            fire_waiting=any(w.trigger is Trigger.SCHEDULE for w in entry.waiting or ()),
        )
        if decision.verdict is Verdict.SKIP:
            return True, self._record_skip(entry, start, decision.reason)
        if decision.verdict is Verdict.QUEUE:
            run = self._enqueue(entry, start, decision.reason)
            self._blocked.add(name)
            return True, run
        return decision.verdict is Verdict.IGNORE, None

    def _still_waiting(self, entry: JobEntry, start: Start) -> bool:
        """A waiting start could not begin: is that because its job runs on another node? Then
        it waits again, first in line, and :meth:`retry_waiting` tries it later."""
        met = self.store.running_exclusive(entry.config.name)
        if met is None or met.id == start.run_id:
            return False
        if entry.waiting is None:
            entry.waiting = deque()
        waiting = entry.waiting
        waiting.appendleft(start)
        self._on_rollback(waiting.popleft)
        self._blocked.add(entry.config.name)
        return True

    def retry_waiting(self) -> int:
        """Start what waits for a run on another node, once the store says it ended (the
        housekeeping's; a run here ending starts its job's waiting ones at once); how many."""
        started = 0
        for name in sorted(self._blocked):
            entry = self.jobs.get(name)
            if entry is None or not entry.waiting:
                self._blocked.discard(name)
                continue
            before = len(entry.waiting)
            with self._batched():
                self._start_waiting(entry)
            started += before - len(entry.waiting)
            if not entry.waiting or entry.waiting[0].run_id is None:
                self._blocked.discard(name)
        return started

    def _begin(self, entry: JobEntry, start: Start, run: RunRecord) -> None:
        """The run is claimed: move the job to ``running``, hand it to the runner once the
        claim commits (never a process whose claim could vanish), log it then."""
        config, model = entry.config, entry.model
        try:
            self.lifecycle.start(model, trigger=start.trigger, run_id=run.id, overlap=config.overlap,
                                 paused=self.control.paused(config.name) is not None)
        except InvalidTransitionError as exc:  # defensive: _fire checked the state
            self.store.finish_run(Finish(
                run.id, outcome=Outcome.NOT_STARTED, ended_at=self.clock.now(), exit_code=None,
                duration_seconds=0.0, message=str(exc),
            ))
            return
        if start.request_id is not None and start.run_id is None:
            self.store.resolve_trigger_request(start.request_id, run.id)
        ticket = Ticket(run.id, config, start.trigger, start.scheduled_for, start.attempt)
        self.in_flight[run.id] = (ticket, model)
        self._on_rollback(functools.partial(self.in_flight.pop, run.id, None))
        self.events.announce(RunStarted(config.name, run.id, start.trigger, start.scheduled_for, config.command_text))
        if self._unit is not None:
            self._unit.tickets.append(ticket)
        else:
            self.runner.submit(ticket)

    # -- the unit of work around a store transaction --------------------------------------
    @contextmanager
    def _batched(self) -> Iterator[None]:
        """Record what happens inside in one store transaction. If it rolls back, what it
        changed in memory (job models, runs in flight, queues) is undone and the error goes
        on; once it commits, its log lines are written and the runs it claimed start."""
        if self._unit is not None:
            yield
            return
        unit = self._unit = UnitOfWork()
        try:
            # One flush of the logs for the whole batch; its events wait for the commit.
            with self.logger.buffered(), self.events.held():
                try:
                    with self.store.batch():
                        yield
                except BaseException:
                    unit.roll_back()
                    raise
                finally:
                    self._unit = None
                for call in unit.after:
                    call()
        finally:
            self._unit = None
        for ticket in unit.tickets:
            self.runner.submit(ticket)

    def _later(self, call: Callable[[], None]) -> None:
        """Run ``call`` once the current store transaction commits (now, outside one)."""
        if self._unit is None:
            call()
        else:
            self._unit.after.append(call)

    def _on_rollback(self, undo: Callable[[], object]) -> None:
        if self._unit is not None:
            self._unit.on_rollback(undo)

    def _touch(self, model: JobModel) -> None:
        """The lifecycle is about to change ``model``: remember what it was, for a rollback."""
        if self._unit is not None:
            self._unit.touch(model)

    # -- results ------------------------------------------------------------------------------
    def post_result(self, ticket: Ticket, result: JobResult) -> None:
        """Called by the runner (any thread): hand a result to the loop, and wake it unless the
        runner is busy starting runs (it wakes the loop when it is done: see :meth:`apply_results`)."""
        self._results.put((ticket, result))
        if not self.runner.starting():
            self.wake.set()

    def apply_results(self) -> int:
        """Record every finished run (loop thread only); returns how many.

        Not while the runner is starting runs (a burst): recording them would compete with the
        starts for the GIL, and the starts matter more. The runner wakes the loop when it is
        done; in a long burst results are held at most ``MAX_RESULT_HOLD_SECONDS`` (the
        daemon's loop wakes every second for housekeeping). At shutdown everything is recorded.

        While the store is failing, results are kept in memory (their log lines are written at
        once) and recorded when it is back."""
        if self.outage is not None:
            self._drain_results()
            return 0
        if not self.stopping and self.runner.starting():
            now = self.clock.monotonic()
            if self._held_since is None:
                self._held_since = now
            if now - self._held_since < MAX_RESULT_HOLD_SECONDS:
                return 0
        self._held_since = None
        count = 0
        while True:
            items = self._take_results(DISPATCH_CHUNK)
            if not items:
                return count
            try:
                with self._batched():
                    self.store.finish_runs([finish_of(result) for _, result, _ in items])
                    for ticket, result, logged in items:
                        self._complete(ticket, result, logged=logged)
                    if self._declared_lost:
                        self._later(functools.partial(self._note_declared_lost, [t for t, _, _ in items]))
            except StoreError as exc:
                self._unrecorded.extendleft(reversed(items))
                self.store_failed(exc)
                return count
            count += len(items)

    def _note_declared_lost(self, tickets: list[Ticket]) -> None:
        for ticket in tickets:
            by = self._declared_lost.pop(ticket.run_id, None)
            if by is not None:
                self.logger.info(
                    f"run {ticket.run_id} of job {ticket.job.name!r} ended after {by} had declared it lost; "
                    "its result is recorded on that run (a retry elsewhere, if any, is a run of its own)",
                    component="cluster")

    def _take_results(self, limit: int) -> list[tuple[Ticket, JobResult, bool]]:
        items: list[tuple[Ticket, JobResult, bool]] = []
        while self._unrecorded and len(items) < limit:
            items.append(self._unrecorded.popleft())
        while len(items) < limit:
            try:
                ticket, result = self._results.get_nowait()
            except queue.Empty:
                break
            items.append((ticket, result, False))
        return items

    def _drain_results(self) -> None:
        """Keep every result that came back for later, writing its log line now."""
        while True:
            try:
                ticket, result = self._results.get_nowait()
            except queue.Empty:
                return
            self.events.announce(RunFinished(result, ticket.trigger))
            self._unrecorded.append((ticket, result, True))

    def _complete(self, ticket: Ticket, result: JobResult, *, logged: bool = False) -> None:
        """What a finished run changes (the run itself is recorded already)."""
        if not logged:
            self.events.announce(RunFinished(result, ticket.trigger))
        item = self.in_flight.pop(ticket.run_id)
        self._on_rollback(functools.partial(self.in_flight.__setitem__, ticket.run_id, item))
        model = item[1]
        self.lifecycle.finish(model, result.status, run_id=ticket.run_id, reason=result.message)
        entry = self.jobs.get(ticket.job.name)
        if entry is None:  # its file was deleted while it ran: leave no state behind
            self.store.delete_state(ticket.job.name)
            return
        if entry.model is not model:  # deleted and created again meanwhile: the new job's state wins
            self.store.set_state(ticket.job.name, entry.model.job_state, self.clock.now())
            return
        if self.stopping:
            return
        due = policy.retry_due(entry.config, attempt=ticket.attempt, succeeded=result.success,
                               enabled=entry.config.enabled, now=self.clock.now())
        if due is not None:
            retry = Start(Trigger.RETRY, scheduled_for=ticket.scheduled_for, attempt=ticket.attempt + 1)
            self._later(functools.partial(self._push_retry, due.timestamp(), entry.config.name, retry))
        self._start_waiting(entry)

    def _start_waiting(self, entry: JobEntry) -> None:
        """Start what waits for the job, as far as its overlap policy lets it now."""
        model = entry.model
        paused = self.control.paused(entry.config.name) is not None
        while entry.waiting and policy.may_start_waiting(entry.config, running=model.active_runs, paused=paused):
            if model.job_state is JobState.DISABLED:
                waiting = list(entry.waiting)
                entry.waiting.clear()
                self._on_rollback(functools.partial(entry.waiting.extend, waiting))
                break
            start = entry.waiting.popleft()
            self._on_rollback(functools.partial(entry.waiting.appendleft, start))
            self._start(entry, start)
            if entry.waiting and entry.waiting[0] is start:
                break  # it waits for a run on another node

    def start_waiting(self, name: str) -> None:
        """Start what waits for job ``name`` if it may start now (its pause ended)."""
        entry = self.jobs.get(name)
        if entry is not None and entry.waiting:
            with self._batched():
                self._start_waiting(entry)

    def _push_retry(self, due: float, name: str, retry: Start) -> None:
        self._seq += 1
        heapq.heappush(self._retries, (due, self._seq, name, retry))

    # -- the store's outages ----------------------------------------------------------------
    def store_failed(self, exc: StoreError) -> None:
        """The store failed: claim nothing until it is back, try it again with back-off. The
        outage is logged once, when it starts, and once when it ends."""
        mono = self.clock.monotonic()
        if self.outage is not None:
            self.outage.attempts += 1
            self.outage.next_probe = mono + min(PROBE_FIRST_SECONDS * 2 ** self.outage.attempts, PROBE_MAX_SECONDS)
            return
        self.outage = Outage(since=self.clock.now(), reason=str(exc), next_probe=mono + PROBE_FIRST_SECONDS)
        self.logger.error(
            f"store unavailable: {exc}; claiming no fires until it is back (trying again every "
            f"{PROBE_FIRST_SECONDS:g}-{PROBE_MAX_SECONDS:g} s); {len(self.in_flight)} run(s) in progress go on "
            "and their results are recorded when it is back",
            component="store",
        )

    def guarded(self, step: Callable[[], object]) -> None:
        """Run a housekeeping step unless the store is failing; a store error starts an outage."""
        if self.outage is not None:
            return
        try:
            step()
        except StoreError as exc:
            self.store_failed(exc)

    def probe_seconds(self) -> float | None:
        """Seconds until the store should be tried again (None: it is not failing)."""
        if self.outage is None:
            return None
        return max(self.outage.next_probe - self.clock.monotonic(), 0.0)

    def probe_store(self, *, force: bool = False) -> bool:
        """While the store is failing, try it when it is time (a heartbeat: a write, as claims
        are); True once it works. Then the results kept meanwhile are recorded, runs whose
        claim committed while the daemon saw an error are started, and the fires that came due
        meanwhile run late or follow their ``catch_up`` (see :meth:`_late_fires`)."""
        outage = self.outage
        if outage is None:
            return True
        if not force and self.clock.monotonic() < outage.next_probe:
            return False
        try:
            self.heartbeat()
            self._adopt_orphans()
        except StoreError as exc:
            self.store_failed(exc)
            return False
        now = self.clock.now()
        self.outage = None
        self._late_reason = f"the store was unavailable from {outage.since.isoformat()} to {now.isoformat()}"
        self.logger.info(
            f"store available again after {(now - outage.since).total_seconds():.1f} s "
            f"({outage.attempts} failed attempt(s)); recording {len(self._unrecorded) + self._results.qsize()} "
            "result(s) kept meanwhile; fires that came due meanwhile run late, older ones follow catch_up",
            component="store",
        )
        return True

    def _adopt_orphans(self) -> None:
        """Runs this node claimed in a transaction that committed although the daemon saw an
        error (a connection lost at commit) exist in the store but not here: start them now,
        or close them when their job is gone."""
        for run in self.store.list_runs(status=RunStatus.RUNNING):
            if run.node != self.node or run.id in self.in_flight:
                continue
            entry = self.jobs.get(run.job)
            start = Start(run.trigger, scheduled_for=run.scheduled_for, attempt=run.attempt, user=run.user)
            model = entry.model if entry is not None else None
            free = model is not None and entry is not None and model.enabled and policy.may_start_waiting(
                entry.config, running=model.active_runs)
            if free and entry is not None:
                self.logger.info(f"run {run.id} of job {run.job!r} was claimed as the store failed; starting it now",
                                 component="store")
                with self._batched():
                    self._begin(entry, start, run)
            else:
                self.store.finish_run(Finish(
                    run.id, outcome=Outcome.NOT_STARTED, ended_at=self.clock.now(), exit_code=None,
                    duration_seconds=0.0,
                    message="not started: the store failed as the run was claimed, and the job could not start it then",
                ))

    # -- housekeeping -------------------------------------------------------------------------
    def poll_triggers(self) -> int:
        """Take manual trigger requests from the store and run them under the overlap policy.
        Requests taken but not served when the store failed are served first next time."""
        if self.stopping:
            return 0
        self.control.poll()  # first: a trigger of a job paused a moment ago is skipped as paused
        requests = self._requests_backlog + self.store.claim_trigger_requests(node=self.node, at=self.clock.now())
        self._requests_backlog = []
        for i, request in enumerate(requests):
            try:
                with self._batched():
                    self._serve(request)
            except StoreError:
                self._requests_backlog = requests[i:]
                raise
        return len(requests)

    def _serve(self, request: TriggerRequest) -> None:
        entry = self.jobs.get(request.job)
        if entry is not None:
            self._fire(entry, Start(Trigger.MANUAL, user=request.user, request_id=request.id))
            return
        run = self.store.claim_run(Claim(
            request.job, trigger=Trigger.MANUAL, node=self.node, started_at=self.clock.now(),
            status=RunStatus.SKIPPED, user=request.user,
            message=f"no valid job named {request.job!r} is loaded on {self.node}",
        ))
        if run is not None:
            self.store.resolve_trigger_request(request.id, run.id)

    def heartbeat(self) -> None:
        """Beat (stamped by the database's clock), compare this node's clock with it, learn
        the live nodes; a node that finds it was declared dead says so (it is registered again)."""
        before = self.clock.now()
        beat = self.store.beat(self.node, pid=os.getpid(), host=this_host(), at=before)
        after = self.clock.now()
        self.clock_watch.check(beat.at, before, after, monotonic=self.clock.monotonic())
        if beat.declared_dead_by is not None:
            when = beat.declared_dead_at.isoformat() if beat.declared_dead_at else "?"
            for run_id in self.in_flight:
                self._declared_lost[run_id] = beat.declared_dead_by
            self.logger.error(
                f"this node ({self.node}) was declared dead by {beat.declared_dead_by} at {when} (no heartbeat "
                f"for over {self.dead_after:g} s); its running runs were marked lost there and may be retried "
                f"elsewhere; registered again; {len(self.in_flight)} run(s) in progress go on and their results "
                "are kept on their runs", component="cluster")
        # On one host's store the daemons share its CPU, so fires are not spread (nor the live
        # nodes read at every beat); start-up still asks, to know whether another node is alive.
        if self.store.spans_hosts or not self._started:
            self.live_nodes = [n.node for n in self.store.nodes(seen_within=self.dead_after, dead_after=self.dead_after,
                                                                at=after) if n.alive or n.node == self.node]

    def prune(self) -> int:
        """Apply the retention policy; output files of pruned runs go too."""
        pruned = self.store.prune_runs(now=self.clock.now(), keep_last=self.keep_runs, keep_days=self.keep_days)
        for run in pruned:
            for path in (run.stdout_path, run.stderr_path):
                if path:
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        self.logger.error(f"cannot remove old output file {path!r}: {exc.strerror}")
        return len(pruned)

    # -- shutdown ------------------------------------------------------------------------------
    def shutdown(self, *, grace_seconds: float, kill_now: threading.Event | None = None) -> None:
        """Stop firing; let running jobs finish within the grace period, record them, close
        (:func:`jobfsm.daemon.shutdown.shut_down`)."""
        shutdown.shut_down(self, grace_seconds=grace_seconds, kill_now=kill_now)

    def running_count(self) -> int:
        """Runs whose process has not ended yet (in flight, their result not back)."""
        return len(self.in_flight) - len(self._unrecorded) - self._results.qsize()


def _exclusive(config: JobConfig) -> bool:
    """Runs of the job may not overlap on any node: the store enforces it for such claims."""
    return config.overlap is not Overlap.ALLOW
