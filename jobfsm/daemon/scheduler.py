"""The scheduler core: which job fires when, what a fire does, and what a finished run changes.

It knows nothing of signals, threads or the housekeeping timetable (that is :mod:`jobfsm.daemon.process`),
and it takes its clock, store, runner and logger from its caller, so a test can drive it through
months of fires in milliseconds (``tests/test_scheduler_stateful.py``).

The :class:`Scheduler` is the face the daemon, the service's local runs and the tests see; the
work is done by the collaborators it owns, one responsibility each:

- :mod:`~jobfsm.daemon.jobset`: the loaded jobs and applying their files;
- :mod:`~jobfsm.daemon.agenda`: the heap of next fires; :mod:`~jobfsm.daemon.retries`: the retries due;
- :mod:`~jobfsm.daemon.dispatch`: starting what is due, late and missed fires, clock steps;
- :mod:`~jobfsm.daemon.claims`: claiming fires in the store and starting them, as the policy
  (:mod:`~jobfsm.daemon.policy`) decides; :mod:`~jobfsm.daemon.waiting`: the starts that wait;
- :mod:`~jobfsm.daemon.results`: finished runs back to the store; :mod:`~jobfsm.daemon.outage`:
  what happens while the store fails;
- :mod:`~jobfsm.daemon.unit`: one store transaction per step, undone in memory if it rolls back;
  :mod:`~jobfsm.daemon.burst`: the scheduler's side of a burst of starts.

**One thread owns every transition.** Runs go to a :class:`~jobfsm.runs.runner.Runner`; results
come back through :meth:`Scheduler.post_result`, which sets :attr:`Scheduler.wake`; only the loop
thread, in :meth:`Scheduler.apply_results`, touches the lifecycle, the store and the job entries.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from jobfsm.clock import Clock
from jobfsm.daemon import cluster, recovery, shutdown, spool
from jobfsm.daemon.agenda import Agenda
from jobfsm.daemon.burst import MAX_RESULT_HOLD_SECONDS, Burst
from jobfsm.daemon.claims import Claims
from jobfsm.daemon.control import Control
from jobfsm.daemon.dispatch import Dispatch
from jobfsm.daemon.jobset import JobSet
from jobfsm.daemon.outage import Outage, OutageMode
from jobfsm.daemon.policy import Start
from jobfsm.daemon.results import Results
from jobfsm.daemon.retries import Retries
from jobfsm.daemon.spool import SPOOL_FILE
from jobfsm.daemon.unit import Transactions
from jobfsm.daemon.waiting import Waiting
from jobfsm.daemon.waker import Waker
from jobfsm.errors import StoreError
from jobfsm.joblog import JobLogger
from jobfsm.lifecycle import Announcer, JobModel, Lifecycle
from jobfsm.model import JobConfig, Outcome, RunStatus, Trigger
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS, this_host
from jobfsm.runs.executor import JobExecutor, JobResult
from jobfsm.runs.runner import ProcessRunner, Runner, Ticket
from jobfsm.store import RunRecord, Store, TriggerRequest
from jobfsm.store.abc import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_RUNS

__all__ = ["MAX_RESULT_HOLD_SECONDS", "SPOOL_FILE", "Scheduler"]  # tests import the constants from here


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
        self.wake = Waker()
        """What the loop sleeps on: runs ending set it (and a signal, through the daemon)."""
        self.stopping = False
        self.fires = fires
        """False for a scheduler that only runs what it is asked to (the service's local runs)."""
        self.dead_after = dead_after
        """Seconds without a heartbeat, by the database's clock, after which a node is dead."""
        self.live_nodes: list[str] = []
        """The live nodes at the last heartbeat (this one included): who claims which fire first."""
        self._started = False
        self.clock_watch = cluster.ClockWatch(lambda message: self.logger.error(message, component="cluster"))
        self.in_flight: dict[int, tuple[Ticket, JobModel]] = {}
        self.results = Results(self)
        if runner is None:
            runner = ProcessRunner(
                executor or JobExecutor(logger.log_dir, clock=clock), max_workers, self.results.post,
                on_idle=self.wake.set,
            )
        self.runner = runner
        self.burst = Burst(runner, clock)
        self.transactions = Transactions(store, logger, self.events, runner)
        self.lifecycle = Lifecycle(store, clock=clock, announce=self.events.announce,
                                   before_event=self.transactions.touch)
        self.job_set = JobSet(self)
        self.jobs = self.job_set.jobs
        """The loaded jobs by name (the job set's: only it adds and removes them)."""
        self.file_problems = self.job_set.file_problems
        self.folder = self.job_set.folder
        self.control = Control(self)
        """Pauses and kill requests (:mod:`jobfsm.daemon.control`)."""
        self.agenda = Agenda(self.jobs, logger, node=node, live_nodes=lambda: self.live_nodes, fires=fires)
        self.retries = Retries(self.jobs, logger, clock=clock, later=self.transactions.later)
        self.claims = Claims(self)
        self.waiting = Waiting(self)
        self.dispatch = Dispatch(self)
        self.outage_mode = OutageMode(self)
        self.lost_runs = recovery.LostRuns(store, self.events, node=node, dead_after=dead_after)
        self._requests_backlog: list[TriggerRequest] = []
        """Trigger requests claimed from the store but not yet served (the store failed)."""

    # -- start-up -------------------------------------------------------------------------
    def start(self) -> None:
        """Recover from a crash, load every job, catch up missed fires, schedule the rest.

        Fires are caught up only when no other node is alive (:attr:`live_nodes`, from the
        heartbeat the daemon sends first): while one is, the schedule was not down, and a node
        joining must not record as missed a fire the others are about to run (its clock may be
        ahead). Nodes starting together all catch up; the fires' unique keys make it once."""
        now = self.clock.now()
        spool.replay(Path(self.logger.log_dir) / SPOOL_FILE, self.store, self.logger)
        self.reap_lost(now, found="at start-up")
        self.control.refresh()  # before catch-up: a paused job's missed fires are skipped as paused
        self.job_set.catch_up_missed = not any(node != self.node for node in self.live_nodes)
        self._started = True
        if not self.store.spans_hosts:
            self.live_nodes = []
        self.reload(catch_up=True)
        self.store.warm_up()  # the first fire must not pay for compiling the store's statements
        self.dispatch.looked(now)

    def spool_unrecorded(self) -> None:
        """The daemon stops with results the store could not take: keep them in the logs folder."""
        self.results.spool()

    def close_folder(self) -> None:
        self.folder.close()

    def reap_lost(self, now: datetime | None = None, *, found: str = "") -> int:
        """Mark lost the runs of every dead node (:class:`jobfsm.daemon.recovery.LostRuns`) and
        retry those whose job has retries left, here; how many runs were lost."""
        now = now or self.clock.now()
        dead = self.lost_runs.reap(now, found=found)
        for node in dead:
            self.retries.after_lost(node, now)
        return sum(len(node.lost) for node in dead)

    # -- job files ----------------------------------------------------------------------
    @property
    def watch_fd(self) -> int | None:
        """Readable when the jobs folder changed (None: it is not watched; reload polls)."""
        return self.folder.fd

    @property
    def watching(self) -> bool:
        return self.folder.fd is not None

    def reload(self, *, catch_up: bool = False) -> bool:
        """Apply new, changed and deleted job files (:meth:`JobSet.reload`); True if anything changed."""
        return self.job_set.reload(catch_up=catch_up)

    # -- what the service's local runs ask for ------------------------------------------
    def add_job(self, config: JobConfig, *, user: str | None = None) -> None:
        """Load or update one job, as a reload of its file would (``user`` is who changed it)."""
        self.job_set.add(config, user=user)

    def remove_job(self, name: str) -> None:
        """Forget a deleted job (a run in progress finishes)."""
        self.job_set.remove(name)

    def trigger(self, name: str, *, user: str) -> RunRecord | None:
        """Run a loaded job now, under its overlap policy: the run, or the skipped run saying why."""
        self.control.refresh()  # the service's local runs hear no bell: read the pauses now
        with self.transactions.batched():
            return self.claims.fire(self.jobs[name], Start(Trigger.MANUAL, user=user))

    def busy(self) -> bool:
        """Runs going, retries due or starts waiting: work that is not done yet."""
        return bool(self.in_flight or self.retries or any(e.waiting for e in self.jobs.values()))

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
            with self.transactions.batched():
                for _ in range(foreign - still):
                    self.lifecycle.finish(model, outcome, reason="it ended in another process")
                self.waiting.release(entry)

    # -- fires ------------------------------------------------------------------------------
    def next_due(self) -> datetime | None:
        """When the loop must wake next for a fire or a retry (None: nothing scheduled, or
        the store is failing and nothing may be claimed until it is back)."""
        if self.outage is not None:
            return None
        times = []
        fire = self.agenda.next_time()
        if fire is not None:  # the fire time, plus this node's claim delay
            times.append(datetime.fromtimestamp(fire, tz=self.clock.now().tzinfo))
        retry = self.retries.next_time()
        if retry is not None:
            times.append(datetime.fromtimestamp(retry, tz=self.clock.now().tzinfo))
        pause_end = self.control.next_end()
        if pause_end is not None:
            times.append(pause_end)
        return min(times) if times else None

    def dispatch_due(self) -> int:
        """Start every run that is due now; returns how many jobs' fires were handled."""
        return self.dispatch.due()

    def start_waiting(self, name: str) -> None:
        """Start what waits for job ``name`` if it may start now (its pause ended)."""
        self.waiting.release_named(name)

    def retry_waiting(self) -> int:
        """Start what waits for a run on another node, once the store says it ended; how many."""
        return self.waiting.retry_blocked()

    # -- results ------------------------------------------------------------------------------
    def post_result(self, ticket: Ticket, result: JobResult) -> None:
        """Called by the runner (any thread): hand a result to the loop (:meth:`Results.post`)."""
        self.results.post(ticket, result)

    def apply_results(self) -> int:
        """Record every finished run (loop thread only, :meth:`Results.apply`); returns how many."""
        return self.results.apply()

    def running_count(self) -> int:
        """Runs whose process has not ended yet (in flight, their result not back)."""
        return self.results.running()

    # -- the store's outages ----------------------------------------------------------------
    @property
    def outage(self) -> Outage | None:
        """Set while the store is failing: no fires are claimed, results wait in memory."""
        return self.outage_mode.current

    def store_failed(self, exc: StoreError) -> None:
        """The store failed: claim nothing until it is back (:meth:`OutageMode.failed`)."""
        self.outage_mode.failed(exc)

    def guarded(self, step: Callable[[], object]) -> None:
        """Run a housekeeping step unless the store is failing; a store error starts an outage."""
        self.outage_mode.guarded(step)

    def probe_seconds(self) -> float | None:
        """Seconds until the store should be tried again (None: it is not failing)."""
        return self.outage_mode.probe_seconds()

    def probe_store(self, *, force: bool = False) -> bool:
        """While the store is failing, try it when it is time; True once it works (:meth:`OutageMode.probe`)."""
        return self.outage_mode.probe(force=force)

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
                with self.transactions.batched():
                    self.claims.serve(request)
            except StoreError:
                self._requests_backlog = requests[i:]
                raise
        return len(requests)

    def heartbeat(self) -> None:
        """Beat (stamped by the database's clock), compare this node's clock with it, learn
        the live nodes; a node that finds it was declared dead says so (it is registered again)."""
        before = self.clock.now()
        beat = self.store.beat(self.node, pid=os.getpid(), host=this_host(), at=before)
        after = self.clock.now()
        self.clock_watch.check(beat.at, before, after, monotonic=self.clock.monotonic())
        if beat.declared_dead_by is not None:
            when = beat.declared_dead_at.isoformat() if beat.declared_dead_at else "?"
            self.results.declared_lost(beat.declared_dead_by)
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
