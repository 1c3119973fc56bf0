"""Operational control through the service: kill a running run, pause and resume a job, follow
a run's output as it is written. :class:`~jobfsm.service.JobManagementService` exposes these
as ``kill_run``, ``pause_job``, ``resume_job``, ``get_pause`` and ``follow_output``; the CLI and
the admin page call those (see docs/operations-control.md).

- **Kill** goes through the store to whichever node runs the run: one kill request per run,
  naming its node; that node's daemon (or the ``jobfsm run`` process that started it) takes it,
  ends the run's process group and records the run ``failed`` with outcome ``killed``. The
  caller waits until the run has ended. A run whose node is not alive cannot be killed: it is
  marked ``lost`` when a daemon notices its node is gone.
- **Pause** is a row in the store (never the job file), read by every scheduler; it ends by
  itself at its ``until``.
- **Follow** reads the run's output files (``<logs>/runs/<job>/<id>.out|.err``) as they grow
  and stops when the store says the run ended.
"""

from __future__ import annotations

import codecs
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jobfsm.errors import InvalidTransitionError, JobfsmError, RunNotFoundError
from jobfsm.model import RunStatus
from jobfsm.nodes import local_pid, local_process_alive
from jobfsm.runs.output import run_output_paths
from jobfsm.store.abc import RunRecord
from jobfsm.store.control import KILL_PENDING, KILL_SIGNALLED, Pause

if TYPE_CHECKING:
    from jobfsm.service.service import JobManagementService

POLL_SECONDS = 0.05
FOLLOW_POLL_SECONDS = 0.2
"""How often ``logs --follow`` looks for new output and for the run's end."""
KILL_END_SECONDS = 120.0
"""How long a kill waits for the run to end once its node took the request (the node's grace
period between SIGTERM and SIGKILL, 5 s by default, is well inside)."""
LIVE_OUTPUT_BYTES = 64 * 1024
"""The admin page's live output shows at most the last this many bytes of each stream."""


class NothingRunningError(InvalidTransitionError, LookupError):
    """A kill for a job (or run) that has no run in progress."""


class KillTimeoutError(JobfsmError, TimeoutError):
    """The node that runs the run did not take the kill request, or the run did not end."""


class PauseError(JobfsmError, ValueError):
    """A pause that cannot be: an ``until`` in the past."""


# -- kill ------------------------------------------------------------------------------------
def kill_run(
    service: JobManagementService, name: str, user: str, *, run_id: int | None = None, how: str = "",
    pickup_timeout: float | None = None, end_timeout: float = KILL_END_SECONDS,
) -> list[RunRecord]:
    """Kill the job's running runs (or only ``run_id``) and wait until they ended; the runs as
    recorded then. Audited as ``kill``."""
    with service.auditor.audited("kill", user, name) as ctx:
        service._require_known(name)
        store = service.store
        if run_id is not None:
            run = store.get_run(run_id)
            if run.job != name:
                raise RunNotFoundError(run_id)
            if run.status is not RunStatus.RUNNING:
                raise NothingRunningError(
                    f"run {run_id} of job {name!r} is not running (it is {run.status.value}); nothing to kill"
                )
            targets = [run]
        else:
            targets = store.list_runs(name, status=RunStatus.RUNNING)
            if not targets:
                raise NothingRunningError(f"job {name!r} has no run in progress; nothing to kill")
        ctx.details["runs"] = [r.id for r in targets]
        if how:
            ctx.details["via"] = how
        for run in targets:  # a process of this host that is gone: nobody can take the request
            if local_pid(run.node) is not None and not local_process_alive(run.node):
                raise KillTimeoutError(
                    f"run {run.id} of job {name!r} was started by process {run.node!r}, which is gone; "
                    "it cannot be killed: a daemon marks it lost once it notices"
                )
        requests = [store.request_kill(name, run_id=r.id, node=r.node, user=user, at=service.clock.now())
                    for r in targets]
        ctx.details["requests"] = [r.id for r in requests]
        pickup = service.daemon_pickup_timeout if pickup_timeout is None else pickup_timeout
        ended = [_await_kill(service, request.id, request.run_id, pickup, end_timeout) for request in requests]
        ctx.details["outcomes"] = {str(r.id): r.outcome.value if r.outcome else r.status.value for r in ended}
    return ended


def _await_kill(service: JobManagementService, request_id: int, run_id: int, pickup: float, end: float) -> RunRecord:
    """The run once it ended; the node must take the request within ``pickup`` seconds, and the
    run end within ``end`` seconds after that."""
    store = service.store
    pause = threading.Event()
    taken_by = time.monotonic() + pickup
    ended_by: float | None = None
    while True:
        run = store.get_run(run_id)
        if run.status is not RunStatus.RUNNING:
            return run
        request = store.get_kill_request(request_id)
        if request.result not in (KILL_PENDING, KILL_SIGNALLED):  # its node no longer had it
            raise NothingRunningError(f"run {run_id}: {request.result}")
        now = time.monotonic()
        if request.claimed_at is not None and ended_by is None:
            ended_by = now + end
        if (ended_by is None and now >= taken_by) or (ended_by is not None and now >= ended_by):
            if ended_by is not None:
                what = f"did not end within {end:g} s of its node taking the request"
            else:
                alive = any(n.node == run.node for n in store.live_nodes(
                    now=service.clock.now(), max_age_seconds=service.heartbeat_max_age))
                what = (f"was not taken by node {run.node!r} within {pickup:g} s"
                        + ("" if alive else " (it has no recent heartbeat: it may be dead, and a daemon then "
                                            "marks the run lost)"))
            raise KillTimeoutError(
                f"the kill request {request_id} for run {run_id} {what}; check `jobfsm status` and the "
                "node's log (the request stays queued: the node takes it if it comes back)"
            )
        pause.wait(POLL_SECONDS)


# -- pause -----------------------------------------------------------------------------------
def pause_job(
    service: JobManagementService, name: str, user: str, *, until: datetime | None = None, reason: str = "",
) -> Pause:
    """Pause the job until ``until`` (None: until resumed), replacing a pause it had. Audited."""
    with service.auditor.audited("pause", user, name) as ctx:
        service.files.read(name)  # an unknown job is refused
        now = service.clock.now()
        if until is not None and until <= now:
            raise PauseError(
                f"--until {until.isoformat()} is not in the future; give a later time, or leave "
                f"--until out to pause job {name!r} until it is resumed"
            )
        pause = Pause(name, user, now, until, reason)
        ctx.details.update(until=until.isoformat() if until else None, reason=reason)
        service.store.set_pause(pause)
    _tell_local_runs(service)
    return pause


def resume_job(service: JobManagementService, name: str, user: str) -> Pause | None:
    """End the job's pause now; the pause it had (None: it was not paused). Audited."""
    with service.auditor.audited("resume", user, name) as ctx:
        service.files.read(name)
        was = service.store.clear_pause(name)
        active = was is not None and was.active(service.clock.now())
        ctx.details["was_paused"] = active
        if was is not None:
            ctx.details.update(paused_by=was.user, until=was.until.isoformat() if was.until else None)
    _tell_local_runs(service)
    return was if active else None


def get_pause(service: JobManagementService, name: str) -> Pause | None:
    """The job's pause if it holds now."""
    return active_pauses(service).get(name)


def active_pauses(service: JobManagementService) -> dict[str, Pause]:
    """Every pause that holds now, by job."""
    now = service.clock.now()
    return {p.job: p for p in service.store.list_pauses() if p.active(now)}


def _tell_local_runs(service: JobManagementService) -> None:
    """Runs started here (no daemon) follow the new pause at once (a daemon hears the bell)."""
    service.here.call_if_started(lambda scheduler: scheduler.control.refresh())


# -- follow ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Output:
    """A piece of a followed run's output (``stream``: ``stdout`` or ``stderr``), or, with
    ``stream`` ``start``/``end``, the run starting to be followed and the run as it ended."""

    stream: str
    text: str = ""
    run: RunRecord | None = None


def follow_output(
    service: JobManagementService, name: str, *, run_id: int | None = None,
    poll_seconds: float = FOLLOW_POLL_SECONDS, stop: threading.Event | None = None,
) -> Iterator[Output]:
    """The output of the job's running run (or ``run_id``; with neither running, the next run
    to start) as it is written, until the store says it ended. ``stop`` ends it early."""
    service._require_known(name)
    stop = stop or threading.Event()
    run = _run_to_follow(service, name, run_id, poll_seconds, stop)
    if run is None:
        return
    yield Output("start", run=run)
    out_path, err_path = _output_paths(service, run)
    readers = [_Reader("stdout", out_path), _Reader("stderr", err_path)]
    while True:
        current = service.store.get_run(run.id)
        done = current.status is not RunStatus.RUNNING
        for reader in readers:  # after the status: whatever was written before the end is read
            text = reader.read()
            if text:
                yield Output(reader.stream, text)
        if done or stop.is_set():
            for reader, tail in zip(readers, (current.stdout_tail, current.stderr_tail), strict=True):
                if not reader.seen and tail:  # the file is on another host: show the stored tail
                    yield Output(reader.stream, tail)
                reader.close()
            yield Output("end", run=current)
            return
        stop.wait(poll_seconds)


def _output_paths(service: JobManagementService, run: RunRecord) -> tuple[Path, Path]:
    """Where the run's output is being written: in this service's logs folder, or, when that is
    not where the node writes (another ``--logs``), beside the job's earlier output files (a
    run's paths are recorded when it ends)."""
    out, err = run_output_paths(service.log_directory, run.job, run.id)
    if run.stdout_path is not None or out.parent.is_dir():
        return (Path(run.stdout_path), Path(run.stderr_path or err)) if run.stdout_path else (out, err)
    earlier = next((r.stdout_path for r in service.store.list_runs(run.job, limit=50) if r.stdout_path), None)
    if earlier is not None and Path(earlier).parent.is_dir():
        folder = Path(earlier).parent
        return folder / out.name, folder / err.name
    return out, err


def _run_to_follow(
    service: JobManagementService, name: str, run_id: int | None, poll: float, stop: threading.Event,
) -> RunRecord | None:
    store = service.store
    if run_id is not None:
        run = store.get_run(run_id)
        if run.job != name:
            raise RunNotFoundError(run_id)
        return run
    recent = store.list_runs(name, limit=20)
    running = [r for r in recent if r.status is RunStatus.RUNNING]
    if running:
        return min(running, key=lambda r: r.id)
    newest = max((r.id for r in recent), default=0)
    while not stop.is_set():  # the next run: a waiting (queued) one counts once it started
        for r in store.list_runs(name, limit=20):
            if r.id > newest and r.status is not RunStatus.SKIPPED:
                return r
        stop.wait(poll)
    return None


class _Reader:
    """Reads what was appended to one output file since the last read (whole UTF-8 characters)."""

    def __init__(self, stream: str, path: Path) -> None:
        self.stream = stream
        self.path = path
        self.seen = False
        self._fd: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self) -> str:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                return ""
            self.seen = True
        chunks = []
        while True:
            data = os.read(self._fd, 65536)
            if not data:
                break
            chunks.append(self._decoder.decode(data))
        return "".join(chunks)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def live_output(service: JobManagementService, name: str) -> tuple[RunRecord | None, str, str]:
    """The job's running run (else its newest run) and the last :data:`LIVE_OUTPUT_BYTES` of
    each of its streams as written so far: what the admin page shows, refreshed every second."""
    runs = service.store.list_runs(name, limit=20)
    running = [r for r in runs if r.status is RunStatus.RUNNING]
    run = min(running, key=lambda r: r.id) if running else next(
        (r for r in runs if r.status is not RunStatus.SKIPPED), None)
    if run is None:
        return None, "", ""
    out_path, err_path = _output_paths(service, run)
    return run, _last_bytes(out_path, run.stdout_tail), _last_bytes(err_path, run.stderr_tail)


def _last_bytes(path: Path, fallback: str) -> str:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - LIVE_OUTPUT_BYTES))
            data = f.read(LIVE_OUTPUT_BYTES)
    except OSError:
        return fallback
    text = data.decode("utf-8", errors="replace")
    return text if size <= LIVE_OUTPUT_BYTES else "[…]" + text


__all__ = [
    "KillTimeoutError", "NothingRunningError", "Output", "PauseError", "active_pauses", "follow_output",
    "get_pause", "kill_run", "live_output", "pause_job", "resume_job",
]
