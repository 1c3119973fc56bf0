"""How the daemon stops: no new fires, running jobs get the grace period, and the grace
includes killing what is left (SIGTERM ``SHUTDOWN_SIGTERM_SECONDS`` before its end, SIGKILL at
its end; a second signal means SIGKILL at once), so it bounds the whole stop."""

from __future__ import annotations

import threading
from enum import Enum
from typing import TYPE_CHECKING

from jobfsm.errors import StoreError

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler

SHUTDOWN_SIGTERM_SECONDS = 5.0
"""At shutdown, what still runs this long before the end of the grace period (at most half-way
through it) gets SIGTERM; SIGKILL comes at its end. The grace bounds the whole stop."""
SHUTDOWN_BOOKKEEPING_SECONDS = 2.0
"""After SIGKILL, how long shutdown waits at most for the runs to be reaped and recorded (it
takes milliseconds unless a process is stuck in the kernel, where SIGKILL cannot reach it)."""


def shut_down(scheduler: Scheduler, *, grace_seconds: float, kill_now: threading.Event | None = None) -> None:
    """Stop firing; let running jobs finish within the grace period, record them, close.

    What still runs ``SHUTDOWN_SIGTERM_SECONDS`` before the end of the grace (at most half-way)
    gets SIGTERM to its process group, what is still there at its end SIGKILL, and a second
    signal (``kill_now``) means SIGKILL at once, whenever it comes. Then at most
    ``SHUTDOWN_BOOKKEEPING_SECONDS`` go to recording the killed runs. Results the store cannot
    take by the end are kept in the logs folder for the next start. The loop keeps the clock
    and waits on ``wake``, which results and signals both set.
    """

    scheduler.stopping = True
    grace = max(grace_seconds, 0.0)
    step = min(SHUTDOWN_SIGTERM_SECONDS, grace / 2)
    start = scheduler.clock.monotonic()
    term_at, kill_at = start + grace - step, start + grace
    phase, give_up_at, kill_again_at = _Stopping.WAITING, kill_at, kill_at
    kill_reason = ""
    while True:
        scheduler.probe_store()
        scheduler.apply_results()
        if not scheduler.running_count():
            break
        now = scheduler.clock.monotonic()
        if phase is not _Stopping.KILLED and ((kill_now is not None and kill_now.is_set()) or now >= kill_at):
            kill_reason = _kill_reason(grace, step, second_signal=now < kill_at)
            phase, give_up_at, kill_again_at = _Stopping.KILLED, now + SHUTDOWN_BOOKKEEPING_SECONDS, now
            scheduler.logger.info(f"shutdown: SIGKILL to the process groups of {len(scheduler.in_flight)} run(s) "
                              f"({'a second signal' if now < kill_at else 'end of the grace period'})")
        elif phase is _Stopping.WAITING and now >= term_at:
            phase = _Stopping.TERMINATED
            scheduler.logger.info(f"shutdown: SIGTERM to the process groups of {len(scheduler.in_flight)} run(s), "
                              f"SIGKILL in {kill_at - now:.3g} s")
            scheduler.runner.terminate_all(reason=_term_reason(grace, step), grace_seconds=kill_at - now)
        if phase is _Stopping.KILLED:
            if now >= give_up_at:
                for ticket, _model in scheduler.in_flight.values():
                    scheduler.logger.error(
                        f"run {ticket.run_id} of job {ticket.job.name!r} did not end within "
                        f"{SHUTDOWN_BOOKKEEPING_SECONDS:g} s of SIGKILL; it stays running in the store, "
                        "and the next start ends what is left of it and marks it lost"
                    )
                break
            if now >= kill_again_at:  # again, for a run whose start was under way the first time
                scheduler.runner.kill_all(reason=kill_reason)
                kill_again_at = now + 0.5
        until = {_Stopping.WAITING: term_at, _Stopping.TERMINATED: kill_at}.get(phase, kill_again_at)
        # Results and signals set wake; the second's cap is only a safety net.
        scheduler.clock.wait(scheduler.wake, max(0.0, min(until, give_up_at, now + 1.0) - now))
        scheduler.wake.clear()
    scheduler.runner.close()
    scheduler.probe_store(force=True)
    scheduler.apply_results()
    if scheduler.outage is not None:
        scheduler.spool_unrecorded()
    scheduler.close_folder()
    try:
        scheduler.store.remove_node(scheduler.node)
    except StoreError as exc:
        scheduler.logger.error(f"cannot remove this node from the store at shutdown: {exc}", component="store")


class _Stopping(Enum):
    """Where a shutdown is."""

    WAITING = "waiting"
    """Runs may finish by themselves."""
    TERMINATED = "terminated"
    """SIGTERM sent to what was still running."""
    KILLED = "killed"
    """SIGKILL sent; only their recording is waited for."""


def _term_reason(grace: float, step: float) -> str:
    return f"killed at daemon shutdown after the {grace:g} s grace period (SIGTERM {step:.3g} s before its end)"


def _kill_reason(grace: float, step: float, *, second_signal: bool) -> str:
    if second_signal:
        return "killed at daemon shutdown: a second signal asked to stop at once (SIGKILL)"
    if step <= 0:
        return f"killed at daemon shutdown after the {grace:g} s grace period (SIGKILL)"
    return f"killed at daemon shutdown after the {grace:g} s grace period (SIGTERM {step:.3g} s before its end, then SIGKILL)"
