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
  and shares one grace period, so shutdown takes one grace, not one per run. A run whose
  ``Popen`` is in progress at that very moment is registered just after and is not
  signalled; the daemon stops starting runs before it terminates them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from jobfsm.clock import Clock, SystemClock, utc
from jobfsm.model import JobConfig, Outcome

log = logging.getLogger(__name__)

SHELL = "/bin/sh"
OMITTED_MARKER = "\n[... {n} bytes omitted ...]\n"
"""Placed between the head and the tail of an output longer than twice the tail size."""

_TERMINATE_BOOKKEEPING_SECONDS = 30.0
"""How long terminate() waits, after SIGKILL, for the executing thread to record the run."""


@dataclass(frozen=True)
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

    def finish_fields(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`jobfsm.store.Store.finish_run` that record this
        result (one mapping, used by the daemon and by a local ``jobfsm run`` alike)."""
        return {
            "outcome": self.status, "ended_at": self.end_time, "exit_code": self.exit_code,
            "duration_seconds": self.duration_seconds, "signal": self.signal,
            "message": self.message, "stdout_tail": self.stdout, "stderr_tail": self.stderr,
            "stdout_path": self.stdout_path, "stderr_path": self.stderr_path,
        }


@dataclass(eq=False)
class _Run:
    """A run in progress: what terminate() and the executing thread share."""

    run_id: int
    job_name: str
    proc: subprocess.Popen[bytes]
    pidfd: int | None
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
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the leader's pid is the group's id

    def decide(self, cause: Outcome, reason: str, grace: float) -> None:
        with self.lock:
            if self.cause is None:
                self.cause = cause
                self.reason = reason
            if self.term_deadline is None:
                self.term_deadline = time.monotonic() + grace

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
        self._lock = threading.Lock()
        self._runs: dict[int, _Run] = {}

    # -- public --------------------------------------------------------------------------
    def output_paths(self, job_name: str, run_id: int) -> tuple[Path, Path]:
        """Where the full stdout and stderr of a run are written."""
        folder = self.log_dir / "runs" / job_name
        return folder / f"{run_id}.out", folder / f"{run_id}.err"

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
        """Stop every run, all sharing one grace period (used at shutdown)."""
        with self._lock:
            runs = list(self._runs.values())
        if runs:
            log.info("terminating %d running job(s): %s", len(runs), reason)
            self._terminate(runs, reason)

    def execute(
        self, job: JobConfig, run_id: int, *, scheduled_for: datetime | None = None
    ) -> JobResult:
        """Run ``job`` to its end and say how it went. Never raises for the job's problems."""
        start_time = self._clock.now()
        t0 = self._clock.monotonic()

        def not_started(message: str, paths: tuple[Path, Path] | None = None) -> JobResult:
            log.warning("run %s of job %r could not start: %s", run_id, job.name, message)
            return JobResult(
                job_name=job.name,
                run_id=run_id,
                start_time=start_time,
                end_time=self._clock.now(),
                exit_code=None,
                stdout="",
                stderr="",
                duration_seconds=max(0.0, self._clock.monotonic() - t0),
                status=Outcome.NOT_STARTED,
                signal=None,
                message=message,
                stdout_path=str(paths[0]) if paths else None,
                stderr_path=str(paths[1]) if paths else None,
            )

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

        paths = self.output_paths(job.name, run_id)
        try:
            out_f, err_f = _open_outputs(paths)
        except OSError as exc:
            where = exc.filename or str(paths[0])
            return not_started(f"cannot write output file {where!r}: {exc.strerror or exc}")
        try:
            with out_f, err_f:
                proc = subprocess.Popen(
                    argv,
                    cwd=job.working_directory,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out_f,
                    stderr=err_f,
                    start_new_session=True,
                    close_fds=True,
                )
        except Exception as exc:  # anything at Popen is the job's problem, never ours to raise
            return not_started(_explain(exc, job, argv), paths)

        run = _Run(run_id=run_id, job_name=job.name, proc=proc, pidfd=_pidfd_open(proc.pid))
        with self._lock:
            self._runs[run_id] = run
        log.debug("run %s of job %r started: pid %s", run_id, job.name, proc.pid)
        try:
            leftovers = self._supervise(run, job.timeout_seconds)
        finally:
            with self._lock:
                self._runs.pop(run_id, None)
            if run.pidfd is not None:
                os.close(run.pidfd)
            run.exited.set()
            run.done.set()
        end_time = self._clock.now()
        duration = max(0.0, self._clock.monotonic() - t0)
        status, exit_code, sig, message = self._outcome(run, job, leftovers)
        log.debug("run %s of job %r ended: %s %s", run_id, job.name, status.value, message)
        return JobResult(
            job_name=job.name,
            run_id=run_id,
            start_time=start_time,
            end_time=end_time,
            exit_code=exit_code,
            stdout=read_tail(paths[0], self.tail_bytes),
            stderr=read_tail(paths[1], self.tail_bytes),
            duration_seconds=duration,
            status=status,
            signal=sig,
            message=message,
            stdout_path=str(paths[0]),
            stderr_path=str(paths[1]),
        )

    # -- supervision ---------------------------------------------------------------------
    def _supervise(self, run: _Run, timeout_seconds: float | None) -> int:
        """Wait for the run to end, enforce the timeout, clean its group; return leftovers killed."""
        timeout = timeout_seconds if timeout_seconds and timeout_seconds > 0 else None
        if not _wait_leader(run, timeout):
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
        if self._base_env is os.environ and os.supports_bytes_environ:
            env = dict(os.environb)  # no decode here and re-encode in Popen for every variable
        else:
            env = {os.fsencode(k): os.fsencode(v) for k, v in self._base_env.items()}
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
        env[b"JOBFSM_SCHEDULED_FOR"] = (
            utc(scheduled_for).isoformat().encode() if scheduled_for else b""
        )
        return env, ""


# -- output tails ------------------------------------------------------------------------
def read_tail(path: Path, tail_bytes: int) -> str:
    """The output file as text, bounded: all of it up to ``2 * tail_bytes`` bytes, else the
    first and the last ``tail_bytes`` around an ``[... N bytes omitted ...]`` line.

    Decoded as UTF-8 with replacement characters; never reads more than ``2 * tail_bytes``.
    A missing file reads as empty.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return ""
    with f:
        size = os.fstat(f.fileno()).st_size
        if size <= 2 * tail_bytes:
            data = f.read(2 * tail_bytes)
            return data.decode("utf-8", errors="replace")
        head = f.read(tail_bytes)
        f.seek(size - tail_bytes)
        tail = f.read(tail_bytes)
    omitted = size - len(head) - len(tail)
    return (
        head.decode("utf-8", errors="replace")
        + OMITTED_MARKER.format(n=omitted)
        + tail.decode("utf-8", errors="replace")
    )


# -- starting ----------------------------------------------------------------------------
def _open_outputs(paths: tuple[Path, Path]) -> tuple[BinaryIO, BinaryIO]:
    """Create (truncate) both output files; make their folder only when it is missing."""
    try:
        out_f = open(paths[0], "wb")  # noqa: SIM115 - the caller closes both
    except FileNotFoundError:
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        out_f = open(paths[0], "wb")  # noqa: SIM115
    try:
        err_f = open(paths[1], "wb")  # noqa: SIM115
    except OSError:
        out_f.close()
        raise
    return out_f, err_f


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
