"""Starting what is due: each fire at its time, retries at theirs, the fires missed while the
daemon was down (``catch_up``), and the fires the loop itself came to late (the host was
suspended or overloaded, the store failed, the wall clock was stepped), which are recorded as
skipped with the reason, never dropped silently.

Dispatch first, compute later: :meth:`Dispatch.due` starts every due run before it computes
any next fire, so computing next fires never delays a start.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from jobfsm.daemon import policy
from jobfsm.daemon.jobset import JobEntry
from jobfsm.daemon.policy import Start
from jobfsm.errors import StoreError
from jobfsm.model import Trigger

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler

SKIP_CHUNK = 1000
"""Skipped fires (a late loop, a store outage, a clock step) are recorded this many at a time."""
CLOCK_JUMP_SECONDS = 2.0
"""A wall clock that moved this much more or less than the monotonic clock was stepped."""
_JUST_BEFORE = timedelta(microseconds=1)

Handled = list[tuple[JobEntry, datetime]]
"""The jobs whose fire was handled, each with the time to compute its next fire after."""


class Dispatch:
    """Starts one scheduler's due fires and retries. Loop thread only."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self.clock = scheduler.clock
        self.logger = scheduler.logger
        self.late_reason: str | None = None
        """Why the loop is late, when it knows (a store outage, a clock step), for skipped fires."""
        self._seen: tuple[float, float] | None = None
        """(wall timestamp, monotonic) when the loop last looked: a step of the wall clock shows."""

    def looked(self, now: datetime) -> None:
        """The loop looks at the clocks from ``now`` on (start-up)."""
        self._seen = (now.timestamp(), self.clock.monotonic())

    def due(self) -> int:
        """Start every run that is due now; returns how many jobs' fires were handled."""
        scheduler = self._scheduler
        now = self.clock.now()
        self._notice_clock(now)
        if not scheduler.stopping and scheduler.outage is None and scheduler.control.next_end() is not None:
            scheduler.control.expire(now)
        stamp = now.timestamp()
        if (scheduler.stopping or scheduler.outage is not None
                or not (scheduler.agenda.due(stamp) or scheduler.retries.due(stamp))):
            return 0
        with scheduler.burst.starts():
            handled = self._start_due(now)
        for entry, after in handled:  # next fires only after every due run was started
            scheduler.agenda.reschedule(entry, after)
        self.late_reason = None
        return len(handled)

    def _start_due(self, now: datetime) -> Handled:
        """Claim and start the fires and retries due at ``now``: the jobs whose fire it was, each
        with the time to compute its next fire after. When the store fails part way, the jobs
        and retries it did not record go back where they were, to be tried when it is back."""
        scheduler = self._scheduler
        handled: Handled = []
        work: list[tuple[JobEntry, Start]] = []
        skips: list[tuple[JobEntry, Start, str]] = []
        try:
            self._take_due(now, handled, work, skips)
        except StoreError as exc:  # the first fire: nothing else was taken from the heap yet
            scheduler.agenda.put_back([entry for entry, _ in handled[-1:]])
            scheduler.store_failed(exc)
            return handled[:-1]
        done = skipped = 0
        try:
            for first, end in scheduler.burst.chunks(len(work)):  # one store transaction per chunk
                with scheduler.transactions.batched():
                    scheduler.claims.fire_many(work[first:end])
                done = end
            while skipped < len(skips):  # after every start: the starts matter more
                with scheduler.transactions.batched():
                    scheduler.claims.skip_many(skips[skipped : skipped + SKIP_CHUNK])
                skipped = min(skipped + SKIP_CHUNK, len(skips))
        except StoreError as exc:
            pending = {id(entry) for entry, _ in work[done:]} | {id(entry) for entry, _, _ in skips[skipped:]}
            retries = [(entry, start) for entry, start in work[done:] if start.trigger is Trigger.RETRY]
            scheduler.agenda.put_back([entry for entry, _ in handled if id(entry) in pending])
            scheduler.retries.put_back(retries)
            scheduler.store_failed(exc)
            return [(entry, when) for entry, when in handled if id(entry) not in pending]
        return handled

    def _take_due(self, now: datetime, handled: Handled, work: list[tuple[JobEntry, Start]],
                  skips: list[tuple[JobEntry, Start, str]]) -> None:
        """Take the due fires and retries from their heaps into ``handled``, ``work`` and
        ``skips``; the first run of the burst starts at once, before the rest is sorted out."""
        scheduler = self._scheduler
        stamp = now.timestamp()
        first_started = False
        for entry, fire in scheduler.agenda.pop_due(stamp):
            if now - fire < timedelta(seconds=1 + entry.delay):
                starts, late = [Start(Trigger.SCHEDULE, scheduled_for=fire)], list[tuple[JobEntry, Start, str]]()
                after = max(fire, now - _JUST_BEFORE)
            else:
                starts, late = self.late_fires(entry, fire, now)
                after = now
            handled.append((entry, after))  # before the first fire: a store failure puts it back
            if not first_started and not late and starts:  # the first run of a burst starts before the rest is sorted out
                first_started = True
                with scheduler.transactions.batched():
                    scheduler.claims.fire_many([(entry, starts[0])])
                starts = starts[1:]  # a late job with catch_up: all has more
            work.extend((entry, start) for start in starts)
            skips.extend(late)
        work.extend(scheduler.retries.pop_due(stamp))

    def late_fires(self, entry: JobEntry, fire: datetime, now: datetime) -> tuple[list[Start], list[tuple[JobEntry, Start, str]]]:
        """The policy's answer for a job the loop comes to late (:func:`policy.late_fires`)."""
        late = policy.late_fires(entry.config, fire, now, why=self.late_reason)
        if late.due > len(late.starts) + len(late.skips):
            self.logger.info(
                f"job {entry.config.name!r}: {late.due} fires were due while "
                f"{self.late_reason or 'the daemon was late'}; recording the newest "
                f"{len(late.starts) + len(late.skips)}", component="scheduler",
            )
        return late.starts, [(entry, start, reason) for start, reason in late.skips]

    def catch_up(self, entry: JobEntry, now: datetime, last: datetime | None) -> None:
        """Fires missed while the daemon was down, after the job's last recorded fire ``last``:
        run per ``catch_up``, and one skipped record that says what was not."""
        config = entry.config
        missed = policy.catch_up(config, last, now) if last is not None else None
        if missed is None:
            return
        how_many = f"{missed.count}" if missed.count is not None else "more than a year of"
        self.logger.info(
            f"job {config.name!r}: {how_many} fire(s) missed while the daemon was down, from "
            f"{missed.first.isoformat()}; catching up {len(missed.run)} (catch_up: {config.catch_up.value})",
            component="scheduler",
        )
        claims = self._scheduler.claims
        with self._scheduler.transactions.batched():
            if missed.record is not None:
                skipped = (missed.count or 0) - len(missed.run)
                what = f"{skipped} fire(s)" if missed.count is not None else "fires"
                claims.skip_many([(entry, Start(Trigger.SCHEDULE, scheduled_for=missed.record),
                                   f"missed while the daemon was down: {what} from {missed.first.isoformat()} "
                                   f"to {missed.record.isoformat()} did not run (catch_up: {config.catch_up.value})")])
            for fire in missed.run:
                claims.fire(entry, Start(Trigger.CATCH_UP, scheduled_for=fire))

    def _notice_clock(self, now: datetime) -> None:
        """Compare how far the wall clock and the monotonic clock moved since the last look: a
        step of the wall clock (an operator, a bad NTP start) is logged, retries keep their delay
        (a duration, not a time), and fires it jumped over are recorded as skipped, saying so."""
        mono, wall = self.clock.monotonic(), now.timestamp()
        seen, self._seen = self._seen, (wall, mono)
        if seen is None:
            return
        step = (wall - seen[0]) - (mono - seen[1])
        if abs(step) < CLOCK_JUMP_SECONDS:
            return
        direction = "forward" if step > 0 else "back"
        self.logger.error(
            f"the wall clock jumped {direction} by {abs(step):.0f} s; "
            + ("fires it jumped over are recorded as skipped (catch_up decides), retries keep their delay"
               if step > 0 else "fires already run are not run again when their times come back; "
               "retries keep their delay"),
            component="scheduler",
        )
        if step > 0:
            self.late_reason = f"the wall clock jumped forward by {step:.0f} s"
        self._scheduler.retries.shift(step)
