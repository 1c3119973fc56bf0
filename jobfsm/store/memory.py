"""The in-memory store: plain Python objects behind one lock, for tests and single-process use.

Design decisions:

- **One ``threading.Lock`` around everything.** Every method is short and does no I/O, so a
  single lock is both the simplest correct choice and fast enough; it also makes
  ``claim_run`` and ``claim_trigger_requests`` trivially atomic within the process.
- **Copies in, copies out.** Records are stored as private copies and every method returns
  fresh copies, so a caller mutating a returned ``RunRecord`` cannot change the store behind
  its back (the SQL store behaves the same way by construction).
- **Same semantics as** :class:`jobfsm.store.sql.SqlStore`, down to the details: datetimes
  are normalized to aware UTC, audit ``details`` go through a JSON round trip (as they do
  on their way into a ``TEXT`` column), pruning a run clears ``run_id`` of the trigger
  requests that pointed to it (``ON DELETE SET NULL``), and an empty ``message`` given to
  ``finish_run`` keeps the message recorded at claim time. One test suite checks both.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from jobfsm.clock import Clock, SystemClock, utc
from jobfsm.errors import RunNotFoundError, TriggerRequestNotFoundError
from jobfsm.model import JobState, Outcome, RunStatus, Trigger
from jobfsm.nodes import DEFAULT_DEAD_AFTER_SECONDS
from jobfsm.store.abc import (
    AuditEntry,
    Beat,
    Claim,
    DeadNode,
    Finish,
    Heartbeat,
    NodeInfo,
    RunRecord,
    Store,
    TriggerRequest,
    lost_message,
)
from jobfsm.store.control import KILL_PENDING, KillRequest, KillRequestNotFoundError, Pause

logger = logging.getLogger(__name__)

_FIRE_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCH_UP)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _opt_utc(dt: datetime | None) -> datetime | None:
    return utc(dt) if dt is not None else None


def normalize_details(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` as they come back from a JSON column (tuples become lists, keys strings)."""
    out: dict[str, Any] = json.loads(json.dumps(details, default=str))
    return out


def run_sort_key(run: RunRecord) -> tuple[bool, datetime, int]:
    """Sort key for ``reverse=True``: started runs first, newest first, then highest id."""
    return (run.started_at is not None, run.started_at or _EARLIEST, run.id)


class MemoryStore(Store):
    """Everything in dictionaries; gone when the process ends."""

    def __init__(self, *, database_clock: Clock | None = None) -> None:
        self._database_clock = database_clock
        self._clock: Clock = database_clock or SystemClock()
        """The "database's" clock of :meth:`beat` and :meth:`nodes` (this host's by default)."""
        self._exclusive: dict[str, int] = {}
        """job -> its running exclusive run (what the SQL store's partial unique index holds)."""
        self._dead: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()
        self._states: dict[str, tuple[JobState, datetime]] = {}
        self._runs: dict[int, RunRecord] = {}
        self._fires: set[tuple[str, datetime, int]] = set()
        self._requests: dict[int, TriggerRequest] = {}
        self._audit: list[AuditEntry] = []
        self._heartbeats: dict[str, Heartbeat] = {}
        self._next_run_id = 1
        self._exclusive_ids: set[int] = set()
        self._next_request_id = 1
        self._next_audit_id = 1
        self._pauses: dict[str, Pause] = {}
        self._kills: dict[int, KillRequest] = {}

        self._version = 0
        """Counts the writes: the change mark."""

    def __repr__(self) -> str:
        return "MemoryStore()"

    @contextmanager
    def _writing(self) -> Iterator[None]:
        with self._lock:
            self._version += 1
            yield

    def change_mark(self) -> Hashable | None:
        return self._version

    # -- job states ------------------------------------------------------------
    def get_state(self, job: str) -> JobState | None:
        with self._lock:
            entry = self._states.get(job)
        return entry[0] if entry else None

    def set_state(self, job: str, state: JobState, at: datetime) -> None:
        with self._writing():
            self._states[job] = (JobState(state), utc(at))

    def set_states(self, states: dict[str, JobState], at: datetime) -> None:
        with self._writing():
            for job, state in states.items():
                self._states[job] = (JobState(state), utc(at))

    def all_states(self) -> dict[str, JobState]:
        with self._lock:
            return {job: state for job, (state, _) in self._states.items()}

    def delete_state(self, job: str) -> None:
        with self._writing():
            self._states.pop(job, None)

    # -- runs ------------------------------------------------------------------
    def claim_run(self, claim: Claim) -> RunRecord | None:
        job, attempt, status = claim.job, claim.attempt, RunStatus(claim.status)
        scheduled = _opt_utc(claim.scheduled_for)
        with self._writing():
            if scheduled is not None:
                key = (job, scheduled, attempt)
                if key in self._fires:
                    logger.debug("fire %r of job %r attempt %s already claimed", scheduled, job, attempt)
                    return None
            exclusive_running = claim.exclusive and status is RunStatus.RUNNING
            if exclusive_running and self._running_exclusive(job) is not None:
                return None
            if scheduled is not None:
                self._fires.add(key)
            run = RunRecord(
                id=self._next_run_id,
                job=job,
                status=status,
                trigger=Trigger(claim.trigger),
                node=claim.node,
                scheduled_for=scheduled,
                attempt=attempt,
                started_at=utc(claim.started_at),
                message=claim.message,
                user=claim.user,
            )
            self._next_run_id += 1
            self._runs[run.id] = run
            if claim.exclusive:
                self._exclusive_ids.add(run.id)
            if exclusive_running:
                self._exclusive[job] = run.id
            return replace(run)

    def _running_exclusive(self, job: str) -> RunRecord | None:
        run_id = self._exclusive.get(job)
        run = self._runs.get(run_id) if run_id is not None else None
        if run is None or run.status is not RunStatus.RUNNING:
            self._exclusive.pop(job, None)
            return None
        return run

    def start_queued_run(self, run_id: int, *, started_at: datetime) -> RunRecord | None:
        with self._writing():
            run = self._runs.get(run_id)
            if run is None or run.status is not RunStatus.SKIPPED:
                return None
            if run.id in self._exclusive_ids:
                if self._running_exclusive(run.job) is not None:
                    return None
                self._exclusive[run.job] = run.id
            run.status = RunStatus.RUNNING
            run.started_at = utc(started_at)
            run.message = ""
            return replace(run)

    def finish_run(self, finish: Finish) -> RunRecord:
        outcome = Outcome(finish.outcome)
        with self._writing():
            run = self._runs.get(finish.run_id)
            if run is None:
                raise RunNotFoundError(finish.run_id)
            if run.status is not RunStatus.RUNNING:
                logger.warning(
                    "run %s of job %r finished as %s but was %s; recording the real result",
                    run.id, run.job, outcome.value, run.status.value,
                )
            run.status = outcome.run_status
            run.outcome = outcome
            run.ended_at = utc(finish.ended_at)
            run.exit_code = finish.exit_code
            run.signal = finish.signal
            run.duration_seconds = finish.duration_seconds
            if finish.message:
                run.message = finish.message
            run.stdout_tail = finish.stdout_tail
            run.stderr_tail = finish.stderr_tail
            run.stdout_path = finish.stdout_path
            run.stderr_path = finish.stderr_path
            return replace(run)

    def get_run(self, run_id: int) -> RunRecord:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise RunNotFoundError(run_id)
            return replace(run)

    def list_runs(
        self,
        job: str | None = None,
        *,
        status: RunStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        since, until = _opt_utc(since), _opt_utc(until)
        with self._lock:
            found = [
                replace(r)
                for r in self._runs.values()
                if (job is None or r.job == job)
                and (status is None or r.status == status)
                and (since is None or (r.started_at is not None and r.started_at >= since))
                and (until is None or (r.started_at is not None and r.started_at <= until))
            ]
        found.sort(key=run_sort_key, reverse=True)
        return found if limit is None else found[: max(limit, 0)]

    def last_fire(self, job: str) -> datetime | None:
        with self._lock:
            fires = [
                r.scheduled_for
                for r in self._runs.values()
                if r.job == job and r.trigger in _FIRE_TRIGGERS and r.scheduled_for is not None
            ]
        return max(fires, default=None)

    def last_fires(self) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        with self._lock:
            for r in self._runs.values():
                fire = r.scheduled_for
                if r.trigger in _FIRE_TRIGGERS and fire is not None and (r.job not in out or fire > out[r.job]):
                    out[r.job] = fire
        return out

    def mark_lost(self, *, at: datetime, node: str | None = None, message: str) -> list[RunRecord]:
        at = utc(at)
        lost: list[RunRecord] = []
        with self._writing():
            for run in sorted(self._runs.values(), key=lambda r: r.id):
                if run.status is RunStatus.RUNNING and (node is None or run.node == node):
                    run.status = RunStatus.LOST
                    run.ended_at = at
                    run.message = message
                    lost.append(replace(run))
        return lost

    def prune_runs(self, *, now: datetime, keep_last: int, keep_days: float) -> list[RunRecord]:
        cutoff = utc(now) - timedelta(days=keep_days)
        with self._writing():
            by_job: dict[str, list[RunRecord]] = {}
            for run in self._runs.values():
                if run.status is not RunStatus.RUNNING:
                    by_job.setdefault(run.job, []).append(run)
            doomed: list[RunRecord] = []
            for runs in by_job.values():
                runs.sort(key=run_sort_key, reverse=True)
                doomed.extend(
                    r for r in runs[max(keep_last, 0):]
                    if r.started_at is not None and r.started_at < cutoff
                )
            doomed.sort(key=lambda r: r.id)
            gone = {r.id for r in doomed}
            for run in doomed:
                del self._runs[run.id]
                if run.scheduled_for is not None:
                    self._fires.discard((run.job, run.scheduled_for, run.attempt))
            for request in self._requests.values():
                if request.run_id in gone:
                    request.run_id = None
        return doomed

    # -- manual trigger requests ---------------------------------------------------
    def request_trigger(self, job: str, *, user: str, at: datetime) -> TriggerRequest:
        with self._writing():
            request = TriggerRequest(id=self._next_request_id, job=job, user=user, requested_at=utc(at))
            self._next_request_id += 1
            self._requests[request.id] = request
            return replace(request)

    def claim_trigger_requests(self, *, node: str, at: datetime) -> list[TriggerRequest]:
        at = utc(at)
        claimed: list[TriggerRequest] = []
        with self._writing():
            for request_id in sorted(self._requests):
                request = self._requests[request_id]
                if request.claimed_by is None:
                    request.claimed_by = node
                    request.claimed_at = at
                    claimed.append(replace(request))
        return claimed

    def resolve_trigger_request(self, request_id: int, run_id: int) -> None:
        with self._writing():
            request = self._requests.get(request_id)
            if request is None:
                raise TriggerRequestNotFoundError(request_id)
            request.run_id = run_id

    def get_trigger_request(self, request_id: int) -> TriggerRequest:
        with self._lock:
            request = self._requests.get(request_id)
            if request is None:
                raise TriggerRequestNotFoundError(request_id)
            return replace(request)

    # -- audit ---------------------------------------------------------------------
    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        details = normalize_details(entry.details)
        with self._writing():
            stored = replace(entry, id=self._next_audit_id, time=utc(entry.time), details=details)
            self._next_audit_id += 1
            self._audit.append(stored)
            return replace(stored, details=normalize_details(details))

    def list_audit(
        self,
        *,
        user: str | None = None,
        job: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        since = _opt_utc(since)
        with self._lock:
            found = [
                replace(e, details=normalize_details(e.details))
                for e in self._audit
                if (user is None or e.user == user)
                and (job is None or e.job == job)
                and (since is None or e.time >= since)
            ]
        found.sort(key=lambda e: (e.time, e.id or 0), reverse=True)
        return found if limit is None else found[: max(limit, 0)]

    # -- node heartbeats -----------------------------------------------------------
    def heartbeat(self, node: str, *, pid: int, host: str, at: datetime) -> None:
        at = utc(at)
        with self._writing():
            old = self._heartbeats.get(node)
            same_process = old is not None and old.pid == pid and old.host == host
            started = old.started_at if old is not None and same_process else at
            self._heartbeats[node] = Heartbeat(node=node, pid=pid, host=host, started_at=started, last_seen=at)

    def remove_node(self, node: str) -> None:
        with self._writing():
            self._heartbeats.pop(node, None)

    def live_nodes(self, *, now: datetime, max_age_seconds: float) -> list[Heartbeat]:
        oldest = utc(now) - timedelta(seconds=max_age_seconds)
        with self._lock:
            live = [replace(h) for h in self._heartbeats.values() if h.last_seen >= oldest]
        return sorted(live, key=lambda h: h.node)

    # -- operational control: pauses and kill requests ---------------------------------
    def _control(self) -> tuple[dict[str, Pause], dict[int, KillRequest]]:
        return self._pauses, self._kills

    def set_pause(self, pause: Pause) -> None:
        pause = replace(pause, since=utc(pause.since), until=_opt_utc(pause.until))
        with self._writing():
            self._control()[0][pause.job] = pause

    def clear_pause(self, job: str, *, until: datetime | None = None, only_expired: bool = False) -> Pause | None:
        with self._writing():
            pauses = self._control()[0]
            found = pauses.get(job)
            if found is None or (only_expired and found.until != _opt_utc(until)):
                return None
            return pauses.pop(job)

    def list_pauses(self) -> list[Pause]:
        with self._lock:
            return sorted(self._control()[0].values(), key=lambda p: p.job)

    def request_kill(self, job: str, *, run_id: int, node: str, user: str, at: datetime) -> KillRequest:
        with self._writing():
            kills = self._control()[1]
            request = KillRequest(len(kills) + 1, job, run_id, node, user, utc(at))
            kills[request.id] = request
            return request

    def claim_kill_requests(self, *, node: str, at: datetime) -> list[KillRequest]:
        with self._writing():
            kills = self._control()[1]
            taken = []
            for request in sorted(kills.values(), key=lambda k: k.id):
                if request.node == node and request.claimed_at is None:
                    kills[request.id] = request = replace(request, claimed_at=utc(at))
                    taken.append(request)
            return taken

    def resolve_kill_request(self, request_id: int, result: str) -> None:
        with self._writing():
            kills = self._control()[1]
            if request_id not in kills:
                raise KillRequestNotFoundError(request_id)
            kills[request_id] = replace(kills[request_id], result=result or KILL_PENDING)

    def get_kill_request(self, request_id: int) -> KillRequest:
        with self._lock:
            request = self._control()[1].get(request_id)
        if request is None:
            raise KillRequestNotFoundError(request_id)
        return request
    # -- several hosts -------------------------------------------------------------------
    def running_exclusive(self, job: str) -> RunRecord | None:
        with self._lock:
            run = self._running_exclusive(job)
            return replace(run) if run is not None else None

    def fire_claimed(self, job: str, scheduled_for: datetime, attempt: int = 0) -> RunRecord | None:
        key = (job, utc(scheduled_for), attempt)
        with self._lock:
            found = [r for r in self._runs.values() if (r.job, r.scheduled_for, r.attempt) == key]
            return replace(found[0]) if found else None

    def database_now(self, at: datetime | None = None) -> datetime:
        if self._database_clock is not None or at is None:
            return utc(self._clock.now())
        return utc(at)

    def beat(self, node: str, *, pid: int, host: str, at: datetime | None = None) -> Beat:
        now = self.database_now(at)
        with self._writing():
            old = self._heartbeats.get(node)
            same_process = old is not None and old.pid == pid and old.host == host
            started = old.started_at if old is not None and same_process else now
            self._heartbeats[node] = Heartbeat(node=node, pid=pid, host=host, started_at=started, last_seen=now)
            dead = self._dead.pop(node, None)
        return Beat(now, *dead) if dead is not None else Beat(now)

    def nodes(
        self, *, seen_within: float, dead_after: float = DEFAULT_DEAD_AFTER_SECONDS, at: datetime | None = None,
    ) -> list[NodeInfo]:
        now = self.database_now(at)
        with self._lock:
            running: dict[str, list[int]] = {}
            for run in sorted(self._runs.values(), key=lambda r: r.id):
                if run.status is RunStatus.RUNNING:
                    running.setdefault(run.node, []).append(run.id)
            out = []
            for h in sorted(self._heartbeats.values(), key=lambda h: h.node):
                if h.last_seen < now - timedelta(seconds=seen_within):
                    continue
                by, when = self._dead.get(h.node, (None, None))
                out.append(NodeInfo(
                    node=h.node, host=h.host, pid=h.pid, started_at=h.started_at, last_heartbeat=h.last_seen,
                    alive=h.last_seen >= now - timedelta(seconds=dead_after) and by is None,
                    running=tuple(running.get(h.node, ())), declared_dead_by=by, declared_dead_at=when,
                ))
            return out

    def declare_dead(
        self, node: str, *, by: str, dead_after: float | None, found: str = "", note: str = "",
        at: datetime | None = None,
    ) -> DeadNode | None:
        now = self.database_now(at)
        with self._writing():
            beat = self._heartbeats.get(node)
            last_seen = beat.last_seen if beat is not None else None
            if dead_after is not None and last_seen is not None and last_seen >= now - timedelta(seconds=dead_after):
                return None
            message = lost_message(node, last_seen=last_seen, now=now, by=by, found=found, note=note)
            lost = []
            for run in sorted(self._runs.values(), key=lambda r: r.id):
                if run.status is RunStatus.RUNNING and run.node == node:
                    run.status, run.ended_at, run.message = RunStatus.LOST, now, message
                    lost.append(replace(run))
            if beat is not None:
                self._dead.setdefault(node, (by, now))
        return DeadNode(node, last_seen, now, tuple(lost))
