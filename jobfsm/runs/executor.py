"""Run one job as a subprocess: its own process group, output straight to files, a timeout.

The executor ties the parts of ``jobfsm/runs/`` together (see docs/architecture.md): what a
process is started with (:mod:`~jobfsm.runs.spawn`), its output files
(:mod:`~jobfsm.runs.output`), a run in progress (:mod:`~jobfsm.runs.active`), watching it to
its end (:mod:`~jobfsm.runs.supervise`), the reaper thread (:mod:`~jobfsm.runs.reaper`) and
process groups (:mod:`~jobfsm.runs.groups`).

- **Never raise for a job's problem.** A missing working directory, a command that is not
  found, a file without execute permission, a bad environment, anything ``Popen`` raises:
  :meth:`JobExecutor.execute` returns a ``NOT_STARTED`` result whose ``message`` says exactly
  what is wrong and names the thing. Worker threads can call it blindly.
- **Two ways to run.** :meth:`JobExecutor.execute` runs a job to its end on the calling thread
  (``jobfsm run``, the admin page). :meth:`JobExecutor.launch`, the daemon's way, starts it and
  returns at once: one reaper thread waits for every launched run and delivers each result to
  a callback. A run that times out, is terminated or leaves processes in its group is handed
  to a short-lived thread that runs the same supervision as ``execute`` (grace periods block;
  the reaper must not).
- **Two clocks.** ``start_time``/``end_time`` and ``duration_seconds`` come from the injected
  :class:`~jobfsm.clock.Clock`; timeouts and grace periods use the real monotonic clock.
- **terminate / terminate_all** may be called from any thread. They set the reason (the first
  cause wins: a run that already timed out stays ``TIMED_OUT``), send SIGTERM to the group,
  wait for the leader on an event for the grace period, then SIGKILL the group, and wait for
  the executing thread to finish its bookkeeping. ``terminate_all`` signals every run first
  and shares one grace period. A run whose ``Popen`` is in progress at that very moment is
  registered just after and is not signalled; the daemon stops starting runs before it
  terminates them.
- **signal_all** is the daemon's shutdown: it signals every group and returns at once, so the
  caller keeps the clock (SIGTERM at one moment, SIGKILL at another, or at once on a second
  signal) and keeps listening for signals meanwhile. A later call's reason replaces an
  earlier one's: it says how the run was finally ended.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jobfsm.clock import Clock, SystemClock
from jobfsm.model import JobConfig, Outcome
from jobfsm.runs import spawn, supervise
from jobfsm.runs.active import ActiveRun
from jobfsm.runs.groups import group_alive, pidfd_open
from jobfsm.runs.lost import ProcessesEnded, RunTag, end_run_processes
from jobfsm.runs.output import (
    OMITTED_MARKER,
    open_outputs,
    output_files,
    read_tail,
    run_output_paths,
)
from jobfsm.runs.reaper import Reaper

# JobExecutor and JobResult live here; the rest is re-exported for the tests and the service
# (its log view reads tails) that import them from here.
__all__ = [
    "OMITTED_MARKER",
    "JobExecutor",
    "JobResult",
    "ProcessesEnded",
    "RunTag",
    "end_run_processes",
    "read_tail",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobResult:
    """How one run ended, as the daemon records it."""

    job_name: str
    run_id: int
    start_time: datetime
    """Aware UTC, from the executor's clock, taken just before the process was started."""
    end_time: datetime
    exit_code: int | None
    """None when it could not start or was ended by a signal."""
    stdout: str
    """Head and tail of the output file, UTF-8 decoded with replacement (see :func:`read_tail`)."""
    stderr: str
    duration_seconds: float
    status: Outcome
    signal: int | None
    """The signal that ended it, if any."""
    message: str
    """Empty, or a human explanation of what happened (what could not start, why it was killed)."""
    stdout_path: str | None
    stderr_path: str | None

    @property
    def success(self) -> bool:
        return self.status is Outcome.SUCCEEDED


class JobExecutor:
    """Starts runs of jobs and supervises them until they end. Safe to use from many threads."""

    def __init__(
        self,
        log_dir: Path,
        *,
        tail_bytes: int = 32 * 1024,
        kill_grace_seconds: float = 5.0,
        clock: Clock | None = None,
        base_env: Mapping[str, str] | None = None,
        kill_leftovers: bool = True,
    ) -> None:
        if tail_bytes < 0:
            raise ValueError(f"tail_bytes must be 0 or more, not {tail_bytes!r}")
        if kill_grace_seconds < 0:
            raise ValueError(f"kill_grace_seconds must be 0 or more, not {kill_grace_seconds!r}")
        self.log_dir = Path(log_dir)
        self.tail_bytes = tail_bytes
        self.kill_grace_seconds = kill_grace_seconds
        self.kill_leftovers = kill_leftovers
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._base_envb = spawn.base_environ(base_env if base_env is not None else os.environ)
        # Names the process that starts the runs in their environment: once it is gone, its
        # runs' processes can be told from any other's (end_run_processes).
        self._node_pid = str(os.getpid()).encode()
        # Absolute: the store names a run's output files to every host (and `--logs logs` is relative).
        self._runs_dir = os.path.join(os.path.abspath(self.log_dir), "runs")
        self._lock = threading.Lock()
        self._runs: dict[int, ActiveRun] = {}
        self._reaper: Reaper | None = None

    # -- public --------------------------------------------------------------------------
    def output_paths(self, job_name: str, run_id: int) -> tuple[Path, Path]:
        """Where the full stdout and stderr of a run are written (:func:`run_output_paths`)."""
        return run_output_paths(self.log_dir, job_name, run_id)

    def running(self) -> list[int]:
        """Ids of the runs executing now."""
        with self._lock:
            return sorted(self._runs)

    def terminate(self, run_id: int, *, reason: str) -> bool:
        """Stop one run (SIGTERM, grace, SIGKILL to its group); False if it is not running.

        The run's result gets status KILLED and ``reason`` as its message.
        """
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return False
        supervise.terminate_runs([run], reason, self.kill_grace_seconds)
        return True

    def terminate_all(self, *, reason: str) -> None:
        """Stop every run, all sharing one grace period, and wait until they are recorded."""
        with self._lock:
            runs = list(self._runs.values())
        if runs:
            log.info("terminating %d running job(s): %s", len(runs), reason)
            supervise.terminate_runs(runs, reason, self.kill_grace_seconds)

    def signal_all(self, sig: int, *, reason: str, grace_seconds: float = 0.0) -> int:
        """Send ``sig`` to every run's process group now and return at once; how many runs.

        Each run ends as KILLED with ``reason`` (a run that timed out stays TIMED_OUT); a later
        call's reason replaces an earlier one's. What a run's command leaves in its group when
        it ends gets SIGKILL ``grace_seconds`` after this; the command itself is the caller's to
        SIGKILL (another call), which is what lets a daemon kill at once on a second signal.
        """
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.decide(Outcome.KILLED, reason, grace_seconds, final=True)
            run.signal_group(sig)
        return len(runs)

    def execute(
        self, job: JobConfig, run_id: int, *, scheduled_for: datetime | None = None
    ) -> JobResult:
        """Run ``job`` to its end on this thread and say how it went. Never raises for the
        job's problems."""
        run = self._spawn(job, run_id, scheduled_for)
        if isinstance(run, JobResult):
            return run
        return self._finish(run, self._supervise(run))

    def launch(
        self,
        job: JobConfig,
        run_id: int,
        *,
        on_done: Callable[[JobResult], None],
        scheduled_for: datetime | None = None,
    ) -> JobResult | None:
        """Start ``job`` now on this thread and return at once; None once it started, its
        result going later to ``on_done`` (on the reaper's thread, or a supervising thread for a
        timeout or leftovers). A run that cannot start is returned here instead, and
        ``on_done`` is never called for it. Never raises for the job's problems.

        No thread waits per run: one reaper thread waits for every launched run at once
        (one ``epoll`` over their pidfds and a heap of timeouts), so a burst of thousands
        of short runs costs a ``Popen`` each and little else.
        """
        run = self._spawn(job, run_id, scheduled_for, on_done=on_done)
        if isinstance(run, JobResult):
            return run
        if run.pidfd is None or not hasattr(select, "epoll"):  # no pidfds here: a thread each
            self._hand_off(run, timed_out=False)
            return None
        self._the_reaper().watch(run)
        return None

    def _the_reaper(self) -> Reaper:
        with self._lock:
            if self._reaper is None:
                self._reaper = Reaper(self._leader_exited, self._timed_out)
            return self._reaper

    @contextlib.contextmanager
    def reaping_paused(self) -> Iterator[None]:
        """Launched runs that end inside this block are taken care of after it (on the reaper's
        thread, as always), or by :meth:`reap_now` on the caller's. The daemon starts a burst of
        runs inside it: a second thread that wakes for every run that ends would take the GIL
        each time the starting thread makes a system call, and ``Popen`` makes several
        (measured: 45 % of a burst's time)."""
        if not hasattr(select, "epoll") or not hasattr(os, "pidfd_open"):  # no reaper here
            yield
            return
        reaper = self._the_reaper()
        reaper.pause()
        try:
            yield
        finally:
            reaper.resume()

    def reap_now(self) -> None:
        """Inside :meth:`reaping_paused`: handle the launched runs that have ended by now on
        this thread (their results go to their callbacks, as always), without waiting. A burst
        calls it between its chunks, so that runs keep starting while it records fires."""
        with self._lock:
            reaper = self._reaper
        if reaper is not None:
            reaper.poll_now()

    def not_started(self, job: JobConfig, run_id: int, message: str) -> JobResult:
        """The result of a run that never began, for ``message`` (e.g. the daemon stopped
        before its turn came)."""
        now = self._clock.now()
        return _not_started(job, run_id, message, now, now, 0.0)

    def close(self) -> None:
        """Stop the reaper thread (runs still going are no longer waited for; terminate
        them first)."""
        with self._lock:
            reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.close()

    # -- starting and finishing ------------------------------------------------------------
    def _spawn(
        self,
        job: JobConfig,
        run_id: int,
        scheduled_for: datetime | None,
        *,
        on_done: Callable[[JobResult], None] | None = None,
    ) -> ActiveRun | JobResult:
        """Start the process, registered as running; or the result saying why it cannot start."""
        start_time = self._clock.now()
        t0 = self._clock.monotonic()

        def not_started(message: str, paths: tuple[str, str] | None = None) -> JobResult:
            log.warning("run %s of job %r could not start: %s", run_id, job.name, message)
            duration = max(0.0, self._clock.monotonic() - t0)
            return _not_started(job, run_id, message, start_time, self._clock.now(), duration, paths)

        argv, argv_problem = spawn.argv(job.command)
        problem = spawn.config_problem(job) or argv_problem
        env, env_problem = ({}, "") if problem else spawn.run_env(
            self._base_envb, self._node_pid, job, run_id, scheduled_for
        )
        problem = problem or env_problem
        if problem:
            return not_started(problem)
        with self._lock:
            if run_id in self._runs:
                return not_started(f"run id {run_id!r} is already executing; run ids must be unique")

        paths = output_files(self._runs_dir, job.name, run_id)
        try:
            out_fd, err_fd = open_outputs(paths)
        except OSError as exc:
            where = exc.filename or paths[0]
            return not_started(f"cannot write output file {where!r}: {exc.strerror or exc}")
        try:
            proc = subprocess.Popen(
                argv,
                cwd=job.working_directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out_fd,
                stderr=err_fd,
                start_new_session=True,
                close_fds=True,
            )
        except Exception as exc:  # anything at Popen is the job's problem, never ours to raise
            return not_started(spawn.explain(exc, job, argv), paths)
        finally:
            os.close(out_fd)
            os.close(err_fd)
        run = ActiveRun(
            run_id=run_id, job=job, proc=proc, pidfd=pidfd_open(proc.pid), paths=paths,
            start_time=start_time, t0=t0, on_done=on_done,
        )
        timeout = job.timeout_seconds
        if timeout and timeout > 0:
            run.deadline = time.monotonic() + timeout
        with self._lock:
            self._runs[run_id] = run
        if log.isEnabledFor(logging.DEBUG):
            log.debug("run %s of job %r started: pid %s", run_id, job.name, proc.pid)
        return run

    def _release(self, run: ActiveRun) -> None:
        """The run's process group is done with: unregister it and wake terminate()."""
        with self._lock:
            self._runs.pop(run.run_id, None)
        if run.pidfd is not None:
            os.close(run.pidfd)
            run.pidfd = None
        run.exited.set()
        run.done.set()

    def _finish(self, run: ActiveRun, leftovers: int) -> JobResult:
        self._release(run)
        job = run.job
        end_time = self._clock.now()
        duration = max(0.0, self._clock.monotonic() - run.t0)
        status, exit_code, sig, message = self._outcome(run, job, leftovers)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("run %s of job %r ended: %s %s", run.run_id, job.name, status.value, message)
        return JobResult(
            job_name=job.name,
            run_id=run.run_id,
            start_time=run.start_time,
            end_time=end_time,
            exit_code=exit_code,
            stdout=read_tail(run.paths[0], self.tail_bytes),
            stderr=read_tail(run.paths[1], self.tail_bytes),
            duration_seconds=duration,
            status=status,
            signal=sig,
            message=message,
            stdout_path=run.paths[0],
            stderr_path=run.paths[1],
        )

    def _outcome(
        self, run: ActiveRun, job: JobConfig, leftovers: int
    ) -> tuple[Outcome, int | None, int | None, str]:
        return supervise.outcome(run, job, leftovers, self.kill_grace_seconds)

    def _call_back(self, run: ActiveRun, result: JobResult) -> None:
        """``on_done(result)``; a failing callback is logged: it must not take the reaper down."""
        assert run.on_done is not None
        try:
            run.on_done(result)
        except Exception:
            log.exception("the result handler of run %s of job %r failed", run.run_id, run.job_name)

    def _leader_exited(self, run: ActiveRun) -> None:
        """The reaper saw a launched run's command end. The common case (it ended by itself
        and left nothing in its group) is finished right here on the reaper's thread."""
        try:
            run.proc.wait()  # reaps at once: the pidfd said it ended
            run.exited.set()
            if run.cause is None and (not self.kill_leftovers or not group_alive(run.pgid)):
                result = self._finish(run, 0)
            else:
                self._hand_off(run, timed_out=False)
                return
        except Exception as exc:  # never leave a run undelivered: its job would stay running
            log.exception("cannot collect the result of run %s of job %r", run.run_id, run.job_name)
            self._release(run)
            result = self._uncollected(run, exc)
        self._call_back(run, result)

    def _uncollected(self, run: ActiveRun, exc: Exception) -> JobResult:
        """The result of a run whose own could not be collected: FAILED, saying why."""
        code = run.proc.returncode
        return JobResult(
            job_name=run.job_name, run_id=run.run_id, start_time=run.start_time,
            end_time=self._clock.now(), exit_code=code if code is not None and code >= 0 else None,
            stdout="", stderr="", duration_seconds=max(0.0, self._clock.monotonic() - run.t0),
            status=Outcome.FAILED, signal=None, stdout_path=run.paths[0], stderr_path=run.paths[1],
            message=f"the daemon could not collect this run's result: {exc}",
        )

    def _timed_out(self, run: ActiveRun) -> None:
        self._hand_off(run, timed_out=True)

    def _hand_off(self, run: ActiveRun, *, timed_out: bool) -> None:
        threading.Thread(
            target=self._supervise_and_deliver, args=(run, timed_out),
            name=f"jobfsm-run-{run.run_id}", daemon=True,
        ).start()

    def _supervise_and_deliver(self, run: ActiveRun, timed_out: bool) -> None:
        """A launched run that needs a thread of its own: it timed out, was terminated, left
        processes in its group, or this platform has no pidfds."""
        self._call_back(run, self._finish(run, self._supervise(run, timed_out=timed_out)))

    def _supervise(self, run: ActiveRun, *, timed_out: bool = False) -> int:
        """Watch the run to its end (:func:`supervise.supervise_group`); leftovers killed.
        Whatever goes wrong, the run is unregistered (terminate() must not wait for it for ever)."""
        try:
            return supervise.supervise_group(
                run, self.kill_grace_seconds, self.kill_leftovers, timed_out=timed_out
            )
        except BaseException:
            self._release(run)
            raise


def _not_started(
    job: JobConfig,
    run_id: int,
    message: str,
    start_time: datetime,
    end_time: datetime,
    duration: float,
    paths: tuple[str, str] | None = None,
) -> JobResult:
    return JobResult(
        job_name=job.name,
        run_id=run_id,
        start_time=start_time,
        end_time=end_time,
        exit_code=None,
        stdout="",
        stderr="",
        duration_seconds=duration,
        status=Outcome.NOT_STARTED,
        signal=None,
        message=message,
        stdout_path=paths[0] if paths else None,
        stderr_path=paths[1] if paths else None,
    )
