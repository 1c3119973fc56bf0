"""A run watched to its end: its timeout, the grace period, its leftovers, and what its end means.

- **One process group per run** (``start_new_session=True``). A timeout or a shutdown signals
  the whole group: SIGTERM, ``grace`` seconds, then SIGKILL, so grandchildren
  (``sh -c 'a & b'``) die too.
- **Leftovers are killed after a normal exit too** (``kill_leftovers=True``, the executor's
  default). Cron leaves background processes of a finished job running; we don't, as systemd's
  ``KillMode=control-group`` doesn't: a stray ``cmd &`` would otherwise keep writing to the
  run's output file after its tails were read, escape the timeout, and pile up one copy per
  run while the job's overlap policy believes nothing is running. The result keeps the
  command's own status and says in its message that leftovers were terminated. A job that
  means to leave a daemon behind detaches it properly (``setsid mydaemon``, which leaves our
  group), or the executor is built with ``kill_leftovers=False``.
- **Timeouts and grace periods use the real monotonic clock**, because the processes they
  govern live in real time (a fake clock must not make SIGKILL come early or never).
"""

from __future__ import annotations

import logging
import select
import signal
import subprocess
import time

from jobfsm.model import JobConfig, Outcome
from jobfsm.runs.active import ActiveRun
from jobfsm.runs.groups import group_alive, group_members, killpg, poll_ms, signal_name, wait_group

log = logging.getLogger(__name__)

_TERMINATE_BOOKKEEPING_SECONDS = 30.0
"""How long terminate_runs() waits, after SIGKILL, for the executing thread to record the run."""


def wait_leader(run: ActiveRun, timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds (None: for ever) for the command; reap it; True if it ended."""
    if run.proc.returncode is not None:
        return True
    if run.pidfd is not None:
        poller = select.poll()
        poller.register(run.pidfd, select.POLLIN)
        if not poller.poll(poll_ms(timeout)):
            return False
        run.proc.wait()
        return True
    try:
        run.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def supervise_group(run: ActiveRun, grace: float, kill_leftovers: bool, *, timed_out: bool) -> int:
    """Wait for the run to end, enforce its timeout, clean its group; return how many leftovers
    were killed. ``timed_out``: the reaper saw the timeout pass already."""
    timeout_seconds = run.job.timeout_seconds
    timeout = timeout_seconds if timeout_seconds and timeout_seconds > 0 else None
    if not wait_leader(run, 0.0 if timed_out else timeout):
        run.decide(Outcome.TIMED_OUT, f"timed out after {timeout:g} s", grace)
        run.signal_group(signal.SIGTERM)
        deadline = run.term_deadline or time.monotonic()
        if not wait_leader(run, max(0.0, deadline - time.monotonic())):
            run.signal_group(signal.SIGKILL)
            wait_leader(run, None)
    run.exited.set()
    if run.cause is not None:  # timed out or terminated: the rest of the group gets the
        deadline = run.term_deadline or time.monotonic()  # rest of the grace period
        if wait_group(run.pgid, max(0.0, deadline - time.monotonic())):
            run.signal_group(signal.SIGKILL)
        return 0
    if not kill_leftovers or not group_alive(run.pgid):
        return 0
    members = group_members(run.pgid)
    if not members:
        return 0
    log.info(
        "run %s of job %r exited leaving %d process(es) in its group; terminating them",
        run.run_id, run.job_name, len(members),
    )
    killpg(run.pgid, signal.SIGTERM)
    if wait_group(run.pgid, grace):
        killpg(run.pgid, signal.SIGKILL)
    return len(members)


def terminate_runs(runs: list[ActiveRun], reason: str, grace: float) -> None:
    """SIGTERM to every run's group, one shared grace period, SIGKILL to the commands still
    there, then wait for the executing threads to record the runs."""
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


def outcome(
    run: ActiveRun, job: JobConfig, leftovers: int, grace: float
) -> tuple[Outcome, int | None, int | None, str]:
    """(status, exit code, signal, message) of a run whose command has been reaped."""
    rc = run.proc.returncode
    exit_code = rc if rc >= 0 else None
    sig = -rc if rc < 0 else None
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
        message = f"ended by signal {signal_name(sig)}"
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
