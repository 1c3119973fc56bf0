"""Claiming fires and starting them: what the policy decides for a start (run, skip with the
reason, or queue) made true in the store and in memory, for one start or for many in one
store call.

- **Each fire once.** A fire is claimed under (job, scheduled_for, attempt) before it starts,
  so two daemons sharing a store never both run it. A skipped fire is claimed too, as a
  ``skipped`` run with the reason; a queued one as a ``skipped`` run that says it waits.
- **Overlap across nodes.** A claim of a job whose runs may not overlap (``skip``, ``queue``)
  is *exclusive*: the store refuses it while the job runs on any node, and the fire is then
  skipped or waits, naming that run.
- **Started after the commit.** A claimed run goes to the runner only once its transaction
  commits (:class:`jobfsm.daemon.unit.Transactions`): never a process whose claim could vanish.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from jobfsm.clock import utc
from jobfsm.daemon import policy
from jobfsm.daemon.jobset import JobEntry
from jobfsm.daemon.policy import Start, Verdict
from jobfsm.errors import InvalidTransitionError
from jobfsm.lifecycle import JobModel, RunSkipped, RunStarted
from jobfsm.model import JobConfig, Outcome, Overlap, RunStatus, Trigger
from jobfsm.runs.runner import Ticket
from jobfsm.store import Claim, Finish, RunRecord, TriggerRequest

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler

log = logging.getLogger(__name__)


class Claims:
    """Claims and starts the runs of one scheduler. Loop thread only, inside its transactions."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self.store = scheduler.store
        self.clock = scheduler.clock
        self.node = scheduler.node
        self.events = scheduler.events
        self._tx = scheduler.transactions
        self._in_flight = scheduler.in_flight

    def fire(self, entry: JobEntry, start: Start) -> RunRecord | None:
        """Run, skip or queue ``start`` as the policy decides; the run recorded, if any."""
        model, config = entry.model, entry.config
        decision = policy.decide(
            config, start, enabled=model.enabled, running=model.active_runs,
            running_ids=self._running_ids(model),
            fire_waiting=any(w.trigger is Trigger.SCHEDULE for w in entry.waiting or ()),
            paused=self._scheduler.control.paused(config.name),
        )
        if decision.verdict is Verdict.RUN:
            return self.start(entry, start)
        if decision.verdict is Verdict.SKIP:
            return self.record_skip(entry, start, decision.reason)
        if decision.verdict is Verdict.QUEUE:
            return self.enqueue(entry, start, decision.reason)
        return None

    def _running_ids(self, model: JobModel) -> str:
        if not model.active_runs:
            return ""
        return ", ".join(str(i) for i, (_, m) in self._in_flight.items() if m is model) or "?"

    def fire_many(self, work: list[tuple[JobEntry, Start]]) -> None:
        """:meth:`fire` for each, with the plain starts (a keyed fire of a job that is free)
        claimed in one store call. A job's later fires in the same list, and every fire that
        may skip or wait, go one by one after them, in order: a job's fires keep their order."""
        plain: list[tuple[JobEntry, Start]] = []
        rest: list[tuple[JobEntry, Start]] = []
        refused: list[tuple[JobEntry, Start]] = []
        seen: set[str] = set()
        for entry, start in work:
            name = entry.config.name
            (rest if name in seen or not self._plain_start(entry, start) else plain).append((entry, start))
            seen.add(name)
        late = [(e, s) for e, s in plain if e.delay > 0 and s.scheduled_for is not None]
        if late:  # fires another node comes first for: claim only those it has not taken (no lock waits)
            taken = self.store.claimed_fires([(e.config.name, s.scheduled_for, s.attempt)
                                              for e, s in late if s.scheduled_for is not None])
            if taken:
                plain = [(e, s) for e, s in plain if s.scheduled_for is None
                         or (e.config.name, utc(s.scheduled_for), s.attempt) not in taken]
        if plain:
            now = self.clock.now()
            runs = self.store.claim_runs([
                Claim(
                    entry.config.name, trigger=start.trigger, node=self.node, started_at=now,
                    scheduled_for=start.scheduled_for, attempt=start.attempt, user=start.user,
                    exclusive=_exclusive(entry.config),
                )
                for entry, start in plain
            ])
            for (entry, start), run in zip(plain, runs, strict=True):
                if run is not None:
                    self.begin(entry, start, run)
                elif _exclusive(entry.config):
                    refused.append((entry, start))  # taken by another node, or the job runs there
                else:
                    log.debug("fire %s of %r was claimed by another node", start.scheduled_for, entry.config.name)
        if refused:  # in a cluster, mostly fires another node claimed first: one query for all
            taken = self.store.claimed_fires([(e.config.name, s.scheduled_for, s.attempt)
                                              for e, s in refused if s.scheduled_for is not None])
            for entry, start in refused:
                if start.scheduled_for is not None and (entry.config.name, utc(start.scheduled_for),
                                                        start.attempt) in taken:
                    continue
                if not self._claim_refused(entry, start)[0]:
                    self.fire(entry, start)
        for entry, start in rest:
            self.fire(entry, start)

    def _plain_start(self, entry: JobEntry, start: Start) -> bool:
        return policy.is_plain(entry.config, start, enabled=entry.model.enabled, running=entry.model.active_runs,
                               paused=self._scheduler.control.paused(entry.config.name) is not None)

    def skip_many(self, skips: list[tuple[JobEntry, Start, str]]) -> None:
        """Record fires as skipped with their reasons, in one store call."""
        now = self.clock.now()
        runs = self.store.claim_runs([
            Claim(entry.config.name, trigger=start.trigger, node=self.node, started_at=now,
                  scheduled_for=start.scheduled_for, attempt=start.attempt, status=RunStatus.SKIPPED,
                  message=reason)
            for entry, start, reason in skips
        ])
        for (entry, start, reason), run in zip(skips, runs, strict=True):
            if run is not None:
                self.events.announce(RunSkipped(entry.config.name, run.id, reason, start.trigger))

    def enqueue(self, entry: JobEntry, start: Start, reason: str) -> RunRecord | None:
        """Record the waiting start at once (as ``skipped``, saying why), so a crash can never
        make it vanish; it becomes ``running`` when its turn comes. It is claimed exclusive, so
        that its start is refused while the job runs on another node."""
        run = self.record_skip(entry, start, reason, exclusive=_exclusive(entry.config))
        if run is not None:
            self._scheduler.waiting.append(entry, start, run.id)
        return run

    def record_skip(self, entry: JobEntry, start: Start, reason: str, *, exclusive: bool = False) -> RunRecord | None:
        now = self.clock.now()
        run = self.store.claim_run(Claim(
            entry.config.name,
            trigger=start.trigger,
            node=self.node,
            started_at=now,
            scheduled_for=start.scheduled_for,
            attempt=start.attempt,
            status=RunStatus.SKIPPED,
            message=reason,
            user=start.user,
            exclusive=exclusive,
        ))
        if run is None:
            return None  # another node claimed this fire
        self.events.announce(RunSkipped(entry.config.name, run.id, reason, start.trigger))
        if start.request_id is not None:
            self.store.resolve_trigger_request(start.request_id, run.id)
        return run

    def start(self, entry: JobEntry, start: Start) -> RunRecord | None:
        """Claim the run (or start the waiting one) and begin it; None when it may not start here."""
        config = entry.config
        exclusive = _exclusive(config)
        for _ in range(3):  # an exclusive claim refused by a run that ended meanwhile is made again
            if start.run_id is not None:
                run = self.store.start_queued_run(start.run_id, started_at=self.clock.now())
                if run is None and exclusive and self._scheduler.waiting.still_waiting(entry, start):
                    return None
            else:
                run = self.store.claim_run(Claim(
                    config.name,
                    trigger=start.trigger,
                    node=self.node,
                    started_at=self.clock.now(),
                    scheduled_for=start.scheduled_for,
                    attempt=start.attempt,
                    user=start.user,
                    exclusive=exclusive,
                ))
                if run is None and exclusive:
                    settled, record = self._claim_refused(entry, start)
                    if not settled:
                        continue
                    return record
            break
        if run is None:
            log.debug("fire %s of %r was claimed by another node", start.scheduled_for, config.name)
            return None
        self.begin(entry, start, run)
        return run

    def _claim_refused(self, entry: JobEntry, start: Start) -> tuple[bool, RunRecord | None]:
        """An exclusive claim (``overlap: skip``/``queue``) came back empty: the fire is another
        node's, or the job runs on another node, and this fire is skipped or waits, naming that
        run. ``(False, None)``: neither any more (that run ended meanwhile); claim again."""
        name = entry.config.name
        if start.scheduled_for is not None and self.store.fire_claimed(name, start.scheduled_for, start.attempt):
            return True, None
        met = self.store.running_exclusive(name)
        if met is None:
            return False, None
        decision = policy.decide(
            entry.config, start, enabled=entry.model.enabled, running=1, running_ids=f"{met.id} on node {met.node}",
            fire_waiting=any(w.trigger is Trigger.SCHEDULE for w in entry.waiting or ()),
        )
        if decision.verdict is Verdict.SKIP:
            return True, self.record_skip(entry, start, decision.reason)
        if decision.verdict is Verdict.QUEUE:
            run = self.enqueue(entry, start, decision.reason)
            self._scheduler.waiting.block(name)
            return True, run
        return decision.verdict is Verdict.IGNORE, None

    def begin(self, entry: JobEntry, start: Start, run: RunRecord) -> None:
        """The run is claimed: move the job to ``running``, hand it to the runner once the
        claim commits (never a process whose claim could vanish), log it then."""
        config, model = entry.config, entry.model
        try:
            self._scheduler.lifecycle.start(model, trigger=start.trigger, run_id=run.id, overlap=config.overlap,
                                            paused=self._scheduler.control.paused(config.name) is not None)
        except InvalidTransitionError as exc:  # defensive: fire checked the state
            self.store.finish_run(Finish(
                run.id, outcome=Outcome.NOT_STARTED, ended_at=self.clock.now(), exit_code=None,
                duration_seconds=0.0, message=str(exc),
            ))
            return
        if start.request_id is not None and start.run_id is None:
            self.store.resolve_trigger_request(start.request_id, run.id)
        ticket = Ticket(run.id, config, start.trigger, start.scheduled_for, start.attempt)
        self._in_flight[run.id] = (ticket, model)
        self._tx.on_rollback(functools.partial(self._in_flight.pop, run.id, None))
        self.events.announce(RunStarted(config.name, run.id, start.trigger, start.scheduled_for, config.command_text))
        self._tx.submit(ticket)

    def serve(self, request: TriggerRequest) -> None:
        """A manual trigger request: fire its job, or record why there is none to run."""
        entry = self._scheduler.jobs.get(request.job)
        if entry is not None:
            self.fire(entry, Start(Trigger.MANUAL, user=request.user, request_id=request.id))
            return
        run = self.store.claim_run(Claim(
            request.job, trigger=Trigger.MANUAL, node=self.node, started_at=self.clock.now(),
            status=RunStatus.SKIPPED, user=request.user,
            message=f"no valid job named {request.job!r} is loaded on {self.node}",
        ))
        if run is not None:
            self.store.resolve_trigger_request(request.id, run.id)


def _exclusive(config: JobConfig) -> bool:
    """Runs of the job may not overlap on any node: the store enforces it for such claims."""
    return config.overlap is not Overlap.ALLOW
