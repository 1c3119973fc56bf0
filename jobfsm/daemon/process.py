"""``jobfsm start``: the process around the scheduler — signals, housekeeping, the loop.

- **Signal handlers only set flags** and wake the loop (they run between bytecodes of the
  main thread; doing real work there is unsafe). The first SIGTERM/SIGINT stops new fires and
  lets running jobs finish within ``grace_seconds``, which includes killing what is left
  (SIGTERM, then SIGKILL at its end: see ``Scheduler.shutdown``); a second one kills them at
  once: the loop, waiting in the shutdown, is woken by the handler to do it.
- **SIGHUP** reloads: the log files are reopened (so logrotate may move them away without
  ``copytruncate``) and the jobs folder is scanned in full, not only where inotify saw a change.
- **The loop sleeps until something is due or happens**: the next fire or retry, the next
  housekeeping step (heartbeat four times per ``--dead-after``, lost runs of dead nodes five
  times, pruning every hour, on a monotonic timetable that a step of the wall clock does not disturb), a
  finished run or a signal, a change in the jobs folder (inotify), a trigger request (the
  store's bell, :mod:`jobfsm.store.bell`). Without inotify or a bell it looks every second.
- **The store may fail** (a dropped connection, a lock held too long, a full disk): the
  scheduler then claims nothing, keeps results in memory and tries the store again with
  back-off (:meth:`Scheduler.probe_store`); housekeeping that needs the store waits. At
  start-up an unavailable store is waited for the same way.
- **A fatal error is logged before the process exits** non-zero (``logs/scheduler_main.log``
  and stderr), with the traceback in the log.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType
from typing import TextIO

from jobfsm import __version__
from jobfsm.clock import Clock, SystemClock
from jobfsm.daemon.operations import Operations, OperationsOptions
from jobfsm.daemon.outage import PROBE_FIRST_SECONDS, PROBE_MAX_SECONDS
from jobfsm.daemon.scheduler import Scheduler
from jobfsm.daemon.timetable import Timetable
from jobfsm.errors import JobfsmError, StoreError, StoreUnavailableError
from jobfsm.joblog import JobLogger
from jobfsm.lifecycle.events import Announcer
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS, default_node
from jobfsm.runs.executor import JobExecutor
from jobfsm.store import Store, open_store
from jobfsm.store.abc import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_RUNS
from jobfsm.store.bell import Bell

log = logging.getLogger(__name__)

DEFAULT_MAX_WORKERS = 32
LOOK_SECONDS = 1.0
"""How often job files and trigger requests are looked at when nothing can wake the daemon for
them (no inotify, no trigger bell); with both, a change or a request wakes it at once."""
LOOK_ANYWAY_SECONDS = 60.0
"""With both, a look this often all the same (an event lost to a full inotify queue)."""
HEARTBEAT_SECONDS = 5
PRUNE_SECONDS = 3600
REAP_SECONDS = 10


def cluster_intervals(dead_after: float, *, spans_hosts: bool = True) -> tuple[float, float]:
    """How often to beat and to look for dead nodes with ``--dead-after``. On a store several
    hosts share: four beats within it (a late one or two do not make a node dead), and a look a
    fifth of it apart, so a dead node's runs are lost within ``dead_after`` plus 2 s of its last
    beat (with the default 10 s an idle daemon wakes every 2 s). On a store of one host a dead
    node is found by its process being gone, so the beats only need to stay within
    ``dead_after`` and the look can be as rare as before several hosts (an idle daemon's cost)."""
    if spans_hosts:
        return min(dead_after / 4, HEARTBEAT_SECONDS), min(max(dead_after / 5, 0.5), REAP_SECONDS)
    return min(dead_after / 2, HEARTBEAT_SECONDS), min(max(dead_after, 0.5), REAP_SECONDS)


GIL_SWITCH_SECONDS = 0.0005
"""How long the loop may hold the GIL while the reaper thread waits for it (CPython's default is
5 ms): in a burst the reaper starts the runs that waited for a slot, and each of its turns
would otherwise wait behind the loop's recording of fires."""


class Daemon:
    def __init__(
        self,
        jobs_dir: Path,
        logs_dir: Path,
        store_url: str,
        *,
        max_workers: int | None = None,
        grace_seconds: float = 30.0,
        node: str | None = None,
        keep_runs: int = DEFAULT_KEEP_RUNS,
        keep_days: float = DEFAULT_KEEP_DAYS,
        clock: Clock | None = None,
        stderr: TextIO | None = None,
        dead_after: float = DEFAULT_DEAD_AFTER_SECONDS,
        operations: OperationsOptions | None = None,
    ) -> None:
        self.dead_after = dead_after
        self.jobs_dir = Path(jobs_dir)
        self.logs_dir = Path(logs_dir).absolute()  # output paths in the store must not depend on the cwd
        self.store_url = store_url
        self.max_workers = max_workers or DEFAULT_MAX_WORKERS
        self.grace_seconds = grace_seconds
        self.keep_runs, self.keep_days = keep_runs, keep_days
        self.node = node or default_node()
        self.clock = clock or SystemClock()
        self.stderr = stderr
        self.stop = threading.Event()
        self.kill_now = threading.Event()
        self.reload_requested = threading.Event()
        self.ready = threading.Event()
        """Set once start-up is done and the loop runs (tests wait on it)."""
        self.scheduler: Scheduler | None = None
        self.operations = operations or OperationsOptions()
        self.ops: Operations | None = None
        """Notifications and metrics (listeners of the scheduler's events), once serving."""

    # -- signals ------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.kill_now.set()
        self.stop.set()
        if self.scheduler is not None:
            self.scheduler.wake.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested.set()
        if self.scheduler is not None:
            self.scheduler.wake.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    def request_stop(self) -> None:
        """Stop as a SIGTERM would (for embedding and tests)."""
        self._on_signal(signal.SIGTERM, None)

    # -- running ------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped; 0 after a clean stop, 1 after a fatal error (logged first)."""
        try:
            logger = JobLogger(self.logs_dir)
        except JobfsmError as exc:
            self._say(f"jobfsm start: {exc}")
            return 1
        store: Store | None = None
        try:
            store = self._open_store(logger)
            if store is None:  # stopped while waiting for the store
                logger.shutdown(reason="stopped by signal while waiting for the store")
                return 0
            self._serve(store, logger)
            return 0
        except Exception as exc:  # the last line of defence: log it, then exit non-zero
            detail = traceback.format_exc()
            logger.fatal(f"daemon stopped by a fatal error: {exc}; {detail}")
            self._say(f"jobfsm start: fatal error: {exc} (details in {logger.main_path})")
            return 1
        finally:
            if store is not None:
                store.close()
            logger.close()

    def _open_store(self, logger: JobLogger) -> Store | None:
        """Open the store; while it is unavailable (a server not up yet at boot), try again with
        back-off until it is, or a signal stops the daemon. A bad URL fails at once."""
        delay, waiting = PROBE_FIRST_SECONDS, False
        while True:
            try:
                store = open_store(self.store_url)
            except StoreUnavailableError as exc:
                if not waiting:
                    waiting = True
                    logger.error(f"store unavailable at start-up: {exc}; trying again until it is", component="store")
                    self._say(f"jobfsm start: {exc}; waiting for the store (Ctrl-C stops)")
                if self.clock.wait(self.stop, delay):
                    return None
                delay = min(delay * 2, PROBE_MAX_SECONDS)
                continue
            if waiting:
                logger.info("store available", component="store")
            return store

    def _say(self, message: str) -> None:
        if self.stderr is not None:
            self.stderr.write(message + "\n")
            self.stderr.flush()

    def _serve(self, store: Store, logger: JobLogger) -> None:
        switch = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        try:
            self._schedule(store, logger)
        finally:
            sys.setswitchinterval(switch)  # the daemon may be embedded (tests): leave it as found

    def _schedule(self, store: Store, logger: JobLogger) -> None:
        events = Announcer()
        self.ops = Operations(self.operations, store=store, logger=logger, clock=self.clock,
                              node=self.node, jobs_dir=self.jobs_dir, events=events)
        try:
            self._schedule_with(store, logger, events, self.ops)
        finally:
            self.ops.close()

    def _schedule_with(self, store: Store, logger: JobLogger, events: Announcer, ops: Operations) -> None:
        executor = JobExecutor(self.logs_dir, clock=self.clock)
        scheduler = Scheduler(
            self.jobs_dir, store, logger, clock=self.clock, node=self.node,
            executor=executor, max_workers=self.max_workers, keep_runs=self.keep_runs,
            keep_days=self.keep_days, dead_after=self.dead_after, events=events,
        )
        ops.attach(scheduler)
        self.scheduler = scheduler
        self._start(scheduler)
        self._say_loaded(scheduler)
        ops.started()
        # Thousands of long-lived job objects would otherwise be walked by every full garbage
        # collection, a pause that can land on a burst of fires: collect once, then freeze them.
        gc.collect()
        gc.freeze()
        logger.startup(version=__version__, node=self.node, jobs=len(scheduler.jobs), pid=os.getpid())
        logger.info(  # what it runs with, for whoever reads the log later
            f"settings: jobs={self.jobs_dir.absolute()} logs={self.logs_dir} store={store.url} "
            f"max_workers={self.max_workers} grace_seconds={self.grace_seconds:g} "
            f"keep_runs={self.keep_runs} keep_days={self.keep_days:g} dead_after={self.dead_after:g}"
        )
        bell = Bell(store)
        housekeeping = Timetable(self.clock)
        beat, reap = cluster_intervals(self.dead_after, spans_hosts=store.spans_hosts)
        housekeeping.every(beat, lambda: scheduler.guarded(scheduler.heartbeat))
        housekeeping.every(PRUNE_SECONDS, lambda: scheduler.guarded(scheduler.prune))
        housekeeping.every(reap, lambda: scheduler.guarded(scheduler.reap_lost))
        housekeeping.every(reap, lambda: scheduler.guarded(scheduler.retry_waiting))
        watched = scheduler.watching and bell.working
        housekeeping.every(LOOK_ANYWAY_SECONDS if watched else LOOK_SECONDS, lambda: self._look(scheduler, None))
        scheduler.guarded(scheduler.prune)
        self.ready.set()
        try:
            while not self.stop.is_set():
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self._reload(scheduler, logger)
                try:
                    scheduler.probe_store()
                    scheduler.dispatch_due()
                    scheduler.apply_results()
                    housekeeping.run_pending()
                    self._look(scheduler, bell)
                except StoreError as exc:  # every step handles its own; this is the safety net
                    scheduler.store_failed(exc)
                # While the store fails, nothing may be read for a change or a request: the loop
                # would wake at once, again and again.
                scheduler.wake.watch([] if scheduler.outage else [scheduler.watch_fd, bell.fd])
                self.clock.wait(scheduler.wake, self._sleep_seconds(scheduler, housekeeping))
                scheduler.wake.clear()
        finally:
            bell.close()
        reason = "a second signal: killing running jobs now" if self.kill_now.is_set() else "signal"
        logger.info(f"stopping ({reason}); {len(scheduler.in_flight)} run(s) in progress, "
                    f"grace {self.grace_seconds:g} s")
        scheduler.shutdown(grace_seconds=self.grace_seconds, kill_now=self.kill_now)
        logger.shutdown(reason="stopped by signal")

    def _start(self, scheduler: Scheduler) -> None:
        """The scheduler's start-up (crash recovery, loading, catch-up), done again while the
        store is unavailable: nothing may be claimed before it has been done once."""
        delay = PROBE_FIRST_SECONDS
        while True:
            try:
                scheduler.heartbeat()
                scheduler.start()
                return
            except StoreUnavailableError as exc:
                scheduler.logger.error(f"store unavailable during start-up: {exc}; trying again", component="store")
                if self.clock.wait(self.stop, delay):
                    return
                delay = min(delay * 2, PROBE_MAX_SECONDS)

    def _say_loaded(self, scheduler: Scheduler) -> None:
        """What was loaded and what fires next, for whoever started the daemon (stderr)."""
        from jobfsm.adopt.firstrun import render, summarize

        entries = ((e.config.name, e.config.enabled, e.next_fire) for e in scheduler.jobs.values())
        summary = summarize(entries, scheduler.file_problems)
        for line in render(summary, self.jobs_dir, self.clock.now()):
            self._say(f"jobfsm start: {line}")

    @staticmethod
    def _reload(scheduler: Scheduler, logger: JobLogger) -> None:
        """SIGHUP: new log files where the old ones were moved away, and a full scan of the jobs folder."""
        logger.reopen()
        logger.info("SIGHUP: log files reopened, jobs folder scanned again")
        scheduler.folder.rescan()

    @staticmethod
    def _look(scheduler: Scheduler, bell: Bell | None) -> None:
        """Apply changed job files (cheap when none changed: one read of the watcher) and take
        trigger requests when the bell rang (``bell=None``: look for them anyway)."""
        if scheduler.outage is not None:
            return
        scheduler.guarded(scheduler.reload)
        if bell is None or bell.heard():
            scheduler.guarded(scheduler.poll_triggers)

    def _sleep_seconds(self, scheduler: Scheduler, housekeeping: Timetable) -> float:
        """Until the next fire, retry, housekeeping step, attempt at a failed store or look at
        deleted job files."""
        sleep = housekeeping.seconds_until_next()
        due = scheduler.next_due()
        if due is not None:
            sleep = min(sleep, max((due - self.clock.now()).total_seconds(), 0.0))
        probe = scheduler.probe_seconds()
        if probe is not None:
            sleep = min(sleep, probe)
        settle = scheduler.folder.settle_seconds()  # files seen gone, to unload once they stay gone
        if settle is not None:
            sleep = min(sleep, settle)
        return sleep


def run_daemon(
    jobs_dir: Path,
    logs_dir: Path,
    store_url: str,
    *,
    max_workers: int | None,
    grace_seconds: float,
    node: str | None,
    keep_runs: int,
    keep_days: float,
    stderr: TextIO,
    dead_after: float = DEFAULT_DEAD_AFTER_SECONDS,
    operations: OperationsOptions | None = None,
) -> int:
    daemon = Daemon(
        jobs_dir, logs_dir, store_url, max_workers=max_workers,
        grace_seconds=grace_seconds, node=node, keep_runs=keep_runs, keep_days=keep_days, stderr=stderr,
        dead_after=dead_after,
        operations=operations,
    )
    daemon.install_signal_handlers()
    if not jobs_dir.is_dir():
        stderr.write(f"jobfsm start: jobs folder '{jobs_dir}' does not exist; create it or pass --jobs DIR\n")
        return 1
    stderr.write(f"jobfsm {__version__}: scheduling jobs from '{jobs_dir}', logs in '{logs_dir}' "
                 f"(node {daemon.node}); Ctrl-C or SIGTERM stops\n")
    return daemon.run()
