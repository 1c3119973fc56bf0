"""The jobs a scheduler has loaded: one :class:`JobEntry` per valid job file, what is wrong with
the invalid ones, and applying new, changed and deleted files (a file that turns invalid keeps
its last good version)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jobfsm.config.loader import validate_file
from jobfsm.daemon.jobfolder import JobFolder
from jobfsm.daemon.policy import Start
from jobfsm.lifecycle import JobModel
from jobfsm.model import JobConfig, JobState, RunStatus
from jobfsm.problems import Problem

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler


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


class JobSet:
    """The loaded jobs and their files, for one scheduler. Loop thread only."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self.store = scheduler.store
        self.clock = scheduler.clock
        self.logger = scheduler.logger
        self.jobs: dict[str, JobEntry] = {}
        self.file_problems: dict[str, list[Problem]] = {}
        self.folder = JobFolder(scheduler.jobs_dir, self.logger.error, scheduler.clock.monotonic)
        self.catch_up_missed = True
        """False when another node was alive at start-up: nothing was missed then."""
        self._new_states: dict[str, JobState] = {}
        self._last_fires: dict[str, datetime] = {}

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

    def add(self, config: JobConfig, *, user: str | None = None) -> None:
        """Load or update one job, as a reload of its file would (``user`` is who changed it)."""
        self._upsert(config, self.clock.now(), catch_up=False, states=None, user=user)
        self._write_new_states()

    def remove(self, name: str) -> None:
        """Forget a deleted job (a run in progress finishes)."""
        if name in self.jobs:
            self._remove(name)
        else:
            self.store.delete_state(name)

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
        lifecycle = self._scheduler.lifecycle
        lost = False
        if state is JobState.RUNNING:
            nodes = {r.node for r in self.store.list_runs(config.name, status=RunStatus.RUNNING)}
            lost = not nodes
            if nodes and self._scheduler.node not in nodes:
                # The job runs on another node (the state is shared): no run of it is this node's
                # to count, or a start here would wait behind a run it never hears end.
                state = JobState.IDLE if config.enabled else JobState.DISABLED
        model = lifecycle.model_for(config.name, enabled=config.enabled, state=state)
        if state is None:
            self._new_states[config.name] = model.job_state  # written in one batch by reload()
        elif lost:
            lifecycle.fail(model, reason="its run was lost when the daemon stopped")
        lifecycle.sync(model, enabled=config.enabled, user=user)
        return model

    def _upsert(
        self, config: JobConfig, now: datetime, *, catch_up: bool, states: dict[str, JobState] | None,
        user: str | None = None,
    ) -> None:
        scheduler = self._scheduler
        entry = self.jobs.get(config.name)
        if entry is None:
            state = states.get(config.name) if states is not None else self.store.get_state(config.name)
            entry = JobEntry(config, self._restore_model(config, state, user))
            if not catch_up:  # at start-up one summary line says it
                self.logger.info(
                    f"loaded job {config.name!r} ({'enabled' if config.enabled else 'disabled'})",
                    component="loader",
                )
            if catch_up and config.enabled and self.catch_up_missed:
                scheduler.dispatch.catch_up(entry, now, self._last_fires.get(config.name))
            self.jobs[config.name] = entry  # only now: a store failure above leaves the job new
            scheduler.agenda.reschedule(entry, now)
            return
        old, entry.config = entry.config, config
        scheduler.lifecycle.sync(entry.model, enabled=config.enabled, user=user)
        self.logger.info(f"reloaded job {config.name!r}", component="loader")
        if (old.schedule, old.timezone, old.enabled) != (config.schedule, config.timezone, config.enabled):
            scheduler.agenda.reschedule(entry, now)

    def _remove(self, name: str) -> None:
        entry = self.jobs.pop(name, None)
        if entry is None:
            return
        self._scheduler.agenda.forget(entry)
        self.store.delete_state(name)
        self.logger.info(f"job {name!r} removed (its file is gone); a run in progress finishes", component="loader")
