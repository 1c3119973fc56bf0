"""The management service: the one place where people change jobs.

The admin page and the CLI are thin adapters over :class:`JobManagementService`; neither touches
files, the store or the lifecycle directly.

Design decisions
----------------
**Files are the truth about what a job is; the store about what it is doing.** A job's
definition (including ``enabled``) lives in ``jobs/<name>.json``; its lifecycle state, runs,
trigger requests and audit entries live in the store. :class:`JobView` joins the two. Its
``state`` follows the file where the store lags behind (a job whose file says disabled shows
``disabled`` at once, even before a daemon reloaded it), except while it is running.

**Writes** go through :mod:`jobfsm.config.jobfiles`: a folder lock around read-check-write (also against
other processes), a version check (``ConcurrentModificationError`` for a stale version), an
atomic rename, and minimal text edits so git diffs stay small.

**A live daemon is asked, never bypassed.** "Alive" means a heartbeat in the store newer than
``heartbeat_max_age`` seconds. With one, a trigger is a trigger request in the store that the
daemon picks up and runs under the job's overlap policy; enable/disable only edit the file (the
daemon notices within two seconds and applies the transition itself, without a user, so it
audits nothing). With none, the service runs the job here, through the daemon's own scheduler
(:class:`~jobfsm.service.local.LocalRuns`: same overlap, queue and retry rules, one thread
owning the transitions), and that scheduler applies enable/disable transitions too. The service
never heartbeats: it is not a daemon and must not make another service think one is alive.

**Exactly one audit entry per change request.** Every mutating method runs inside
:meth:`_audited`, which records one entry: ``allowed`` when it went through, ``denied`` when it
was refused because of the state of things (a stale version, a disabled job, a missing role),
``failed`` when the request itself was wrong (invalid document, unknown job, taken name). Where
the service has a lifecycle transition applied, the entry is written when the lifecycle announces
it, carrying the request's action and details; the context then knows it was recorded and does
not write another.

**Threads.** The admin page calls the service from many threads. Transitions happen on one
thread only (the local runs' thread); file writes are serialized by the folder lock, the store
is thread-safe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from jobfsm.audit import MASK, AuditLog, is_secret_key, mask_env
from jobfsm.clock import Clock, SystemClock, iso, utc
from jobfsm.config.jobfiles import (
    NAME_PATTERN,
    JobFile,
    JobFiles,
    apply_changes,
    check_name,
    render_document,
)
from jobfsm.config.limits import nesting_message
from jobfsm.config.loader import validate_document
from jobfsm.errors import (
    ConcurrentModificationError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobfsmError,
    JobNotFoundError,
    PermissionDeniedError,
    RunNotFoundError,
    ValidationError,
    WorkTreeError,
)
from jobfsm.model import JobConfig, JobState, RunStatus, Trigger
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS, NODES_SEEN_WITHIN_SECONDS, default_node
from jobfsm.problems import Problem, quote, sort_problems
from jobfsm.service import edits
from jobfsm.service.hooks import FileChange, FileHook
from jobfsm.service.nodes import NodeView, nodes_seen
from jobfsm.service.output import OutputSource, output_place
from jobfsm.store.abc import HEARTBEAT_MAX_AGE_SECONDS, AuditEntry, RunRecord, Store
from jobfsm.store.control import Pause

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler
    from jobfsm.lifecycle import Event
    from jobfsm.service.control import Output
    from jobfsm.service.local import LocalRuns

T = TypeVar("T")

__all__ = [
    "JobManagementService",
    "JobView",
    "LogEntry",
    "RunWaitTimeoutError",
    "TriggerTimeoutError",
]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
RETRY_PICKUP_SECONDS = 60.0
"""How much longer than its delay a retry may take to start before waiting for it gives up."""
LOG_READ_LIMIT = 2 * 1024 * 1024
"""At most this many bytes of a run's output file are returned whole; a bigger one comes back as
its first and last half of this with a marker between (like the store's tails)."""
MAX_MATCHES = 10_000
"""At most this many matching lines per stream and run when searching."""


class TriggerTimeoutError(JobfsmError, TimeoutError):
    """A live daemon did not pick up a trigger request in time."""


class RunWaitTimeoutError(JobfsmError, TimeoutError):
    """A run did not end within the time :meth:`JobManagementService.wait_for_run` was given."""


@dataclass(frozen=True)
class JobView:
    """A job as people see it: its file, its validity, its live state. Secrets are masked."""

    name: str
    config: JobConfig | None
    """The validated config, ``env`` values with secret-looking keys masked; None when invalid."""
    file: str
    version: str | None
    """SHA-256 of the file's bytes; pass it back to edit the job."""
    state: JobState | None
    enabled: bool | None
    last_run: RunRecord | None
    next_run: datetime | None
    problems: list[Problem] = field(default_factory=list)
    """Errors (the file is invalid) and warnings (a missing working directory)."""
    pause: Pause | None = None
    """The job's pause, when it holds now (``jobfsm pause``; kept in the store)."""

    @property
    def valid(self) -> bool:
        return self.config is not None and not any(p.is_error for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        """The ``status --format json`` shape, plus the file, version, description and problems."""
        config = self.config
        return {
            "name": self.name,
            "state": self.state.value if self.state else None,
            "enabled": self.enabled,
            "schedule": config.schedule if config else None,
            "timezone": config.timezone if config else None,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "last_run": self.last_run.to_dict() if self.last_run else None,
            "description": config.description if config else None,
            "command": (
                list(config.command) if config and isinstance(config.command, tuple)
                else (config.command if config else None)
            ),
            "file": self.file,
            "version": self.version,
            "valid": self.valid,
            "problems": [p.to_dict() for p in self.problems],
            "paused": self.pause is not None,
            "paused_until": iso(self.pause.until) if self.pause else None,
            "pause_reason": self.pause.reason if self.pause else None,
            "paused_by": self.pause.user if self.pause else None,
        }


@dataclass(frozen=True)
class LogEntry:
    """The output of one run: whole (bounded by :data:`LOG_READ_LIMIT`), or only the lines that
    matched a search."""

    run: RunRecord
    stdout: str
    stderr: str
    source: OutputSource = OutputSource.FILE
    """The output files read here, or the stored head and tail (the files are elsewhere)."""
    note: str = ""
    """Where the full output is when it was not read here (names the node and the path)."""


@dataclass
class _AuditContext:
    action: str
    user: str
    job: str | None
    details: dict[str, Any] = field(default_factory=dict)
    recorded: bool = False


class JobManagementService:
    """Jobs' CRUD, enable/disable/trigger, history, logs and audit, safe under concurrent use."""

    def __init__(
        self,
        jobs_directory: Path | str,
        log_directory: Path | str,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        node: str | None = None,
        heartbeat_max_age: float = HEARTBEAT_MAX_AGE_SECONDS,
        daemon_pickup_timeout: float = 5.0,
        file_hooks: Sequence[FileHook] = (),
    ) -> None:
        self.jobs_directory = Path(jobs_directory)
        self.log_directory = Path(log_directory)
        self._owns_store = store is None
        if store is None:
            from jobfsm.store import open_store

            self.log_directory.mkdir(parents=True, exist_ok=True)
            store = open_store(f"sqlite:///{self.log_directory / 'jobfsm.db'}")
        self.store: Store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.node = node or default_node()
        self.heartbeat_max_age = heartbeat_max_age
        self.daemon_pickup_timeout = daemon_pickup_timeout
        self.files = JobFiles(self.jobs_directory)
        self.file_hooks = tuple(file_hooks)
        """Told of each change of a job file, before and after (:mod:`jobfsm.service.hooks`)."""
        self.audit = AuditLog(self.log_directory, self.store)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._local_runs: LocalRuns | None = None
        self._call_ctx: _AuditContext | None = None
        """The request whose work the local runs' thread is doing (its transitions are audited there)."""
        self._closed = False

    # -- reading ---------------------------------------------------------------------------
    def list_jobs(self) -> list[JobView]:
        """Every ``*.json`` of the jobs folder, valid or not, sorted by name."""
        states = self.store.all_states()
        latest = self.store.latest_runs()
        now = self.clock.now()
        pauses = {p.job: p for p in self.store.list_pauses() if p.active(now)}
        views = []
        for stem in self.files.names():
            path = self.jobs_directory / f"{stem}.json"
            try:
                jf = self.files.read_path(path, stem)
            except JobNotFoundError:
                continue  # deleted while we listed
            views.append(dc_replace(self._view(jf, states.get(stem), now, latest.get(stem)), pause=pauses.get(stem)))
        return views

    def get_job(self, name: str) -> JobView:
        jf = self.files.read(name)
        # A file name that is no job name (one that is not even UTF-8) has no runs to look up.
        last = self.store.list_runs(name, limit=1) if NAME_PATTERN.fullmatch(name) else []
        view = self._view(jf, self.store.get_state(name), self.clock.now(), last[0] if last else None)
        return dc_replace(view, pause=self.get_pause(name))

    def get_job_source(self, name: str) -> str:
        """The job file's text as it is on disk, also when it is not valid (so that a person can
        fix it), with the values of secret-looking keys masked as in a :class:`JobView`; ``""``
        when the bytes are no text. Saving it back through :meth:`replace_job` keeps the masked
        secrets the file has."""
        text = self.files.read(name).text
        return _mask_secret_text(text) if text is not None else ""

    def get_job_history(
        self,
        name: str,
        status: RunStatus | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        """Runs of a job, newest first, from the store (exact, not parsed from log files)."""
        self._require_known(name)
        return self.store.list_runs(
            name,
            status=_run_status(status),
            since=utc(since) if since else None,
            until=utc(until) if until else None,
            limit=limit,
        )

    def get_job_logs(
        self,
        name: str,
        search: str | None = None,
        status: RunStatus | str | None = None,
        run_id: int | None = None,
        limit: int | None = 20,
    ) -> list[LogEntry]:
        """The output of a job's runs, newest first.

        ``run_id`` picks one run (of this job); ``status`` filters by run status; ``search``
        keeps only the lines that contain it (case-insensitive) and drops runs without any.
        ``limit`` bounds the number of entries returned (after filtering).
        """
        self._require_known(name)
        wanted = _run_status(status)
        if run_id is not None:
            run = self.store.get_run(run_id)
            if run.job != name:
                raise RunNotFoundError(run_id)
            runs = [run] if wanted is None or run.status is wanted else []
        else:
            runs = self.store.list_runs(name, status=wanted)
        needle = search.casefold() if search else None
        entries: list[LogEntry] = []
        for run in runs:
            if limit is not None and len(entries) >= limit:
                break
            place = output_place(run)
            # Output stored by a node of another host: its paths name files of that host, not this one.
            out_path, err_path = (run.stdout_path, run.stderr_path) if place.source is OutputSource.FILE else (None, None)
            if needle is None:
                entries.append(
                    LogEntry(run, _read_output(out_path, run.stdout_tail),
                             _read_output(err_path, run.stderr_tail), place.source, place.note)
                )
                continue
            out = _grep(out_path, run.stdout_tail, needle)
            err = _grep(err_path, run.stderr_tail, needle)
            if out or err:
                entries.append(LogEntry(run, out, err, place.source, place.note))
        return entries

    def nodes(
        self, *, seen_within: float = NODES_SEEN_WITHIN_SECONDS, dead_after: float = DEFAULT_DEAD_AFTER_SECONDS
    ) -> list[NodeView]:
        """Every node heard from within ``seen_within`` seconds or running something, by name:
        alive or not (a heartbeat at most ``dead_after`` seconds old) and its running runs."""
        return [NodeView.of(info, dead_after=dead_after) for info in nodes_seen(self.store, seen_within=seen_within)]

    def list_audit(
        self,
        user: str | None = None,
        job: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Audit entries, newest first."""
        return self.store.list_audit(
            user=user, job=job, since=utc(since) if since else None, limit=limit
        )

    def validate(self, document: Mapping[str, Any], *, name: str | None = None) -> list[Problem]:
        """Every problem of a document (errors and warnings), as ``jobfsm validate`` reports them.
        With ``name``, the document must also be a valid file for that job."""
        doc = _plain(document)
        problems: list[Problem] = []
        path = self._display(name if isinstance(name, str) else None, doc)
        if name is not None:
            try:
                check_name(name, path=path)
            except ValidationError as exc:
                problems.extend(exc.problems)
                name = None
        problems.extend(validate_document(doc, path, stem=name).problems)
        return problems

    def daemon_alive(self) -> bool:
        """Whether a daemon heartbeated within ``heartbeat_max_age`` seconds (by the database's
        clock: a CLI on a host whose clock is off still sees the daemons of the others)."""
        live = self.store.nodes(seen_within=self.heartbeat_max_age, dead_after=self.heartbeat_max_age,
                                at=self.clock.now())
        return any(n.alive for n in live)

    # -- changing --------------------------------------------------------------------------
    def create_job(self, config: JobConfig | Mapping[str, Any], user: str) -> JobView:
        """Write a new job file (validated); :class:`JobAlreadyExistsError` if the name is taken."""
        doc = config.to_dict(full=False) if isinstance(config, JobConfig) else _plain(config)
        name = doc.get("name") if isinstance(doc, dict) else None
        with self._audited("create", user, name if isinstance(name, str) else None) as ctx:
            if not isinstance(doc, dict):
                self._raise_invalid(doc, None)
            path = self._display(name if isinstance(name, str) else None, doc)
            report = validate_document(doc, path, stem=name if isinstance(name, str) else None)
            _, masked = edits.keep_masked_secrets({}, doc, path)  # a new job has no secret to keep
            if report.errors or masked:
                raise ValidationError(sort_problems([*report.errors, *masked]), subject=f"job {quote(name)}")
            assert isinstance(name, str) and report.config is not None
            check_name(name, path=path)
            with self.files.locked():
                if self.files.exists(name):
                    raise JobAlreadyExistsError(name)
                with self._file_change(name):
                    version = self.files.write(name, render_document(doc))
            ctx.details.update(document=doc, version=version)
            if not self.daemon_alive():  # a first state, not a transition (a daemon writes it too)
                first = JobState.IDLE if report.config.enabled else JobState.DISABLED
                self.store.set_state(name, first, self.clock.now())
        return self.get_job(name)

    def update_job(
        self, name: str, changes: Mapping[str, Any], user: str, expected_version: str | None
    ) -> JobView:
        """Change some fields; a value of None removes the key (back to its default).
        ``name`` may appear only unchanged (create a new job to rename one)."""
        with self._audited("update", user, name):
            patch = _plain(changes)
            if not isinstance(patch, dict):
                raise ValidationError(
                    [Problem(self._display(name, None), "$", "changes must be a JSON object")]
                )
            self._edit(name, expected_version, lambda doc: edits.patched(doc, patch))
        return self.get_job(name)

    def edit_job(
        self, name: str, document: Mapping[str, Any], user: str, expected_version: str | None
    ) -> JobView:
        """Save the whole job as an editing form holds it (audited as ``update``): secrets as
        shown (masked), optional fields at their default possibly left out. Only what changed in
        meaning is written; the rest of the file stays as it was written (see
        :func:`jobfsm.service.edits.merged`)."""
        with self._audited("update", user, name):
            shown = _plain(document)
            if not isinstance(shown, dict):
                self._raise_invalid(shown, name)
            self._edit(name, expected_version, lambda doc: edits.merged(doc, shown))
        return self.get_job(name)

    def replace_job(
        self, name: str, document: Mapping[str, Any], user: str, expected_version: str | None
    ) -> JobView:
        """Replace the whole document (the admin page's raw JSON editor); the name must stay."""
        with self._audited("replace", user, name):
            new = _plain(document)
            self._edit(name, expected_version, lambda _doc: new, whole=True)
        return self.get_job(name)

    def delete_job(self, name: str, user: str, expected_version: str | None = None) -> None:
        """Delete the job's file; its run history stays in the store."""
        with self._audited("delete", user, name) as ctx:
            with self.files.locked():
                jf = self.files.read(name)
                self.files.check_version(jf, expected_version)
                with self._file_change(name):
                    self.files.remove(name)
            ctx.details["version"] = jf.version
            if isinstance(jf.document, dict):
                ctx.details["document"] = jf.document
            if not self.daemon_alive():
                if self._local_runs is not None:
                    self._local_runs.call(lambda scheduler: scheduler.remove_job(name))
                else:
                    self.store.delete_state(name)

    def enable_job(self, name: str, user: str) -> JobView:
        return self._set_enabled(name, user, True)

    def disable_job(self, name: str, user: str) -> JobView:
        """Disable; a running job finishes its run first, then lands in ``disabled``."""
        return self._set_enabled(name, user, False)

    def trigger_job(self, name: str, user: str) -> int:
        """Run the job now; returns the run id at once (see :meth:`wait_for_run`).

        Through the daemon when one is alive, else here. :class:`InvalidTransitionError` when
        the job is disabled. When the overlap policy skips it, the id is of a ``skipped`` run.
        """
        with self._audited("trigger", user, name) as ctx:
            jf = self.files.read(name)
            config = self._valid_config(jf)
            if not config.enabled:
                raise InvalidTransitionError(f"job {name!r} is disabled; enable it before triggering it")
            if self.daemon_alive():
                return self._trigger_via_daemon(name, user, ctx)
            return self._trigger_here(config, user, ctx)
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_for_retry(self, run: RunRecord, timeout: float | None = None) -> RunRecord | None:
        """The next attempt of ``run`` once it has ended, or None when none is due (it succeeded,
        no retries are left, the job is gone or disabled). Whoever runs the job (a daemon, or
        this service with none alive) starts the retry after its delay; this waits for it."""
        from jobfsm.daemon import policy

        try:
            config = self._valid_config(self.files.read(run.job))
        except JobfsmError:
            return None
        succeeded = run.status is RunStatus.SUCCEEDED
        if policy.retry_due(config, attempt=run.attempt, succeeded=succeeded, enabled=config.enabled,
                            now=self.clock.now()) is None:
            return None
        limit = config.retry_delay_seconds + RETRY_PICKUP_SECONDS if timeout is None else timeout
        deadline = time.monotonic() + limit
        pause = threading.Event()
        while True:
            retry = next((r for r in self.store.list_runs(run.job, limit=20)
                          if r.trigger is Trigger.RETRY and r.attempt == run.attempt + 1 and r.id > run.id
                          and r.scheduled_for == run.scheduled_for), None)
            if retry is not None and not _waiting(retry):
                return self.wait_for_run(retry.id, timeout=max(deadline - time.monotonic(), 0.0))
            if time.monotonic() >= deadline:
                raise RunWaitTimeoutError(
                    f"the retry of run {run.id} did not run within {limit:g} s; check `jobfsm status`")
            pause.wait(POLL_SECONDS)

    def wait_for_run(self, run_id: int, timeout: float | None = None) -> RunRecord:
        """Block until the run has ended (a run queued behind another first waits its turn);
        :class:`RunWaitTimeoutError` after ``timeout`` seconds (None: as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = threading.Event()
        while True:
            run = self.store.get_run(run_id)
            if run.status is not RunStatus.RUNNING and not _waiting(run):
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise RunWaitTimeoutError(f"run {run_id!r} is still running after {timeout:g} s")
            pause.wait(POLL_SECONDS)

    # -- operational control (jobfsm.service.control) ---------------------------------------
    def kill_run(self, name: str, user: str, *, run_id: int | None = None, how: str = "") -> list[RunRecord]:
        """Kill the job's running run(s), or only ``run_id``, on whichever node runs it; wait
        until ended (``failed``, outcome ``killed``); audited."""
        from jobfsm.service import control

        return control.kill_run(self, name, user, run_id=run_id, how=how)

    def pause_job(self, name: str, user: str, *, until: datetime | None = None, reason: str = "") -> Pause:
        """Skip the job's fires (recorded, with the reason) until ``until`` or a resume; audited."""
        from jobfsm.service import control

        return control.pause_job(self, name, user, until=until, reason=reason)

    def resume_job(self, name: str, user: str) -> Pause | None:
        """End the job's pause; the pause it had, or None; audited."""
        from jobfsm.service import control

        return control.resume_job(self, name, user)

    def get_pause(self, name: str) -> Pause | None:
        from jobfsm.service import control

        return control.get_pause(self, name)

    def follow_output(
        self, name: str, *, run_id: int | None = None, stop: threading.Event | None = None
    ) -> Iterator[Output]:
        """The output of the job's running (or next) run as it is written, until it ends."""
        from jobfsm.service import control

        return control.follow_output(self, name, run_id=run_id, stop=stop)

    def record_denied(self, user: str, action: str, job: str | None, reason: str) -> None:
        """Audit an attempt refused before it reached the service (the admin page's role check)."""
        self.audit.record(
            AuditEntry(self.clock.now(), user, action, job, "denied", {"reason": reason})
        )

    def close(self) -> None:
        """Wait for runs started here to end, then release the log files and the store we opened."""
        if self._closed:
            return
        self._closed = True
        if self._local_runs is not None:
            self._local_runs.close()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> JobManagementService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- audit -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _audited(self, action: str, user: str, job: str | None) -> Iterator[_AuditContext]:
        """Run a change request and record exactly one audit entry for it."""
        ctx = _AuditContext(action, user, job)
        outer = getattr(self._local, "ctx", None)
        self._local.ctx = ctx
        try:
            yield ctx
        except (ConcurrentModificationError, InvalidTransitionError, PermissionDeniedError, WorkTreeError) as exc:
            self._record(ctx, "denied", exc)
            raise
        except ValidationError as exc:
            ctx.details["problems"] = [p.to_dict() for p in exc.problems]
            self._record(ctx, "failed", exc)
            raise
        except Exception as exc:
            self._record(ctx, "failed", exc)
            raise
        finally:
            self._local.ctx = outer
        if not ctx.recorded:
            self._record(ctx, "allowed", None)

    def _record(self, ctx: _AuditContext, outcome: str, exc: BaseException | None) -> None:
        if ctx.recorded:
            return
        if exc is not None:
            ctx.details["reason"] = str(exc)
        ctx.recorded = True
        self.audit.record(
            AuditEntry(self.clock.now(), ctx.user, ctx.action, ctx.job, outcome, ctx.details)
        )

    def _on_transition(self, event: Event) -> None:
        """A state change a person caused is audited: the one entry of the request behind it."""
        from jobfsm.lifecycle import StateChanged

        if not isinstance(event, StateChanged) or event.user is None:
            return
        ctx: _AuditContext | None = getattr(self._local, "ctx", None) or self._call_ctx
        if ctx is None or ctx.recorded:
            if ctx is None:
                self.audit.record(
                    AuditEntry(event.at, event.user, event.event, event.job, "allowed",
                               {"source": event.source, "dest": event.dest})
                )
            return
        ctx.details.update(transition=event.event, source=event.source, dest=event.dest)
        ctx.recorded = True
        self.audit.record(AuditEntry(event.at, ctx.user, ctx.action, ctx.job, "allowed", ctx.details))

    # -- editing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _file_change(self, name: str) -> Iterator[None]:
        """Around the write or removal of one job's file (under the folder lock): the file hooks
        may refuse it before, and are told after."""
        if not self.file_hooks:
            yield
            return
        ctx = self._current_ctx()
        change = FileChange(ctx.action, name, self.files.path_for(name), ctx.user)
        for hook in self.file_hooks:
            hook.before(change)
        yield
        for hook in self.file_hooks:
            hook.after(change)

    def _edit(
        self, name: str, expected_version: str | None, make: Any, *, whole: bool = False
    ) -> None:
        """Read-check-write one job under the folder lock; audit details and transition."""
        ctx: _AuditContext = self._current_ctx()
        path = self._display(name, None)
        check_name(name, path=path)
        with self.files.locked():
            jf = self.files.read(name)
            self.files.check_version(jf, expected_version)
            if isinstance(jf.document, dict):
                old: dict[str, Any] = jf.document
            elif whole:
                old = {}
            else:
                self._valid_config(jf)  # raises with the file's own problem
                raise AssertionError("unreachable")  # pragma: no cover
            new = make(old)
            if not isinstance(new, dict):
                self._raise_invalid(new, name)
            new, masked = edits.keep_masked_secrets(old, new, path)
            if new.get("name", name) != name:
                raise ValidationError(
                    [Problem(path, "$.name", f"cannot rename job {name!r} to {quote(new.get('name'))}; "
                             "create a job with the new name and delete this one")]
                )
            report = validate_document(new, path, stem=name)
            if report.errors or masked:
                raise ValidationError(sort_problems([*report.errors, *masked]), subject=f"job {name!r}")
            assert report.config is not None
            diff = edits.diff(old, new)
            version = jf.version
            if diff or jf.text is None:
                with self._file_change(name):
                    version = self.files.write(name, apply_changes(jf.text or "", old, new))
        ctx.details.update(changes=diff, version=version)
        if "enabled" in diff:
            self._apply_enabled(report.config, old_enabled=bool(old.get("enabled")), user=ctx.user)

    def _set_enabled(self, name: str, user: str, enabled: bool) -> JobView:
        with self._audited("enable" if enabled else "disable", user, name):
            self._edit(name, None, lambda doc: {**doc, "enabled": enabled})
        return self.get_job(name)

    def _apply_enabled(self, config: JobConfig, *, old_enabled: bool, user: str) -> None:
        """With no daemon alive, have the enable/disable transition applied here (audited when
        the lifecycle announces it). With a daemon, it applies it when it reloads the file."""
        if self.daemon_alive():
            return
        self._on_local_thread(lambda scheduler: scheduler.add_job(config, user=user))

    # -- triggering ------------------------------------------------------------------------
    def _trigger_via_daemon(self, name: str, user: str, ctx: _AuditContext) -> int:
        request = self.store.request_trigger(name, user=user, at=self.clock.now())
        ctx.details.update(via="daemon", request_id=request.id)
        deadline = time.monotonic() + self.daemon_pickup_timeout
        pause = threading.Event()
        while True:
            current = self.store.get_trigger_request(request.id)
            if current.run_id is not None:
                ctx.details["run_id"] = current.run_id
                return current.run_id
            if time.monotonic() >= deadline:
                raise TriggerTimeoutError(
                    f"no daemon picked up the trigger request {request.id} for job {name!r} within "
                    f"{self.daemon_pickup_timeout:g} s; check `jobfsm status` and the daemon's log "
                    "(the request stays queued: a daemon that recovers will run it)"
                )
            pause.wait(POLL_SECONDS)

    def _trigger_here(self, config: JobConfig, user: str, ctx: _AuditContext) -> int:
        """No daemon: run it through the local runs' scheduler, as the daemon would."""
        ctx.details["via"] = "local"

        def trigger(scheduler: Scheduler) -> RunRecord | None:
            scheduler.add_job(config)
            return scheduler.trigger(config.name, user=user)

        run = self._on_local_thread(trigger)
        assert run is not None  # a manual start is never a fire someone else claimed
        ctx.details["run_id"] = run.id
        if run.status is RunStatus.SKIPPED:
            ctx.details["skipped"] = run.message
        return run.id

    def _on_local_thread(self, work: Callable[[Scheduler], T]) -> T:
        """Do ``work`` on the local runs' thread, its transitions audited as this request's."""
        with self._lock:
            if self._local_runs is None:
                from jobfsm.lifecycle import Announcer
                from jobfsm.service.local import LocalRuns

                events = Announcer()
                events.subscribe(self._on_transition)
                self._local_runs = LocalRuns(
                    self.jobs_directory, self.log_directory, self.store, clock=self.clock,
                    node=self.node, events=events,
                )
            self._call_ctx = getattr(self._local, "ctx", None)
            try:
                return self._local_runs.call(work)
            finally:
                self._call_ctx = None

    # -- helpers ---------------------------------------------------------------------------
    def _current_ctx(self) -> _AuditContext:
        ctx: _AuditContext | None = getattr(self._local, "ctx", None)
        assert ctx is not None, "called outside _audited"
        return ctx

    def _view(self, jf: JobFile, stored: JobState | None, now: datetime, last_run: RunRecord | None) -> JobView:
        problems: list[Problem] = []
        config: JobConfig | None = None
        if jf.problem is not None:
            problems.append(jf.problem)
        else:
            report = validate_document(jf.document, str(jf.path), stem=jf.name)
            problems = report.problems
            config = report.config
        state: JobState | None = stored
        next_run = None
        if config is not None:
            if state is not JobState.RUNNING:
                if not config.enabled:
                    state = JobState.DISABLED
                elif state in (None, JobState.DISABLED):
                    state = JobState.IDLE
            if config.enabled:
                from jobfsm.cron import next_fire

                with contextlib.suppress(JobfsmError):
                    next_run = next_fire(config.schedule, config.timezone, now)
            config = dc_replace(config, env=mask_env(config.env))
        return JobView(
            name=jf.name,
            config=config,
            file=str(jf.path),
            version=jf.version,
            state=state,
            enabled=config.enabled if config else None,
            last_run=last_run,
            next_run=next_run,
            problems=problems,
        )

    def _valid_config(self, jf: JobFile) -> JobConfig:
        if jf.problem is not None:
            raise ValidationError([jf.problem], subject=f"job file {str(jf.path)!r}")
        report = validate_document(jf.document, str(jf.path), stem=jf.name)
        if report.errors or report.config is None:
            raise ValidationError(report.errors, subject=f"job file {str(jf.path)!r}")
        return report.config

    def _require_known(self, name: str) -> None:
        """A job with a file, or with history in the store (a deleted job's runs stay)."""
        if self.files.exists(name):
            return
        if self.store.list_runs(name, limit=1) or self.store.get_state(name) is not None:
            return
        raise JobNotFoundError(name)

    def _display(self, name: str | None, doc: Any) -> str:
        if name is None and isinstance(doc, dict) and isinstance(doc.get("name"), str):
            name = doc["name"]
        if name and not NAME_PATTERN.fullmatch(name):  # every problem repeats it: keep it short
            name = name[:60] + "…" if len(name) > 60 else name
        return str(self.jobs_directory / f"{name or '<new job>'}.json")

    def _raise_invalid(self, doc: Any, name: str | None) -> None:
        report = validate_document(doc, self._display(name, None), stem=name)
        raise ValidationError(report.errors or [Problem(self._display(name, None), "$", "invalid")])





def _waiting(run: RunRecord) -> bool:
    """Recorded as skipped while it waits its turn (``overlap: queue``): it will still run."""
    return run.status is RunStatus.SKIPPED and run.message.startswith("queued behind run")


def _run_status(status: RunStatus | str | None) -> RunStatus | None:
    if status is None or isinstance(status, RunStatus):
        return status
    try:
        return RunStatus(status)
    except ValueError:
        choices = ", ".join(repr(s.value) for s in RunStatus)
        raise ValidationError(
            [Problem("<query>", "$.status", f"{quote(status)} is not one of {choices}")],
            subject="filter",
        ) from None


def _plain(value: Any) -> Any:
    """JSON-normal data (enums to strings, tuples to lists, keys to strings); anything that is
    not JSON becomes a ValidationError."""
    try:
        return json.loads(json.dumps(value))
    except RecursionError:  # nested far deeper than the loader's limit: json recursed out
        raise ValidationError([Problem("<job>", "$", nesting_message())]) from None
    except (TypeError, ValueError) as exc:
        raise ValidationError([Problem("<job>", "$", f"not JSON data: {exc}")]) from None


def _read_output(path: str | None, tail: str) -> str:
    """A run's whole output from its file (bounded), or the stored tail when the file is gone."""
    if not path:
        return tail
    try:
        size = os.path.getsize(path)
        if size <= LOG_READ_LIMIT:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        from jobfsm.runs.executor import read_tail

        return read_tail(Path(path), LOG_READ_LIMIT // 2)
    except OSError:
        return tail


_KEY_VALUE = re.compile(r'("((?:[^"\\]|\\.)*)"\s*:\s*)"((?:[^"\\]|\\.)*)"')


def _mask_secret_text(text: str) -> str:
    """JSON text (valid or not) with every ``"KEY": "value"`` whose key looks secret masked."""
    return _KEY_VALUE.sub(
        lambda m: f'{m.group(1)}"{MASK}"' if is_secret_key(m.group(2)) else m.group(0), text
    )


def _grep(path: str | None, tail: str, needle: str) -> str:
    """Lines of a run's output that contain ``needle`` (already casefolded), streamed."""
    matches: list[str] = []
    lines: Iterator[str]
    handle = None
    try:
        if path:
            handle = open(path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
            lines = iter(handle)
        else:
            lines = iter(tail.splitlines(keepends=True))
    except OSError:
        lines = iter(tail.splitlines(keepends=True))
    try:
        for line in lines:
            text = line.rstrip("\r\n")
            if needle in text.casefold():
                matches.append(text)
                if len(matches) >= MAX_MATCHES:
                    break
    finally:
        if handle is not None:
            handle.close()
    return "".join(m + "\n" for m in matches)
