"""The management service: the one place where people change jobs.

The admin page and the CLI are thin adapters over :class:`JobManagementService`; neither touches
files, the store or the lifecycle directly (see docs/architecture.md, "The admin page").

- **Files are the truth about what a job is; the store about what it is doing**
  (:mod:`jobfsm.service.views` joins the two). Writes go through :mod:`jobfsm.config.jobfiles`:
  a folder lock around read-check-write (also against other processes), a version check
  (``ConcurrentModificationError`` for a stale version), an atomic rename, minimal text edits.
- **A live daemon is asked, never bypassed.** "Alive" means a heartbeat in the store newer than
  ``heartbeat_max_age`` seconds. With one, a trigger is a trigger request in the store that the
  daemon runs under the job's overlap policy; enable/disable only edit the file (the daemon
  applies the transition when it reloads it, without a user, so it audits nothing). With none,
  the service does it here, through the daemon's own scheduler (:mod:`jobfsm.service.here`).
  The service never heartbeats: it is not a daemon and must not make another think one is alive.
- **Exactly one audit entry per change request** (:mod:`jobfsm.service.auditing`).
- **Threads.** The admin page calls the service from many threads. Transitions happen on one
  thread only (the local runs'); file writes are serialized by the folder lock; the store is
  thread-safe.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobfsm.audit import AuditLog, mask_secret_text
from jobfsm.clock import Clock, SystemClock, utc
from jobfsm.config.jobfiles import JobFile, JobFiles, apply_changes, render_document
from jobfsm.config.loader import validate_document
from jobfsm.config.names import NAME_PATTERN, check_name
from jobfsm.errors import (
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobfsmError,
    JobNotFoundError,
    RunNotFoundError,
    ValidationError,
)
from jobfsm.model import JobConfig, JobState, RunStatus
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS, NODES_SEEN_WITHIN_SECONDS, default_node
from jobfsm.places import default_store_url
from jobfsm.problems import Problem, quote, sort_problems
from jobfsm.service import edits, waits
from jobfsm.service.auditing import AuditContext, Auditor
from jobfsm.service.here import RunsHere
from jobfsm.service.hooks import FileChange, FileHook
from jobfsm.service.inputs import document_path, plain, run_status
from jobfsm.service.listing import JobList, JobLister
from jobfsm.service.logs import log_entry
from jobfsm.service.nodes import NodeView, nodes_seen
from jobfsm.service.views import JobView, LogEntry, job_view
from jobfsm.store.abc import HEARTBEAT_MAX_AGE_SECONDS, AuditEntry, RunRecord, Store
from jobfsm.store.control import Pause

if TYPE_CHECKING:
    from jobfsm.service.control import Output

__all__ = ["JobManagementService"]

RETRY_PICKUP_SECONDS = 60.0
"""How much longer than its delay a retry may take to start before waiting for it gives up."""


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
            store = open_store(default_store_url(self.log_directory))
        self.store: Store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.node = node or default_node()
        self.heartbeat_max_age = heartbeat_max_age
        self.daemon_pickup_timeout = daemon_pickup_timeout
        self.files = JobFiles(self.jobs_directory)
        self.lister = JobLister(self.files, self.store, self.clock)
        self.file_hooks = tuple(file_hooks)
        """Told of each change of a job file, before and after (:mod:`jobfsm.service.hooks`)."""
        self.audit = AuditLog(self.log_directory, self.store)
        self.auditor = Auditor(self.audit, self.clock)
        self.here = RunsHere(self.jobs_directory, self.log_directory, self.store, clock=self.clock,
                             node=self.node, auditor=self.auditor)
        """What runs in this process while no daemon is alive."""
        self._closed = False

    # -- reading ---------------------------------------------------------------------------
    def list_jobs(self) -> list[JobView]:
        """Every ``*.json`` of the jobs folder, valid or not, sorted by name."""
        return list(self.job_list().views)

    def job_list(self) -> JobList:
        """:meth:`list_jobs` with its generation, which moves whenever the list was rebuilt
        (nothing changed while it stays: :mod:`jobfsm.service.listing`)."""
        return self.lister.current()

    def get_job(self, name: str) -> JobView:
        jf = self.files.read(name)
        # A file name that is no job name (one that is not even UTF-8) has no runs to look up.
        last = self.store.list_runs(name, limit=1) if NAME_PATTERN.fullmatch(name) else []
        return job_view(jf, self.store.get_state(name), self.clock.now(), last[0] if last else None,
                        self.get_pause(name))

    def get_job_source(self, name: str) -> str:
        """The job file's text as it is on disk, also when it is not valid (so that a person can
        fix it), with the values of secret-looking keys masked as in a :class:`JobView`; ``""``
        when the bytes are no text. Saving it back through :meth:`replace_job` keeps the masked
        secrets the file has."""
        text = self.files.read(name).text
        return mask_secret_text(text) if text is not None else ""

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
            status=run_status(status),
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
        wanted = run_status(status)
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
            entry = log_entry(run, needle)
            if entry is not None:
                entries.append(entry)
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
        doc = plain(document)
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
        doc = config.to_dict(full=False) if isinstance(config, JobConfig) else plain(config)
        name = doc.get("name") if isinstance(doc, dict) else None
        with self.auditor.audited("create", user, name if isinstance(name, str) else None) as ctx:
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
        with self.auditor.audited("update", user, name):
            patch = plain(changes)
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
        with self.auditor.audited("update", user, name):
            shown = plain(document)
            if not isinstance(shown, dict):
                self._raise_invalid(shown, name)
            self._edit(name, expected_version, lambda doc: edits.merged(doc, shown))
        return self.get_job(name)

    def replace_job(
        self, name: str, document: Mapping[str, Any], user: str, expected_version: str | None
    ) -> JobView:
        """Replace the whole document (the admin page's raw JSON editor); the name must stay."""
        with self.auditor.audited("replace", user, name):
            new = plain(document)
            self._edit(name, expected_version, lambda _doc: new, whole=True)
        return self.get_job(name)

    def delete_job(self, name: str, user: str, expected_version: str | None = None) -> None:
        """Delete the job's file; its run history stays in the store."""
        with self.auditor.audited("delete", user, name) as ctx:
            with self.files.locked():
                jf = self.files.read(name)
                self.files.check_version(jf, expected_version)
                with self._file_change(name):
                    self.files.remove(name)
            ctx.details["version"] = jf.version
            if isinstance(jf.document, dict):
                ctx.details["document"] = jf.document
            if not self.daemon_alive() and not self.here.call_if_started(lambda s: s.remove_job(name)):
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
        with self.auditor.audited("trigger", user, name) as ctx:
            jf = self.files.read(name)
            config = self._valid_config(jf)
            if not config.enabled:
                raise InvalidTransitionError(f"job {name!r} is disabled; enable it before triggering it")
            if self.daemon_alive():
                return self._trigger_via_daemon(name, user, ctx)
            return self.here.trigger(config, user, ctx)
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
        return waits.await_retry(self.store, run, limit)

    def wait_for_run(self, run_id: int, timeout: float | None = None) -> RunRecord:
        """Block until the run has ended (a run queued behind another first waits its turn);
        :class:`RunWaitTimeoutError` after ``timeout`` seconds (None: as long as it takes)."""
        return waits.await_run(self.store, run_id, timeout)

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
        self.auditor.record_denied(user, action, job, reason)

    def close(self) -> None:
        """Wait for runs started here to end, then release the log files and the store we opened."""
        if self._closed:
            return
        self._closed = True
        self.lister.close()
        self.here.close()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> JobManagementService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- editing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _file_change(self, name: str) -> Iterator[None]:
        """Around the write or removal of one job's file (under the folder lock): the file hooks
        may refuse it before, and are told after."""
        if not self.file_hooks:
            yield
            return
        ctx = self.auditor.current()
        change = FileChange(ctx.action, name, self.files.path_for(name), ctx.user)
        for hook in self.file_hooks:
            hook.before(change)
        yield
        for hook in self.file_hooks:
            hook.after(change)

    def _edit(
        self, name: str, expected_version: str | None, make: Callable[[dict[str, Any]], Any], *, whole: bool = False
    ) -> None:
        """Read-check-write one job under the folder lock; audit details and transition."""
        ctx = self.auditor.current()
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
            self._apply_enabled(report.config, user=ctx.user)

    def _set_enabled(self, name: str, user: str, enabled: bool) -> JobView:
        with self.auditor.audited("enable" if enabled else "disable", user, name):
            self._edit(name, None, lambda doc: {**doc, "enabled": enabled})
        return self.get_job(name)

    def _apply_enabled(self, config: JobConfig, *, user: str) -> None:
        """With no daemon alive, have the enable/disable transition applied here (audited when
        the lifecycle announces it). With a daemon, it applies it when it reloads the file."""
        if self.daemon_alive():
            return
        self.here.call(lambda scheduler: scheduler.add_job(config, user=user))

    def _trigger_via_daemon(self, name: str, user: str, ctx: AuditContext) -> int:
        request = self.store.request_trigger(name, user=user, at=self.clock.now())
        ctx.details.update(via="daemon", request_id=request.id)
        run_id = waits.await_pickup(self.store, request.id, name, self.daemon_pickup_timeout)
        ctx.details["run_id"] = run_id
        return run_id

    # -- helpers ---------------------------------------------------------------------------
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
        return document_path(self.jobs_directory, name, doc)

    def _raise_invalid(self, doc: Any, name: str | None) -> None:
        report = validate_document(doc, self._display(name, None), stem=name)
        raise ValidationError(report.errors or [Problem(self._display(name, None), "$", "invalid")])
