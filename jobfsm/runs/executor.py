"""Run one job as a subprocess: its own process group, output straight to files, a timeout.

Design decisions:

- **Never raise for a job's problem.** A missing working directory, a command that is not
  found, a file without execute permission, a bad environment, anything ``Popen`` raises:
  :meth:`JobExecutor.execute` returns a ``NOT_STARTED`` result whose ``message`` says exactly
  what is wrong and names the thing (``working directory '/x' does not exist``). Worker
  threads can call it blindly.
- **Output goes to files, never through the daemon.** stdout and stderr are opened as files
  under ``log_dir/runs/<job>/<run_id>.out|.err`` and handed to ``Popen``; the daemon never
  reads a pipe, so a job printing a gigabyte costs disk, not memory. After the run only a
  bounded head and tail (``tail_bytes`` each) are read back for the store and the log.
- **One process group per run** (``start_new_session=True``). A timeout or a shutdown
  signals the whole group: SIGTERM, ``kill_grace_seconds`` of grace, then SIGKILL, so
  grandchildren (``sh -c 'a & b'``) die too.
- **Leftovers are killed after a normal exit too** (``kill_leftovers=True``, the default).
  Cron leaves background processes of a finished job running; we don't, as systemd's
  ``KillMode=control-group`` doesn't: a stray ``cmd &`` would otherwise keep writing to the
  run's output file after its tails were read, escape the timeout, and pile up one copy per
  run while the job's overlap policy believes nothing is running. The result keeps the
  command's own status and says in ``message`` that leftovers were terminated. A job that
  means to leave a daemon behind detaches it properly (``setsid mydaemon``, which leaves our
  group), or the executor is built with ``kill_leftovers=False``.
- **Two ways to run.** :meth:`JobExecutor.execute` runs a job to its end on the calling thread
  (``jobfsm run``, the admin page). :meth:`JobExecutor.launch`, the daemon's way, starts it and
  returns at once: one reaper thread waits for every launched run (an ``epoll`` over their
  pidfds and a heap of their timeouts) and delivers each result to a callback, so a burst of
  10,000 runs needs no thread per run, only a ``Popen`` each. A run that times out, is
  terminated or leaves processes in its group is handed to a short-lived thread that runs the
  same supervision as ``execute`` (grace periods block; the reaper must not).
- **Waiting is event-driven.** CPython 3.11's ``Popen.wait(timeout=...)`` is itself a loop of
  sleeps (1 ms doubling up to 50 ms), which adds latency to every short run. Where Linux
  has ``pidfd_open`` (5.3+) we ``poll`` the process's pidfd with the timeout and reap with a
  plain ``wait()``; elsewhere we fall back to ``Popen.wait(timeout=...)``. Processes of the
  group other than the leader are not our children; to give them their grace period we find
  them in ``/proc`` (only when ``killpg(pgid, 0)`` says some remain, so a normal run pays
  one syscall) and poll their pidfds as well.
- **Two clocks.** ``start_time``/``end_time`` and ``duration_seconds`` come from the injected
  :class:`~jobfsm.clock.Clock`; timeouts and grace periods use the real monotonic clock,
  because the processes they govern live in real time (a fake clock must not make SIGKILL
  come early or never).
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
- **Every run's environment names it** (``JOBFSM_JOB``, ``JOBFSM_RUN_ID``, and
  ``JOBFSM_NODE_PID``, the pid of the jobfsm process that started it), inherited by whatever
  it starts. :func:`end_run_processes` finds a lost run's processes by it in ``/proc``, after
  the process that started them died (see ``Scheduler.reap_lost``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from jobfsm.clock import Clock, SystemClock, utc
from jobfsm.model import JobConfig, Outcome

log = logging.getLogger(__name__)

SHELL = "/bin/sh"
OMITTED_MARKER = "\n[... {n} bytes omitted ...]\n"
"""Placed between the head and the tail of an output longer than twice the tail size."""

_TERMINATE_BOOKKEEPING_SECONDS = 30.0
"""How long terminate() waits, after SIGKILL, for the executing thread to record the run."""
_KILLED_WAIT_SECONDS = 1.0
"""How long end_run_processes() waits for SIGKILLed processes to be gone before it counts them."""


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


@dataclass(eq=False, slots=True)
class _Run:
    """A run in progress: what terminate(), the reaper and the supervising thread share."""

    run_id: int
    job: JobConfig
    proc: subprocess.Popen[bytes]
    pidfd: int | None
    paths: tuple[str, str]
    start_time: datetime
    t0: float
    """The executor clock's monotonic() when the run began (for its duration)."""
    on_done: Callable[[JobResult], None] | None = None
    """Where :meth:`JobExecutor.launch` delivers the result (None for :meth:`JobExecutor.execute`)."""
    deadline: float | None = None
    """time.monotonic() at which the run times out (launched runs; None: no timeout)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    exited: threading.Event = field(default_factory=threading.Event)
    """Set once the leader (the command itself) has been reaped."""
    done: threading.Event = field(default_factory=threading.Event)
    """Set once the executing thread has finished with the run's process group."""
    cause: Outcome | None = None
    """TIMED_OUT or KILLED once either was decided; the first one wins."""
    reason: str = ""
    term_deadline: float | None = None
    """time.monotonic() at which the grace period after SIGTERM ends."""
    last_signal: int | None = None
    escalated: bool = False
    """SIGKILL had to be sent because something outlived the grace period."""

    @property
    def job_name(self) -> str:
        return self.job.name

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the leader's pid is the group's id

    def decide(self, cause: Outcome, reason: str, grace: float, *, final: bool = False) -> None:
        """The first cause wins; ``final``: a later kill of the same cause says how the run was
        finally ended (its reason replaces the earlier one), and its grace may only shorten."""
        with self.lock:
            if self.cause is None or (final and self.cause is cause):
                self.cause = cause
                self.reason = reason
            deadline = time.monotonic() + grace
            if self.term_deadline is None or (final and deadline < self.term_deadline):
                self.term_deadline = deadline

    def signal_group(self, sig: int) -> None:
        if self.done.is_set():  # the group is gone; its id may belong to someone else now
            return
        with self.lock:
            self.last_signal = sig
            if sig == signal.SIGKILL:
                self.escalated = True
        _killpg(self.pgid, sig)


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
        self._base_env: Mapping[str, str] = base_env if base_env is not None else os.environ
        # The base environment as bytes, made once (copying os.environ for every run cost ~10 %
        # of a start): a run sees the process's environment as it was when this was made.
        if self._base_env is os.environ and os.supports_bytes_environ:
            self._base_envb = dict(os.environb)
        else:
            self._base_envb = {os.fsencode(k): os.fsencode(v) for k, v in self._base_env.items()}
        # Names the process that starts the runs in their environment: once it is gone, its
        # runs' processes can be told from any other's (end_run_processes).
        self._node_pid = str(os.getpid()).encode()
        # Absolute: the store names a run's output files to every host (and `--logs logs` is relative).
        self._runs_dir = os.path.join(os.path.abspath(self.log_dir), "runs")
        self._lock = threading.Lock()
        self._runs: dict[int, _Run] = {}
        self._reaper: _Reaper | None = None

    # -- public --------------------------------------------------------------------------
    def output_paths(self, job_name: str, run_id: int) -> tuple[Path, Path]:
        """Where the full stdout and stderr of a run are written (:func:`run_output_paths`)."""
        return run_output_paths(self.log_dir, job_name, run_id)

    def _output_files(self, job_name: str, run_id: int) -> tuple[str, str]:
        stem = f"{self._runs_dir}/{job_name}/{run_id}"  # strings: Path objects cost ~5 % of a start
        return f"{stem}.out", f"{stem}.err"

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
        self._terminate([run], reason)
        return True

    def terminate_all(self, *, reason: str) -> None:
        """Stop every run, all sharing one grace period, and wait until they are recorded."""
        with self._lock:
            runs = list(self._runs.values())
        if runs:
            log.info("terminating %d running job(s): %s", len(runs), reason)
            self._terminate(runs, reason)

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

    def _the_reaper(self) -> _Reaper:
        with self._lock:
            if self._reaper is None:
                self._reaper = _Reaper(self._leader_exited, self._timed_out)
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
    ) -> _Run | JobResult:
        """Start the process, registered as running; or the result saying why it cannot start."""
        start_time = self._clock.now()
        t0 = self._clock.monotonic()

        def not_started(message: str, paths: tuple[str, str] | None = None) -> JobResult:
            log.warning("run %s of job %r could not start: %s", run_id, job.name, message)
            duration = max(0.0, self._clock.monotonic() - t0)
            return _not_started(job, run_id, message, start_time, self._clock.now(), duration, paths)

        problem = _check_name(job.name)
        if not problem and (not isinstance(job.working_directory, str) or not job.working_directory):
            problem = f"working directory {job.working_directory!r} is not a folder path; set one"
        argv, argv_problem = _argv(job.command)
        problem = problem or argv_problem
        env, env_problem = self._env(job, run_id, scheduled_for)
        problem = problem or env_problem
        if problem:
            return not_started(problem)
        with self._lock:
            if run_id in self._runs:
                return not_started(f"run id {run_id!r} is already executing; run ids must be unique")

        paths = self._output_files(job.name, run_id)
        try:
            out_fd, err_fd = _open_outputs(paths)
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
            return not_started(_explain(exc, job, argv), paths)
        finally:
            os.close(out_fd)
            os.close(err_fd)
        run = _Run(
            run_id=run_id, job=job, proc=proc, pidfd=_pidfd_open(proc.pid), paths=paths,
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

    def _release(self, run: _Run) -> None:
        """The run's process group is done with: unregister it and wake terminate()."""
        with self._lock:
            self._runs.pop(run.run_id, None)
        if run.pidfd is not None:
            os.close(run.pidfd)
            run.pidfd = None
        run.exited.set()
        run.done.set()

    def _finish(self, run: _Run, leftovers: int) -> JobResult:
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

    def _deliver(self, run: _Run, leftovers: int) -> None:
        """Finish a launched run and hand its result to its ``on_done``."""
        self._call_back(run, self._finish(run, leftovers))

    def _call_back(self, run: _Run, result: JobResult) -> None:
        """``on_done(result)``; a failing callback is logged: it must not take the reaper down."""
        assert run.on_done is not None
        try:
            run.on_done(result)
        except Exception:
            log.exception("the result handler of run %s of job %r failed", run.run_id, run.job_name)

    def _leader_exited(self, run: _Run) -> None:
        """The reaper saw a launched run's command end. The common case (it ended by itself
        and left nothing in its group) is finished right here on the reaper's thread."""
        try:
            run.proc.wait()  # reaps at once: the pidfd said it ended
            run.exited.set()
            if run.cause is None and (not self.kill_leftovers or not _group_alive(run.pgid)):
                result = self._finish(run, 0)
            else:
                self._hand_off(run, timed_out=False)
                return
        except Exception as exc:  # never leave a run undelivered: its job would stay running
            log.exception("cannot collect the result of run %s of job %r", run.run_id, run.job_name)
            self._release(run)
            code = run.proc.returncode
            result = JobResult(
                job_name=run.job_name, run_id=run.run_id, start_time=run.start_time,
                end_time=self._clock.now(), exit_code=code if code is not None and code >= 0 else None,
                stdout="", stderr="", duration_seconds=max(0.0, self._clock.monotonic() - run.t0),
                status=Outcome.FAILED, signal=None, stdout_path=run.paths[0], stderr_path=run.paths[1],
                message=f"the daemon could not collect this run's result: {exc}",
            )
        self._call_back(run, result)

    def _timed_out(self, run: _Run) -> None:
        self._hand_off(run, timed_out=True)

    def _hand_off(self, run: _Run, *, timed_out: bool) -> None:
        threading.Thread(
            target=self._supervise_and_deliver, args=(run, timed_out),
            name=f"jobfsm-run-{run.run_id}", daemon=True,
        ).start()

    def _supervise_and_deliver(self, run: _Run, timed_out: bool) -> None:
        """A launched run that needs a thread of its own: it timed out, was terminated, left
        processes in its group, or this platform has no pidfds."""
        self._deliver(run, self._supervise(run, timed_out=timed_out))

    # -- supervision ---------------------------------------------------------------------
    def _supervise(self, run: _Run, *, timed_out: bool = False) -> int:
        """Wait for the run to end, enforce its timeout, clean its group; return leftovers
        killed. ``timed_out``: the reaper saw the timeout pass already. Whatever goes wrong,
        the run is unregistered (terminate() must not wait for it for ever)."""
        try:
            return self._supervise_group(run, run.job.timeout_seconds, timed_out=timed_out)
        except BaseException:
            self._release(run)
            raise

    def _supervise_group(self, run: _Run, timeout_seconds: float | None, *, timed_out: bool) -> int:
        timeout = timeout_seconds if timeout_seconds and timeout_seconds > 0 else None
        if not _wait_leader(run, 0.0 if timed_out else timeout):
            grace = self.kill_grace_seconds
            run.decide(Outcome.TIMED_OUT, f"timed out after {timeout:g} s", grace)
            run.signal_group(signal.SIGTERM)
            deadline = run.term_deadline or time.monotonic()
            if not _wait_leader(run, max(0.0, deadline - time.monotonic())):
                run.signal_group(signal.SIGKILL)
                _wait_leader(run, None)
        run.exited.set()
        if run.cause is not None:  # timed out or terminated: the rest of the group gets the
            deadline = run.term_deadline or time.monotonic()  # rest of the grace period
            if _wait_group(run.pgid, max(0.0, deadline - time.monotonic())):
                run.signal_group(signal.SIGKILL)
            return 0
        if not self.kill_leftovers or not _group_alive(run.pgid):
            return 0
        members = _group_members(run.pgid)
        if not members:
            return 0
        log.info(
            "run %s of job %r exited leaving %d process(es) in its group; terminating them",
            run.run_id, run.job_name, len(members),
        )
        _killpg(run.pgid, signal.SIGTERM)
        if _wait_group(run.pgid, self.kill_grace_seconds):
            _killpg(run.pgid, signal.SIGKILL)
        return len(members)

    def _terminate(self, runs: list[_Run], reason: str) -> None:
        grace = self.kill_grace_seconds
        for run in runs:
            run.decide(Outcome.KILLED, reason, grace)
            run.signal_group(signal.SIGTERM)
        for run in runs:
            deadline = run.term_deadline or time.monotonic()
            run.exited.wait(max(0.0, deadline - time.monotonic()))
        for run in runs:
            if not run.exited.is_set():
                run.signal_group(signal.SIGKILL)
        for run in runs:
            if not run.done.wait(grace + _TERMINATE_BOOKKEEPING_SECONDS):
                log.error("run %s of job %r did not end after SIGKILL", run.run_id, run.job_name)

    def _outcome(
        self, run: _Run, job: JobConfig, leftovers: int
    ) -> tuple[Outcome, int | None, int | None, str]:
        rc = run.proc.returncode
        exit_code = rc if rc >= 0 else None
        sig = -rc if rc < 0 else None
        grace = self.kill_grace_seconds
        if run.cause is Outcome.KILLED:
            return Outcome.KILLED, exit_code, sig or run.last_signal, run.reason
        if run.cause is Outcome.TIMED_OUT:
            how = (
                f"process group killed after the {grace:g} s grace period"
                if run.escalated
                else "process group terminated"
            )
            return Outcome.TIMED_OUT, exit_code, sig or run.last_signal, f"{run.reason}; {how}"
        note = ""
        if leftovers:
            what = "1 process" if leftovers == 1 else f"{leftovers} processes"
            note = (
                f"the command exited but left {what} running in its process group; "
                "terminated (detach with setsid to keep a process running)"
            )
        if rc == 0:
            return Outcome.SUCCEEDED, 0, None, note
        if sig is not None:
            message = f"ended by signal {_signal_name(sig)}"
        elif isinstance(job.command, str) and rc == 127:
            message = (
                "exit status 127: the shell reported the command not found (see stderr); "
                "check the command and PATH"
            )
        elif isinstance(job.command, str) and rc == 126:
            message = (
                "exit status 126: the shell found the command but could not run it "
                "(permission denied or not executable; see stderr)"
            )
        else:
            message = ""
        return Outcome.FAILED, exit_code, sig, "; ".join(m for m in (message, note) if m)

    def _env(
        self, job: JobConfig, run_id: int, scheduled_for: datetime | None
    ) -> tuple[dict[bytes, bytes], str]:
        """Base env, then the job's, then JOBFSM_*; as bytes, which Popen takes as they are."""
        env = self._base_envb.copy()  # bytes: Popen takes them as they are
        if not isinstance(job.env, Mapping):
            return env, f"env {job.env!r} is not a mapping of names to values"
        for key, value in job.env.items():
            if not isinstance(key, str) or not isinstance(value, str):
                return env, f"environment variable {key!r} must be a string with a string value"
            if not key or "=" in key or "\0" in key:
                return env, (
                    f"environment variable name {key!r} is invalid: "
                    "it must be non-empty without '=' or NUL"
                )
            if "\0" in value:
                return env, f"environment variable {key!r} contains a NUL character"
            env[os.fsencode(key)] = os.fsencode(value)
        env[b"JOBFSM_JOB"] = os.fsencode(job.name)
        env[b"JOBFSM_RUN_ID"] = str(run_id).encode()
        env[b"JOBFSM_NODE_PID"] = self._node_pid
        env[b"JOBFSM_SCHEDULED_FOR"] = (
            utc(scheduled_for).isoformat().encode() if scheduled_for else b""
        )
        return env, ""


# -- output tails ------------------------------------------------------------------------
def run_output_paths(log_dir: Path | str, job_name: str, run_id: int) -> tuple[Path, Path]:
    """Where an executor with ``log_dir`` writes the full stdout and stderr of a run (also
    while it runs: ``jobfsm logs --follow`` reads them there)."""
    stem = Path(log_dir) / "runs" / job_name / str(run_id)
    return stem.with_suffix(".out"), stem.with_suffix(".err")


def read_tail(path: str | Path, tail_bytes: int) -> str:
    """The output file as text, bounded: all of it up to ``2 * tail_bytes`` bytes, else the
    first and the last ``tail_bytes`` around an ``[... N bytes omitted ...]`` line.

    Decoded as UTF-8 with replacement characters; never reads more than ``2 * tail_bytes``.
    A missing file reads as empty; one that cannot be read (permissions, too many open files)
    reads as a line saying why, never an exception: the run's result must still be recorded.
    """
    try:  # plain descriptors, no file object: this runs once per stream of every run
        if os.stat(path).st_size == 0:  # most streams of most runs: one system call, not three
            return ""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"[output not readable: {exc.strerror or exc}]"
    try:
        size = os.fstat(fd).st_size
        if size <= 2 * tail_bytes:
            return os.read(fd, 2 * tail_bytes).decode("utf-8", errors="replace")
        head = os.pread(fd, tail_bytes, 0)
        tail = os.pread(fd, tail_bytes, size - tail_bytes)
    except OSError as exc:
        return f"[output not readable: {exc.strerror or exc}]"
    finally:
        os.close(fd)
    omitted = size - len(head) - len(tail)
    return (
        head.decode("utf-8", errors="replace")
        + OMITTED_MARKER.format(n=omitted)
        + tail.decode("utf-8", errors="replace")
    )


# -- starting ----------------------------------------------------------------------------
_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_OUTPUT_MODE = 0o600  # output may hold secrets: the owner only (the umask can only take more away)


def _open_outputs(paths: tuple[str, str]) -> tuple[int, int]:
    """Create (truncate) both output files as plain descriptors (no file objects: this is on
    the path of every start); make their folder only when it is missing. The caller closes."""
    try:
        out_fd = os.open(paths[0], _OUTPUT_FLAGS, _OUTPUT_MODE)
    except FileNotFoundError:  # the job's first run: make its folder (and runs/ if need be)
        folder = os.path.dirname(paths[0])
        try:
            os.mkdir(folder)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
        except FileExistsError:
            pass
        out_fd = os.open(paths[0], _OUTPUT_FLAGS, _OUTPUT_MODE)
    try:
        err_fd = os.open(paths[1], _OUTPUT_FLAGS, _OUTPUT_MODE)
    except OSError:
        os.close(out_fd)
        raise
    return out_fd, err_fd


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


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\0" in name:
        return f"job name {name!r} cannot name an output folder; use a valid job name"
    return ""


def _argv(command: object) -> tuple[list[str], str]:
    if isinstance(command, str):
        if "\0" in command:
            return [], f"command {command!r} contains a NUL character"
        return [SHELL, "-c", command], ""
    if isinstance(command, (list, tuple)):
        if not command:
            return [], "command is an empty list; give the program to run"
        for arg in command:
            if not isinstance(arg, str):
                return [], f"command argument {arg!r} is not a string"
            if "\0" in arg:
                return [], f"command argument {arg!r} contains a NUL character"
        return list(command), ""
    return [], f"command {command!r} is neither a string nor a list of strings"


def _explain(exc: BaseException, job: JobConfig, argv: list[str]) -> str:
    """A one-line reason why Popen failed, naming the directory or the program at fault."""
    cwd = job.working_directory
    program = argv[0] if argv else ""
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        about_cwd = exc.filename == cwd and not (exc.filename == program and os.path.isdir(cwd))
        if about_cwd:
            if isinstance(exc, FileNotFoundError):
                return f"working directory {cwd!r} does not exist"
            if isinstance(exc, NotADirectoryError):
                return f"working directory {cwd!r} is not a directory"
            if isinstance(exc, PermissionError):
                return f"permission denied entering working directory {cwd!r}"
            return f"cannot enter working directory {cwd!r}: {reason}"
        if isinstance(exc, FileNotFoundError):
            if "/" not in program:
                return (
                    f"command {program!r} not found on the PATH; "
                    "give its full path or set PATH in the job's env"
                )
            if os.path.exists(program):
                return f"cannot run {program!r}: the interpreter on its #! line was not found"
            return f"command {program!r} not found"
        if isinstance(exc, NotADirectoryError):
            return f"command {program!r} not found: a part of its path is not a directory"
        if isinstance(exc, PermissionError):
            return (
                f"permission denied running {program!r}; "
                "check that it is executable (chmod +x) and its folders are searchable"
            )
        if exc.errno == 8:  # ENOEXEC
            return (
                f"cannot run {program!r}: exec format error "
                "(a script without a #! line, or built for another machine?)"
            )
        return f"cannot run {program!r}: {reason}"
    return f"could not start {job.command_text!r}: {exc}"


# -- the reaper --------------------------------------------------------------------------
class _Reaper:
    """One thread that waits for every launched run at once: an ``epoll`` over their pidfds,
    a heap of their timeouts, and an eventfd that wakes it for a nearer timeout or to stop.

    It only notices; the executor decides (``on_exit`` when a run's command ended,
    ``on_timeout`` when its time is up). A run leaves the reaper before either is called,
    so each run is handled once.
    """

    def __init__(self, on_exit: Callable[[_Run], None], on_timeout: Callable[[_Run], None]) -> None:
        self._on_exit = on_exit
        self._on_timeout = on_timeout
        self._lock = threading.Lock()
        self._epoll = select.epoll()
        self._wakeup = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wakeup, select.EPOLLIN)
        self._watched: dict[int, tuple[_Run, int]] = {}
        """pidfd -> (run, key of its timeout or -1)."""
        self._timeouts: list[tuple[float, int]] = []
        """(deadline, key) of runs with a timeout; entries of runs gone are dropped lazily."""
        self._timed: dict[int, _Run] = {}
        """key -> run, for the runs still watched that have a timeout."""
        self._keys = itertools.count()
        self._closed = False
        self._paused = 0
        """How many pause() calls are not yet resumed."""
        self._pauses = 0
        """How many pause() calls there have been: a poll that spans one is discarded."""
        self._resumed = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._loop, name="jobfsm-reaper", daemon=True)
        self._thread.start()

    def watch(self, run: _Run) -> None:
        assert run.pidfd is not None
        wake = False
        with self._lock:
            key = -1
            if run.deadline is not None:
                key = next(self._keys)
                wake = not self._timeouts or run.deadline < self._timeouts[0][0]
                heapq.heappush(self._timeouts, (run.deadline, key))
                self._timed[key] = run
            self._watched[run.pidfd] = (run, key)
            self._epoll.register(run.pidfd, select.EPOLLIN)  # level-triggered: an exit already
        if wake:                                               # past is reported at once
            os.eventfd_write(self._wakeup, 1)

    def pause(self) -> None:
        with self._lock:
            self._paused += 1
            self._pauses += 1

    def resume(self) -> None:
        with self._lock:
            self._paused -= 1
            if not self._paused:
                self._resumed.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._resumed.notify_all()
        os.eventfd_write(self._wakeup, 1)
        self._thread.join(10)
        self._epoll.close()
        os.close(self._wakeup)

    def _take(self, fd: int) -> _Run | None:
        """Stop watching the run of ``fd`` (lock held)."""
        item = self._watched.pop(fd, None)
        if item is None:
            return None
        run, key = item
        self._epoll.unregister(fd)
        self._timed.pop(key, None)
        if len(self._timeouts) > 64 + 2 * len(self._timed):  # mostly stale: rebuild, so a long
            self._timeouts = [t for t in self._timeouts if t[1] in self._timed]  # timeout does
            heapq.heapify(self._timeouts)  # not keep an entry per finished run for its duration
        return run

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._paused and not self._closed:
                    self._resumed.wait()
                if self._closed:
                    return
                pauses = self._pauses
                wait = max(0.0, self._timeouts[0][0] - time.monotonic()) if self._timeouts else -1.0
            events = self._epoll.poll(wait)
            with self._lock:
                if self._closed:
                    return
                if self._pauses != pauses:  # paused meanwhile: another thread may have handled
                    continue  # these runs since, and their pidfd numbers may be new runs' now
                ended, expired = self._collect(events)
            self._handle(ended, expired)

    def poll_now(self) -> None:
        """Handle, on the calling thread and without waiting, the runs that have ended and the
        timeouts that have passed. For the thread that paused the reaper (a burst)."""
        events = self._epoll.poll(0)
        with self._lock:
            ended, expired = self._collect(events)
        self._handle(ended, expired)

    def _collect(self, events: list[tuple[int, int]]) -> tuple[list[_Run], list[_Run]]:
        """Take the runs of ``events`` and of passed timeouts out of the watch (lock held)."""
        ended: list[_Run] = []
        expired: list[_Run] = []
        for fd, _mask in events:
            if fd == self._wakeup:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wakeup)
            elif (run := self._take(fd)) is not None:
                ended.append(run)
        now = time.monotonic()
        while self._timeouts and self._timeouts[0][0] <= now:
            _, key = heapq.heappop(self._timeouts)
            timed = self._timed.get(key)
            if timed is not None and timed.pidfd is not None and self._take(timed.pidfd):
                expired.append(timed)
        return ended, expired

    def _handle(self, ended: list[_Run], expired: list[_Run]) -> None:
        for run in ended:
            _guarded(self._on_exit, run)
        for run in expired:
            _guarded(self._on_timeout, run)


def _guarded(handler: Callable[[_Run], None], run: _Run) -> None:
    """One run's trouble must not stop the reaper, which waits for every other run."""
    try:
        handler(run)
    except Exception:
        log.exception("the reaper failed on run %s of job %r; it goes on with the others",
                      run.run_id, run.job_name)


# -- process groups ----------------------------------------------------------------------
def _pidfd_open(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:  # ENOSYS on old kernels, ESRCH for a process already gone
        return None
    return fd


def _poll_ms(timeout: float | None) -> int | None:
    return None if timeout is None else max(0, math.ceil(timeout * 1000))


def _wait_leader(run: _Run, timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds (None: for ever) for the command; reap it; True if it ended."""
    if run.proc.returncode is not None:
        return True
    if run.pidfd is not None:
        poller = select.poll()
        poller.register(run.pidfd, select.POLLIN)
        if not poller.poll(_poll_ms(timeout)):
            return False
        run.proc.wait()
        return True
    try:
        run.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # a member changed its uid (setuid program); nothing we can do
        log.warning("not allowed to signal process group %s with %s", pgid, _signal_name(sig))


def _group_alive(pgid: int) -> bool:
    """True if any process (zombies included) is still in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes of a group, from /proc."""
    members: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and fields[0] not in (b"Z", b"X") and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _wait_group(pgid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the group's live processes to end; True if some remain."""
    if not _group_alive(pgid):
        return False
    members = _group_members(pgid)
    if not members:
        return False
    deadline = time.monotonic() + timeout
    fds: list[int] = []
    try:
        for pid in members:
            fd = _pidfd_open(pid)
            if fd is not None:
                fds.append(fd)
        if not hasattr(os, "pidfd_open"):
            # no pidfds on this platform: one bounded wait, then the caller escalates
            threading.Event().wait(timeout)
            return bool(_group_members(pgid))
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        pending = set(fds)
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for fd, _event in poller.poll(_poll_ms(remaining)):
                poller.unregister(fd)
                pending.discard(fd)
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    return bool(_group_members(pgid))


def _signal_name(sig: int) -> str:
    try:
        return f"{signal.Signals(sig).name} ({sig})"
    except ValueError:
        return str(sig)


# -- the processes of lost runs ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RunTag:
    """What every process of a run carries in its environment (see ``JobExecutor._env``)."""

    job: str
    run_id: int
    node_pid: int
    """The pid of the jobfsm process (daemon, or ``jobfsm run``) that started the run."""


@dataclass(frozen=True, slots=True)
class ProcessesEnded:
    """What :func:`end_run_processes` did to the processes of one run."""

    ended: int = 0
    """Processes that are gone now (on SIGTERM or SIGKILL)."""
    killed: int = 0
    """How many of all of them had to be sent SIGKILL."""
    left: int = 0
    """Processes still there a second after SIGKILL (stuck in the kernel), or not ours to signal."""


def end_run_processes(
    tags: Collection[RunTag], *, grace_seconds: float
) -> dict[RunTag, ProcessesEnded] | None:
    """End every process on this host whose environment names one of ``tags``: SIGTERM,
    ``grace_seconds`` for them to go, then SIGKILL to what is left (and to what they started
    meanwhile). None if this system cannot tell (no ``/proc`` or no pidfds); nothing is signalled then.

    Only for runs whose starting process is gone: a live daemon's runs carry its pid, and are
    never looked at. A process is signalled through a pidfd opened *before* its environment
    was read and checked to be still alive *after*, so a pid reused by another process in
    between is never signalled. Whatever group or session a process is in, its environment
    is inherited (``setsid`` does not shed it); a process started with a cleared environment
    (``env -i``) is not found.
    """
    wanted = set(tags)
    if not wanted:
        return {}
    if not os.path.isdir("/proc") or not _pidfds_work():
        return None
    found: dict[int, tuple[RunTag, int]] = {}
    killed: set[int] = set()
    try:
        _find_tagged(wanted, found)
        for _tag, fd in found.values():
            _pidfd_signal(fd, signal.SIGTERM)
        _wait_pidfds([fd for _tag, fd in found.values()], grace_seconds)
        for _round in range(3):  # they may have started others before they went
            _find_tagged(wanted, found)
            alive = [pid for pid, (_tag, fd) in found.items() if not _pidfd_exited(fd)]
            if not alive:
                break
            for pid in alive:
                _pidfd_signal(found[pid][1], signal.SIGKILL)
                killed.add(pid)
            _wait_pidfds([found[pid][1] for pid in alive], _KILLED_WAIT_SECONDS)
        ends = dict.fromkeys(wanted, ProcessesEnded())
        for pid, (tag, fd) in found.items():
            gone, was = _pidfd_exited(fd), ends[tag]
            ends[tag] = ProcessesEnded(was.ended + gone, was.killed + (pid in killed), was.left + (not gone))
    finally:
        for _tag, fd in found.values():
            os.close(fd)
    return ends


def _find_tagged(wanted: set[RunTag], found: dict[int, tuple[RunTag, int]]) -> None:
    """Add to ``found`` (pid -> (tag, pidfd)) the live processes named by one of ``wanted``."""
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or (pid := int(entry)) == me or pid in found:
            continue
        if _run_tag(pid) not in wanted:  # a cheap look first: most processes are not runs
            continue
        fd = _pidfd_open(pid)
        if fd is None:  # gone meanwhile
            continue
        # Read again now that the pidfd holds the process, and check it still lives: then what
        # was read is that process's, not a newcomer's that took over a freed pid.
        tag = _run_tag(pid)
        if tag in wanted and not _pidfd_exited(fd):
            assert tag is not None
            found[pid] = (tag, fd)
        else:
            os.close(fd)


def _run_tag(pid: int) -> RunTag | None:
    """The run named by the environment a process was started with, if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:  # gone, or another user's (and then not ours to signal either)
        return None
    if b"JOBFSM_NODE_PID=" not in environ:
        return None
    values: dict[bytes, bytes] = {}
    for item in environ.split(b"\0"):
        if item.startswith(b"JOBFSM_"):
            key, _, value = item.partition(b"=")
            values.setdefault(key, value)  # the first one, as getenv() sees it
    try:
        return RunTag(
            os.fsdecode(values[b"JOBFSM_JOB"]), int(values[b"JOBFSM_RUN_ID"]), int(values[b"JOBFSM_NODE_PID"])
        )
    except (KeyError, ValueError):
        return None


def _pidfds_work() -> bool:
    fd = _pidfd_open(os.getpid())
    if fd is None or not hasattr(signal, "pidfd_send_signal"):
        return False
    os.close(fd)
    return True


def _pidfd_signal(fd: int, sig: int) -> None:
    try:
        signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        log.warning("not allowed to signal a process of a lost run with %s", _signal_name(sig))


def _pidfd_exited(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _wait_pidfds(fds: list[int], timeout: float) -> None:
    """Until every one of these processes has exited, or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    pending = set(fds)
    for fd in fds:
        poller.register(fd, select.POLLIN)
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        for fd, _event in poller.poll(_poll_ms(remaining)):
            poller.unregister(fd)
            pending.discard(fd)
