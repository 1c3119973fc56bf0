"""The notifier: a listener of the lifecycle's events that turns them into notices.

It runs on the thread that owns the transitions, so it only decides (:class:`Streaks`) and
queues; the :class:`Dispatcher` delivers on its own thread, where the run is also read back
from the store (as ``history --format json`` shows it) so the loop never waits for either.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobfsm.clock import Clock
from jobfsm.lifecycle.events import Event, RunFinished, RunLost, RunSkipped, RunStarted
from jobfsm.model import JobConfig, NotifyEvent, RunStatus, Trigger
from jobfsm.notify.dispatcher import Delivery, DeliveryError, Dispatcher
from jobfsm.notify.misses import MissCause, miss_of
from jobfsm.notify.notice import Notice, last_line
from jobfsm.notify.settings import NotifySettings, SmtpServer, Targets
from jobfsm.notify.streaks import Streaks
from jobfsm.store.abc import RunRecord

if TYPE_CHECKING:
    from jobfsm.runs.executor import JobResult
    from jobfsm.store import Store


@dataclass(frozen=True, slots=True)
class _Going:
    job: str
    trigger: Trigger
    scheduled_for: datetime | None


class Notifier:
    def __init__(
        self,
        settings: NotifySettings,
        dispatcher: Dispatcher,
        *,
        clock: Clock,
        node: str,
        config: Callable[[str], JobConfig | None],
        store: Store | None = None,
        failing: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock = clock
        self.node = node
        self._config = config
        """The job's current config by name (None: not loaded)."""
        self.store = store
        self.streaks = Streaks(failing=set(failing))
        self._going: dict[int, _Going] = {}
        self._lock = threading.Lock()
        """Guards ``_going``: the listener adds and removes, the long-running timers read."""
        self._held: list[tuple[NotifyEvent, str, str, dict[str, Any]]] | None = []
        """Notices of jobs not loaded yet, during start-up (the fires a job missed while the
        daemon was down are recorded while it is being loaded); None once started."""

    def started(self) -> None:
        """Start-up is done and every job is loaded: send what was held for them."""
        held, self._held = self._held or [], None
        for event, job, message, kwargs in held:
            self._send(event, job, message, **kwargs)

    # -- the listener (the loop's thread) ----------------------------------------------------
    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, RunFinished):
            self._finished(event.result, event.trigger)
        elif isinstance(event, RunSkipped):
            self._skipped(event)
        elif isinstance(event, RunLost):
            self.streaks.lost(event.run.job)
            self._send(NotifyEvent.LOST, event.run.job, f"job {event.run.job!r}: run {event.run.id} was lost: "
                       f"{event.run.message}", run=event.run.to_dict())

    def _started(self, event: RunStarted) -> None:
        self.streaks.started(event.job)
        with self._lock:
            self._going[event.run_id] = _Going(event.job, event.trigger, event.scheduled_for)
        config = self._config(event.job)  # on every start: look at the config, build nothing
        notify = config.notify if config is not None else None
        if notify is not None and notify.long_running_seconds and NotifyEvent.LONG_RUNNING in notify.on:
            seconds = notify.long_running_seconds
            self.dispatcher.after(seconds, functools.partial(self._long_running, event.run_id, seconds))

    def _finished(self, result: JobResult, trigger: Trigger) -> None:
        with self._lock:
            going = self._going.pop(result.run_id, None)
        event = self.streaks.finished(result.job_name, result.status)
        if event is None:
            return
        if event is NotifyEvent.FAILURE:
            how = _how_it_failed(result)
            tail = last_line(result.stderr, result.stdout)
            message = f"job {result.job_name!r} failed: {how} (run {result.run_id})" + (f"; last output: {tail}" if tail else "")
        else:
            message = f"job {result.job_name!r} recovered: run {result.run_id} succeeded"
        fallback = RunRecord(
            result.run_id, result.job_name, result.status.run_status, trigger, self.node,
            scheduled_for=going.scheduled_for if going else None, started_at=result.start_time,
            ended_at=result.end_time, exit_code=result.exit_code, signal=result.signal,
            duration_seconds=result.duration_seconds, outcome=result.status, message=result.message,
            stdout_path=result.stdout_path, stderr_path=result.stderr_path,
        ).to_dict()
        self._send(event, result.job_name, message, run_id=result.run_id, run=fallback,
                   stdout=result.stdout, stderr=result.stderr)

    def _skipped(self, event: RunSkipped) -> None:
        miss = miss_of(event.reason, event.trigger)
        if miss is None or self.streaks.missed(event.job) is None:
            return
        if miss.cause is MissCause.DOWN:
            message = f"job {event.job!r}: {event.reason}"
        else:
            message = (f"job {event.job!r}: a fire did not run: {event.reason}; "
                       "more misses are not told until the job runs again")
        self._send(NotifyEvent.MISSED, event.job, message, run_id=event.run_id)

    # -- the delivery thread -----------------------------------------------------------------
    def _long_running(self, run_id: int, seconds: int) -> None:
        with self._lock:
            going = self._going.get(run_id)
        if going is None:
            return
        self._send(NotifyEvent.LONG_RUNNING, going.job,
                   f"job {going.job!r}: run {run_id} is still running after {seconds} s", run_id=run_id)

    # -- queueing -----------------------------------------------------------------------------
    def _targets(self, job: str) -> Targets | None:
        config = self._config(job)
        return self.settings.targets(config.notify) if config is not None else None

    def _send(self, event: NotifyEvent, job: str, message: str, *, run_id: int | None = None,
              run: dict[str, Any] | None = None, stdout: str = "", stderr: str = "") -> None:
        targets = self._targets(job)
        if targets is None and self._held is not None:
            self._held.append((event, job, message, {"run_id": run_id, "run": run, "stdout": stdout, "stderr": stderr}))
            return
        if targets is None or not targets.wants(event):
            return
        draft = Notice(event, job, self.clock.now(), message, self.node, run, stdout, stderr)
        notice = _Lazy(draft, run_id, self.store)
        settings = self.settings
        if targets.webhook is not None:
            url = targets.webhook
            self.dispatcher.submit(Delivery(
                f"{event.value} of job {job!r} to {url}",
                lambda: _post(url, notice.get(), settings),
            ))
        if targets.email:
            to = targets.email
            server = settings.smtp
            if server is None:
                self.dispatcher.submit(Delivery(f"{event.value} of job {job!r} to {', '.join(to)}", _no_smtp))
            else:
                self.dispatcher.submit(Delivery(
                    f"{event.value} of job {job!r} to {', '.join(to)}",
                    lambda: _mail(server, to, notice.get(), settings),
                ))


# The senders are imported with the first notice, on a delivery thread: a daemon that notifies
# nobody does not load urllib.request, smtplib, ssl and email.
def _post(url: str, notice: Notice, settings: NotifySettings) -> None:
    from jobfsm.notify.webhook import post

    post(url, notice, secret=settings.secret, timeout=settings.timeout_seconds)


def _mail(server: SmtpServer, to: tuple[str, ...], notice: Notice, settings: NotifySettings) -> None:
    from jobfsm.notify.email import send

    send(server, to, notice, timeout=settings.timeout_seconds)


def _no_smtp() -> None:
    raise DeliveryError("no SMTP server: pass --smtp smtp://user:password@host:port (or set JOBFSM_SMTP_URL)")


class _Lazy:
    """A notice whose run is read from the store when first delivered (on the delivery thread),
    once for all its channels; the draft's own record when the store cannot say."""

    def __init__(self, draft: Notice, run_id: int | None, store: Store | None) -> None:
        self._draft, self._run_id, self._store = draft, run_id, store
        self._notice: Notice | None = None
        self._lock = threading.Lock()

    def get(self) -> Notice:
        with self._lock:
            if self._notice is None:
                self._notice = self._resolve()
            return self._notice

    def _resolve(self) -> Notice:
        draft = self._draft
        if self._run_id is None or self._store is None:
            return draft
        try:
            record = self._store.get_run(self._run_id)
        except Exception:  # the store is failing or the run was pruned: the draft says enough
            return draft
        if record.status is RunStatus.RUNNING and draft.run is not None:
            return draft  # not recorded yet (a store outage): the draft is the newer
        return replace(draft, run=record.to_dict(), stdout_tail=draft.stdout_tail or record.stdout_tail,
                       stderr_tail=draft.stderr_tail or record.stderr_tail)


def _how_it_failed(result: JobResult) -> str:
    what = result.status.value.replace("_", " ")
    if result.exit_code is not None:
        what = f"exit {result.exit_code}"
    elif result.signal is not None:
        what = f"{what}, signal {result.signal}"
    return f"{what}; {result.message}" if result.message else what
