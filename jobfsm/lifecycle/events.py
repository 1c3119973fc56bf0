"""What the lifecycle announces, and the one place it is announced from.

A run started, finished, was skipped or was lost; a job's state changed. The scheduler and the
lifecycle announce these; the job log, the audit trail (and later notifications and metrics)
subscribe. Inside a store transaction the events are held and delivered once it commits, so no
listener ever hears of a run whose claim rolled back (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from jobfsm.model import Trigger
    from jobfsm.runs.executor import JobResult
    from jobfsm.store.abc import RunRecord


@dataclass(frozen=True, slots=True)
class StateChanged:
    """A lifecycle event was applied (``dest == source`` for one that kept the state)."""

    job: str
    event: str
    source: str
    dest: str
    user: str | None
    """Who caused it, when a person did (it is then audited)."""
    at: datetime


@dataclass(frozen=True, slots=True)
class RunStarted:
    job: str
    run_id: int
    trigger: Trigger
    scheduled_for: datetime | None
    command: str


@dataclass(frozen=True, slots=True)
class RunFinished:
    result: JobResult
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class RunSkipped:
    job: str
    run_id: int | None
    reason: str
    trigger: Trigger | None = None
    """What the skipped start was (None: not said); a scheduled fire skipped may be a missed one."""


@dataclass(frozen=True, slots=True)
class RunLost:
    run: RunRecord
    node: str
    """The node that was running it (dead)."""


Event = Union[StateChanged, RunStarted, RunFinished, RunSkipped, RunLost]  # noqa: UP007 - used at run time
Listener = Callable[[Event], None]


class Announcer:
    """Delivers every event to every listener, in the order they subscribed. Not locked: it is
    driven by the one thread that owns the transitions."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._held: list[Event] | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def announce(self, event: Event) -> None:
        if self._held is not None:
            self._held.append(event)
            return
        for listener in self._listeners:
            listener(event)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the events announced inside; deliver them when the block ends normally, drop
        them when it raises (the store transaction they describe rolled back)."""
        if self._held is not None:
            yield
            return
        held: list[Event] = []
        self._held = held
        try:
            yield
        finally:
            self._held = None
        for event in held:
            self.announce(event)
