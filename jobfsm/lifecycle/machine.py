"""The job lifecycle: one ``transitions`` machine driving every job.

States are the values of :class:`jobfsm.model.JobState`::

    disabled --enable--> idle --start--> running --succeed--> succeeded --start--> running ...
                                                 --fail-----> failed    --start--> running ...
    idle/succeeded/failed --disable--> disabled
    running --disable--> running (deferred: the job lands in ``disabled`` when its last run ends)

Design decisions
----------------
**One machine, unregistered models.** :data:`TRANSITIONS` (module level, plain data) builds one
``Machine(model=None, auto_transitions=False, send_event=True)`` per :class:`Lifecycle`. Jobs are
*not* registered with ``add_model``: a registered model gets ~17 bound partials (``start``,
``may_start``, ``is_idle``, ...) and costs 5-7 KiB, and ``add_model`` checks ``mod not in
self.models`` (a list scan), so registering n jobs is quadratic. Instead every event is fired as
``machine.events[name].trigger(job, **kwargs)``. In transitions 0.9.3 that path only ever touches
the model through ``getattr``/``setattr`` of the ``state`` attribute (``Machine.get_model_state``,
``Machine.set_state``) and through ``getattr(model, name)`` when it resolves a callback named by a
string (``Machine.resolve_callable``; it falls back to importing a dotted path). So a job is a
plain slotted object of ~150 bytes, and the callbacks the table names are methods of
:class:`JobModel`. ``tests/test_lifecycle.py`` checks that every name in the table resolves.
(A registered model cannot be slotted: transitions sets attributes on it.)

**Where the logic lives.** The table holds the whole decision: which source states an event
accepts, and the guards that choose between transitions (``_allows_overlap``,
``_has_other_runs``, ``_is_disable_pending``). The model's named callbacks keep only its own
bookkeeping (``active_runs``, ``disable_pending``). The side effects hang off the machine in one
place, the two machine-level hooks of :class:`Lifecycle`:

- ``before_state_change`` -> :meth:`Lifecycle._persist`: ``store.set_state`` *before* the model
  changes (write-ahead), so a store that raises leaves model and store agreeing on the old state;
- ``after_state_change`` -> :meth:`Lifecycle._record`: announces :class:`StateChanged`; the job
  log writes its line, the service audits it when a person caused it (``user=`` given).

**What is persisted.** The store holds the state only, so only transitions that change it are
persisted. Internal transitions (``dest=None``: a second concurrent run with ``overlap: allow``,
the end of one of several runs, a disable deferred while running, an enable that cancels such a
deferral) change only ``active_runs`` or ``disable_pending``; they are not persisted (open runs
are in the runs table; whether a job is enabled is in its file). They *are* logged, one line per
accepted event, with ``dest == source``. A job restored in ``running`` (the daemon died during a
run) counts one open run, so the daemon can close it with :meth:`Lifecycle.fail` once it has
marked the run lost.

**Refusals.** An event that the state does not allow raises
:class:`jobfsm.errors.InvalidTransitionError` naming the job and what to do, and changes nothing
(no store write, no log line, no audit). transitions' ``MachineError`` (no transition from this
state) and a ``False`` result (every guard failed) never leave this module. Who audits a refused
request a person made is the caller's business (the service audits ``denied``/``failed``).

**Threads.** The Lifecycle takes no lock: one thread (the daemon's loop, or the service's
local-run thread) owns every transition. transitions' plain ``Machine`` is not safe to drive from
several threads.
Note that transitions logs every executed callback at INFO on the ``transitions`` logger; the
daemon's logging set-up should raise that logger to WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from transitions import EventData, Machine, MachineError

from jobfsm.clock import Clock
from jobfsm.errors import InvalidTransitionError
from jobfsm.lifecycle.events import Event, StateChanged
from jobfsm.model import JobState, Outcome, Overlap, Trigger
from jobfsm.store.abc import Store

__all__ = ["CALLBACK_KEYS", "EVENTS", "TRANSITIONS", "JobModel", "Lifecycle", "render_mermaid"]

log = logging.getLogger(__name__)

_DISABLED: Final = JobState.DISABLED.value
_IDLE: Final = JobState.IDLE.value
_RUNNING: Final = JobState.RUNNING.value
_SUCCEEDED: Final = JobState.SUCCEEDED.value
_FAILED: Final = JobState.FAILED.value
_RESTING: Final = (_IDLE, _SUCCEEDED, _FAILED)
"""Enabled, with no run in progress."""

EVENTS: Final = ("enable", "disable", "start", "succeed", "fail")

# String values, never JobState members: transitions turns anything with a ``.name`` into that
# name ("IDLE"), and a StrEnum has one. For each (event, source) the first transition whose
# guards pass wins, so order matters. ``dest: None`` is an internal transition: the state stays.
TRANSITIONS: Final[tuple[Mapping[str, Any], ...]] = (
    # enable
    {"trigger": "enable", "source": _DISABLED, "dest": _IDLE},
    {"trigger": "enable", "source": _RUNNING, "dest": None,
     "conditions": "_is_disable_pending", "before": "_cancel_disable"},
    # disable
    {"trigger": "disable", "source": _RESTING, "dest": _DISABLED},
    {"trigger": "disable", "source": _RUNNING, "dest": None,
     "unless": "_is_disable_pending", "before": "_defer_disable"},
    # start (fire / manual trigger / catch-up / retry)
    {"trigger": "start", "source": _RESTING, "dest": _RUNNING, "before": "_open_run"},
    {"trigger": "start", "source": _RUNNING, "dest": None,
     "conditions": "_allows_overlap", "unless": "_is_disable_pending", "before": "_open_run"},
    # succeed: the last run to end decides the state
    {"trigger": "succeed", "source": _RUNNING, "dest": None,
     "conditions": "_has_other_runs", "before": "_close_run"},
    {"trigger": "succeed", "source": _RUNNING, "dest": _DISABLED,
     "conditions": "_is_disable_pending", "before": ("_close_run", "_cancel_disable")},
    {"trigger": "succeed", "source": _RUNNING, "dest": _SUCCEEDED, "before": "_close_run"},
    # fail: non-zero exit, timeout, could not start, killed, lost
    {"trigger": "fail", "source": _RUNNING, "dest": None,
     "conditions": "_has_other_runs", "before": "_close_run"},
    {"trigger": "fail", "source": _RUNNING, "dest": _DISABLED,
     "conditions": "_is_disable_pending", "before": ("_close_run", "_cancel_disable")},
    {"trigger": "fail", "source": _RUNNING, "dest": _FAILED, "before": "_close_run"},
)
"""The lifecycle, as data. Callback and guard names are methods of :class:`JobModel`."""

CALLBACK_KEYS: Final = ("conditions", "unless", "prepare", "before", "after")

_GUARD_WORDS: Final = {
    "_allows_overlap": "overlap allow",
    "_has_other_runs": "other runs still going",
    "_is_disable_pending": "disable pending",
}


class JobModel:
    """One job's place in the lifecycle: the object the shared machine drives.

    Plain, mutable, slotted (~150 bytes), compared by identity. ``state`` is the attribute
    transitions reads and writes (a :class:`JobState` value). The job's overlap policy is not
    kept here: the file's is given with each start (one copy, the config's). The underscore methods are the
    callbacks and guards :data:`TRANSITIONS` names; the machine calls them with its
    ``EventData`` (``send_event=True``); do not call them yourself.
    """

    __slots__ = ("active_runs", "disable_pending", "name", "state")

    def __init__(
        self,
        name: str,
        state: JobState | str,
        *,
        active_runs: int = 0,
        disable_pending: bool = False,
    ) -> None:
        self.name = name
        self.state: str = JobState(state).value
        self.active_runs = active_runs
        self.disable_pending = disable_pending

    @property
    def job_state(self) -> JobState:
        return JobState(self.state)

    @property
    def enabled(self) -> bool:
        """What the job file should say: not disabled, and no disable waiting for a run to end."""
        return self.state != _DISABLED and not self.disable_pending

    def __repr__(self) -> str:
        return (
            f"JobModel({self.name!r}, state={self.state!r}, active_runs={self.active_runs}, "
            f"disable_pending={self.disable_pending})"
        )

    # -- guards ------------------------------------------------------------------------
    def _allows_overlap(self, event: EventData) -> bool:
        return bool(event.kwargs.get("overlap") == Overlap.ALLOW)

    def _has_other_runs(self, _event: EventData) -> bool:
        return self.active_runs > 1

    def _is_disable_pending(self, _event: EventData) -> bool:
        return self.disable_pending

    # -- bookkeeping ----------------------------------------------------------------------
    def _open_run(self, _event: EventData) -> None:
        self.active_runs += 1

    def _close_run(self, _event: EventData) -> None:
        self.active_runs -= 1

    def _defer_disable(self, _event: EventData) -> None:
        self.disable_pending = True

    def _cancel_disable(self, _event: EventData) -> None:
        self.disable_pending = False


class Lifecycle:
    """Owns the shared Machine and its side effects in one place: persist the state, announce
    the change (the job log and the audit trail listen).

    Not locked: call it from the one thread that owns transitions.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        announce: Callable[[Event], None] | None = None,
        before_event: Callable[[JobModel], None] | None = None,
    ) -> None:
        """``announce(event)`` hears every applied event (:class:`StateChanged`);
        ``before_event(job)`` is called before every event is tried on ``job`` (the scheduler
        keeps what the model was, to restore it if the store transaction around the change
        rolls back)."""
        self._store = store
        self._clock = clock
        self._announce = announce
        self._before_event = before_event
        self.machine = Machine(
            model=None,
            states=[state.value for state in JobState],
            initial=None,
            transitions=[dict(t) for t in TRANSITIONS],
            auto_transitions=False,
            send_event=True,
            before_state_change=self._persist,
            after_state_change=self._record,
        )

    # -- building models ---------------------------------------------------------------
    def model_for(
        self,
        name: str,
        *,
        enabled: bool,
        state: JobState | None = None,
    ) -> JobModel:
        """A model in ``state`` (restored from the store) or, without one, ``disabled``/``idle``
        by ``enabled``. Nothing is persisted: see :meth:`persist_initial`. A job restored in
        ``running`` counts one open run (close it with :meth:`fail` once the run is marked lost);
        to make a restored state agree with the file, call :meth:`sync`."""
        if state is None:
            state = JobState.IDLE if enabled else JobState.DISABLED
        return JobModel(name, state, active_runs=1 if state is JobState.RUNNING else 0)

    def persist_initial(self, job: JobModel) -> None:
        """Write the job's current state to the store (a new job; not a transition, not logged)."""
        self._store.set_state(job.name, job.job_state, self._clock.now())

    # -- events --------------------------------------------------------------------------
    def enable(self, job: JobModel, *, user: str | None = None) -> None:
        """``disabled`` -> ``idle``; while running with a deferred disable, cancel the deferral."""
        self._fire(job, "enable", user=user)

    def disable(self, job: JobModel, *, user: str | None = None) -> None:
        """``idle``/``succeeded``/``failed`` -> ``disabled``; while running, defer it to the run's end."""
        self._fire(job, "disable", user=user)

    def start(
        self,
        job: JobModel,
        *,
        trigger: Trigger,
        run_id: int | None = None,
        user: str | None = None,
        overlap: Overlap = Overlap.SKIP,
    ) -> None:
        """A run begins. From ``running`` only with ``overlap: allow`` (the job's policy, from
        its file; ``queue`` is the scheduler's business: it calls this when the queued run may
        begin)."""
        self._fire(job, "start", user=user, trigger=trigger, run_id=run_id, overlap=overlap)

    def succeed(self, job: JobModel, *, run_id: int | None = None) -> None:
        """A run exited 0. The last run to end moves the job to ``succeeded`` (or ``disabled``)."""
        self._fire(job, "succeed", run_id=run_id)

    def fail(self, job: JobModel, *, run_id: int | None = None, reason: str = "") -> None:
        """A run failed (exit, timeout, not started, killed, lost); see :meth:`succeed`."""
        self._fire(job, "fail", run_id=run_id, reason=reason)

    def finish(
        self, job: JobModel, outcome: Outcome, *, run_id: int | None = None, reason: str = ""
    ) -> None:
        """:meth:`succeed` or :meth:`fail` by ``outcome`` (the reason defaults to the outcome)."""
        if outcome is Outcome.SUCCEEDED:
            self.succeed(job, run_id=run_id)
        else:
            self.fail(job, run_id=run_id, reason=reason or outcome.value)

    def sync(self, job: JobModel, *, enabled: bool, user: str | None = None) -> None:
        """Hot reload: make the job agree with its file's ``enabled``; a no-op when it does."""
        if enabled and not job.enabled:
            self.enable(job, user=user)
        elif not enabled and job.enabled:
            self.disable(job, user=user)

    def _fire(self, job: JobModel, event: str, **kwargs: Any) -> None:
        if self._before_event is not None:
            self._before_event(job)
        try:
            done = self.machine.events[event].trigger(job, **kwargs)
        except MachineError:  # no transition from this state at all
            done = False
        if not done:
            raise InvalidTransitionError(_refusal(job, event, kwargs.get("overlap", Overlap.SKIP)))

    # -- side effects: the one place -----------------------------------------------------
    def _persist(self, event: EventData) -> None:
        transition = event.transition
        assert transition is not None
        if transition.dest is None or transition.dest == transition.source:
            return
        job: JobModel = event.model  # type: ignore[assignment]
        self._store.set_state(job.name, JobState(transition.dest), self._clock.now())

    def _record(self, event: EventData) -> None:
        transition = event.transition
        assert transition is not None
        job: JobModel = event.model  # type: ignore[assignment]
        name = event.event.name
        source = transition.source
        dest = transition.dest or source
        user: str | None = event.kwargs.get("user")
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "job %r: %s %s -> %s (user=%s, runs=%d, %s)",
                job.name, name, source, dest, user, job.active_runs,
                {k: v for k, v in event.kwargs.items() if k != "user" and v not in (None, "")},
            )
        if self._announce is not None:
            self._announce(StateChanged(job.name, name, source, dest, user, self._clock.now()))

    # -- picture ---------------------------------------------------------------------------
    def diagram(self, highlight: JobState | None = None) -> str:
        """The lifecycle as Mermaid ``stateDiagram-v2`` text, from :data:`TRANSITIONS`.

        Generated here rather than by transitions' ``GraphMachine`` (whose Mermaid engine needs no
        graphviz, but wants a registered model and a second machine, and writes ``Class`` lines
        and a title block of its own). Guards are shown in words; ``highlight`` marks one state.
        Plain text: wrap it in a fenced ``mermaid`` block to render it.
        """
        return render_mermaid(highlight)


def render_mermaid(highlight: JobState | None = None) -> str:
    """See :meth:`Lifecycle.diagram`; needs no machine."""
    labels: dict[tuple[str, str], list[str]] = {}
    for t in TRANSITIONS:
        guards = [_GUARD_WORDS[c] for c in _names(t.get("conditions"))]
        guards += [f"not {_GUARD_WORDS[c]}" for c in _names(t.get("unless"))]
        label = t["trigger"] + (f" ({', '.join(guards)})" if guards else "")
        sources = _names(t["source"])
        for source in sources:
            dest = t["dest"] or source
            labels.setdefault((source, dest), []).append(label)
    lines = ["stateDiagram-v2", f"    [*] --> {_DISABLED}", f"    [*] --> {_IDLE}"]
    for (source, dest), words in labels.items():
        lines.append(f"    {source} --> {dest}: {' / '.join(words)}")
    if highlight is not None:
        lines.append("    classDef current fill:#fde68a,stroke:#b45309,stroke-width:3px")
        lines.append(f"    class {JobState(highlight).value} current")
    return "\n".join(lines) + "\n"


def _names(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)  # type: ignore[call-overload,no-any-return]


def _refusal(job: JobModel, event: str, overlap: Overlap) -> str:
    """Why ``event`` is not allowed for ``job`` now, and what to do."""
    name, state = job.name, job.state
    if event == "enable":
        if state == _RUNNING:
            return f"job {name!r} is already enabled (it is running); nothing to enable"
        return f"job {name!r} is already enabled (it is {state!r}); nothing to enable"
    if event == "disable":
        if state == _DISABLED:
            return f"job {name!r} is already disabled; enable it first if you meant to toggle it"
        return (
            f"job {name!r} is already being disabled; it lands in 'disabled' when its "
            "current run ends"
        )
    if event == "start":
        if state == _DISABLED:
            return f"job {name!r} is disabled; enable it before triggering it"
        if job.disable_pending:
            return (
                f"job {name!r} is being disabled (once its current run ends); "
                "enable it before triggering it"
            )
        return (
            f"job {name!r} is already running and its overlap policy is {overlap.value!r}; "
            "wait for the run to end, or set \"overlap\": \"allow\" in its file to run "
            "concurrently"
        )
    return (
        f"job {name!r} has no run in progress (it is {state!r}), so it cannot {event}; "
        "only a started run can succeed or fail"
    )
