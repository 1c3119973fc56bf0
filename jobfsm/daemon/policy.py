"""The scheduling policies, as answers: for a fire or a trigger, run, skip (with the reason) or
queue; whether a waiting start may begin; when a retry is due; which late or missed fires run.

Decisions only, no mechanism: nothing here touches the store, a process or the clock. The
scheduler asks; so does the service's local run, through the same scheduler. "Running" is a
count given by the caller (on one node its runs in flight; with several nodes, what the store
says runs anywhere), so the answers do not change with the deployment.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from jobfsm import cron
from jobfsm.model import CatchUp, JobConfig, Overlap, Trigger
from jobfsm.store.control import Pause

MAX_CATCH_UP = 100
"""At most this many missed fires of one job are caught up (``catch_up: all``) or recorded."""
MAX_FIRES_SCANNED = 200_000
"""A late job's missed fires are counted up to this many (a year of a job every few minutes)."""


@dataclass(frozen=True, slots=True)
class Start:
    """A run that should begin as soon as the job's overlap policy lets it."""

    trigger: Trigger
    scheduled_for: datetime | None = None
    attempt: int = 0
    user: str | None = None
    request_id: int | None = None
    run_id: int | None = None
    """Set once the start is recorded in the store as a waiting (``skipped``) run."""


class Verdict(Enum):
    RUN = "run"
    """Claim it and start it now."""
    SKIP = "skip"
    """Record it as a skipped run, with the reason."""
    QUEUE = "queue"
    """Record it as waiting (a ``skipped`` run saying so); it starts when the job is free."""
    IGNORE = "ignore"
    """Nothing to record: a fire of a disabled job simply does not happen."""


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str = ""


def decide(
    config: JobConfig,
    start: Start,
    *,
    enabled: bool,
    running: int,
    running_ids: str = "?",
    fire_waiting: bool = False,
    paused: str | None = None,
) -> Decision:
    """What to do with ``start`` for a job that is ``enabled`` (and not being disabled) and has
    ``running`` runs going (``running_ids`` names them for the reason); ``fire_waiting``: a
    scheduled fire already waits for the job; ``paused``: the job is paused, and why
    (:func:`pause_reason`): every start is skipped, saying so, whatever its trigger."""
    if not enabled:
        if start.trigger is Trigger.MANUAL:
            return Decision(Verdict.SKIP, f"job {config.name!r} is disabled; enable it before triggering it")
        return Decision(Verdict.IGNORE)
    if paused is not None:
        return Decision(Verdict.SKIP, paused)
    if not running or config.overlap is Overlap.ALLOW:
        return Decision(Verdict.RUN)
    if config.overlap is Overlap.SKIP and start.trigger in (Trigger.SCHEDULE, Trigger.MANUAL):
        return Decision(Verdict.SKIP, f"run {running_ids} still running (overlap: skip)")
    if start.trigger is Trigger.SCHEDULE and fire_waiting:
        return Decision(Verdict.SKIP, f"run {running_ids} still running and a fire already waits (overlap: queue)")
    # queue, and every catch-up, retry or (under queue) manual start: they wait their turn.
    return Decision(Verdict.QUEUE, f"queued behind run {running_ids}; if it never started, "
                                   "the daemon stopped before its turn")


def is_plain(config: JobConfig, start: Start, *, enabled: bool, running: int, paused: bool = False) -> bool:
    """Would :func:`decide` say RUN for this keyed fire, with nothing recorded for it yet? (Such
    fires are claimed many at a time.)"""
    return (
        start.scheduled_for is not None and start.run_id is None and start.request_id is None
        and enabled and not paused and (not running or config.overlap is Overlap.ALLOW)
    )


def may_start_waiting(config: JobConfig, *, running: int, paused: bool = False) -> bool:
    """May a waiting start of the job begin now? Not while it is paused: starts that were
    waiting before the pause wait on and begin when it ends."""
    return not paused and (not running or config.overlap is Overlap.ALLOW)


PAUSED_PREFIX = "paused"
"""Every skip because of a pause has a reason starting with this word (:func:`is_pause_skip`):
a paused fire was meant not to run, so it is not a *missed* fire (notifications tell them apart)."""


def pause_reason(pause: Pause | None, now: datetime) -> str | None:
    """Why a start of a paused job is skipped now, or None when the job is not paused at ``now``
    (no pause, or one that ended by itself at its ``until``)."""
    if pause is None or not pause.active(now):
        return None
    until = f"until {pause.until.isoformat()}" if pause.until is not None else "until resumed"
    why = f": {pause.reason}" if pause.reason else ""
    return f"{PAUSED_PREFIX} by {pause.user} {until}{why}"


def is_pause_skip(reason: str) -> bool:
    """Whether a skipped run's message says it was skipped because its job was paused."""
    return reason.startswith(PAUSED_PREFIX + " by ")


def retry_due(config: JobConfig, *, attempt: int, succeeded: bool, enabled: bool, now: datetime) -> datetime | None:
    """When the next attempt of a run that just ended is due, or None when there is none."""
    if succeeded or not enabled or attempt >= config.retries:
        return None
    return now + timedelta(seconds=config.retry_delay_seconds)


def newest_fires(config: JobConfig, after: datetime, until: datetime) -> tuple[list[datetime], int]:
    """The newest ``MAX_CATCH_UP`` fires ``f`` of ``config`` with ``after < f <= until``, oldest
    first, and how many there are (counted up to ``MAX_FIRES_SCANNED``)."""
    newest: deque[datetime] = deque(maxlen=MAX_CATCH_UP)
    count = 0
    for fire in cron.iter_fires(config.schedule, config.timezone, after):
        if fire.at > until or count >= MAX_FIRES_SCANNED:
            break
        newest.append(fire.at)
        count += 1
    return list(newest), count


_LOOK_BACK = (timedelta(hours=1), timedelta(days=1), timedelta(days=31), timedelta(days=366))
"""How far back from now the newest missed fires are looked for, in turn, before from the last fire."""


@dataclass(frozen=True, slots=True)
class Missed:
    """Fires missed while the daemon was down: which run, and one record for the rest."""

    run: list[datetime]
    """Caught up (trigger ``catch_up``), oldest first."""
    record: datetime | None
    """The newest fire not run: recorded as skipped, its message summing up all that were not
    (so the next start counts from there, and the history says what was missed)."""
    first: datetime
    """The first fire missed."""
    count: int | None
    """How many were missed, when counted (None: more than a year's worth to count)."""


def catch_up(config: JobConfig, last: datetime, now: datetime) -> Missed | None:
    """The fires of ``config`` after its last recorded fire ``last`` and before ``now`` (the
    daemon was down), and what its ``catch_up`` does with them: ``none`` runs none, ``latest``
    the newest, ``all`` each (the newest ``MAX_CATCH_UP``). Only the newest fires are looked
    for, however long the downtime: a start-up after a month stays quick."""
    first = cron.next_fire(config.schedule, config.timezone, last)
    if first >= now:
        return None
    want = MAX_CATCH_UP if config.catch_up is CatchUp.ALL else 2
    until = now - timedelta(microseconds=1)
    for back in (*_LOOK_BACK, None):
        start = last if back is None else max(last, now - back)
        fires = cron.fires_between(config.schedule, config.timezone, start, until)
        if len(fires) >= want or start == last:
            break
    counted = len(fires) if start == last else None
    if config.catch_up is CatchUp.NONE:
        return Missed([], fires[-1], first, counted)
    chosen = fires[-1:] if config.catch_up is CatchUp.LATEST else fires[-MAX_CATCH_UP:]
    rest = fires[: len(fires) - len(chosen)]
    return Missed(chosen, rest[-1] if rest else None, first, counted)


@dataclass(frozen=True, slots=True)
class LateFires:
    """What a loop that comes late to a job's fire does: these start, these are recorded as
    skipped (each with the reason), and how many fires were due in all."""

    starts: list[Start]
    skips: list[tuple[Start, str]]
    due: int


def late_fires(config: JobConfig, fire: datetime, now: datetime, *, why: str | None) -> LateFires:
    """The loop comes late to ``fire`` (the host was suspended or overloaded, the store was
    unavailable, the wall clock was stepped forward), and more fires of the job may be due by
    ``now``. The newest runs (with ``catch_up: all``, each of them, oldest first); the older ones
    follow ``catch_up``: recorded as skipped, saying ``why`` (or how late the loop was)."""
    later, count = newest_fires(config, fire, now)
    if not later:
        return LateFires([Start(Trigger.SCHEDULE, scheduled_for=fire)], [], 1)
    fires = [fire, *later][-MAX_CATCH_UP:]
    if config.catch_up is CatchUp.ALL:
        return LateFires([Start(Trigger.CATCH_UP, scheduled_for=f) for f in fires], [], count + 1)
    reason = why or f"the daemon was {(now - fire).total_seconds():.0f} s late (suspended or overloaded)"
    newest = fires[-1]
    skips = [
        (Start(Trigger.SCHEDULE, scheduled_for=f),
         f"missed: {reason}; the fire of {newest.isoformat()} ran instead (catch_up: {config.catch_up.value})")
        for f in fires[:-1]
    ]
    return LateFires([Start(Trigger.SCHEDULE, scheduled_for=newest)], skips, count + 1)
