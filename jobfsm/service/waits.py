"""Waiting on the store for what another thread or process does: a daemon taking a trigger
request, a run ending, a retry starting. Polled: the store is the only thing the waiter and the
runner share (they may be on different hosts)."""

from __future__ import annotations

import threading
import time

from jobfsm.errors import JobfsmError
from jobfsm.model import RunStatus, Trigger
from jobfsm.store.abc import RunRecord, Store

__all__ = ["RunWaitTimeoutError", "TriggerTimeoutError", "await_pickup", "await_retry", "await_run"]

POLL_SECONDS = 0.05


class TriggerTimeoutError(JobfsmError, TimeoutError):
    """A live daemon did not pick up a trigger request in time."""


class RunWaitTimeoutError(JobfsmError, TimeoutError):
    """A run did not end within the time :meth:`JobManagementService.wait_for_run` was given."""


def _waiting(run: RunRecord) -> bool:
    """Recorded as skipped while it waits its turn (``overlap: queue``): it will still run."""
    return run.status is RunStatus.SKIPPED and run.message.startswith("queued behind run")


def await_pickup(store: Store, request_id: int, name: str, timeout: float) -> int:
    """The id of the run a daemon made of trigger request ``request_id`` (for job ``name``);
    :class:`TriggerTimeoutError` when none took it within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        current = store.get_trigger_request(request_id)
        if current.run_id is not None:
            return current.run_id
        if time.monotonic() >= deadline:
            raise TriggerTimeoutError(
                f"no daemon picked up the trigger request {request_id} for job {name!r} within "
                f"{timeout:g} s; check `jobfsm status` and the daemon's log "
                "(the request stays queued: a daemon that recovers will run it)"
            )
        pause.wait(POLL_SECONDS)


def await_run(store: Store, run_id: int, timeout: float | None) -> RunRecord:
    """The run once it has ended (a run queued behind another first waits its turn);
    :class:`RunWaitTimeoutError` after ``timeout`` seconds (None: as long as it takes)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = threading.Event()
    while True:
        run = store.get_run(run_id)
        if run.status is not RunStatus.RUNNING and not _waiting(run):
            return run
        if deadline is not None and time.monotonic() >= deadline:
            raise RunWaitTimeoutError(f"run {run_id!r} is still running after {timeout:g} s")
        pause.wait(POLL_SECONDS)


def await_retry(store: Store, run: RunRecord, limit: float) -> RunRecord:
    """The next attempt of ``run`` once it has ended; :class:`RunWaitTimeoutError` when it did
    not start and end within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    pause = threading.Event()
    while True:
        retry = next((r for r in store.list_runs(run.job, limit=20)
                      if r.trigger is Trigger.RETRY and r.attempt == run.attempt + 1 and r.id > run.id
                      and r.scheduled_for == run.scheduled_for), None)
        if retry is not None and not _waiting(retry):
            return await_run(store, retry.id, max(deadline - time.monotonic(), 0.0))
        if time.monotonic() >= deadline:
            raise RunWaitTimeoutError(
                f"the retry of run {run.id} did not run within {limit:g} s; check `jobfsm status`")
        pause.wait(POLL_SECONDS)
