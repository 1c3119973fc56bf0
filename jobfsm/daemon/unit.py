"""One store transaction's worth of changes in the scheduler: how to undo in memory what it
changed, if it rolls back (job models, runs in flight, queues), and what waits for its commit
(runs to start, retries to schedule). Its events wait in the lifecycle's announcer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobfsm.joblog import JobLogger
    from jobfsm.lifecycle import Announcer, JobModel
    from jobfsm.runs.runner import Runner, Ticket
    from jobfsm.store import Store

DISPATCH_CHUNK = 256
"""At most this many fires (or results) are recorded in one store transaction."""


class UnitOfWork:
    __slots__ = ("after", "tickets", "touched", "undo")

    def __init__(self) -> None:
        self.after: list[Callable[[], None]] = []
        self.tickets: list[Ticket] = []
        self.touched: set[int] = set()
        self.undo: list[Callable[[], object]] = []

    def on_rollback(self, undo: Callable[[], object]) -> None:
        self.undo.append(undo)

    def touch(self, model: JobModel) -> None:
        """``model`` is about to change: remember what it was (once per transaction)."""
        if id(model) in self.touched:
            return
        self.touched.add(id(model))
        was = (model.state, model.active_runs, model.disable_pending)

        def restore() -> None:
            model.state, model.active_runs, model.disable_pending = was

        self.undo.append(restore)

    def roll_back(self) -> None:
        for undo in reversed(self.undo):
            undo()


class Transactions:
    """The scheduler's store transactions: at most one open at a time, on the loop thread."""

    def __init__(self, store: Store, logger: JobLogger, events: Announcer, runner: Runner) -> None:
        self._store = store
        self._logger = logger
        self._events = events
        self._runner = runner
        self._unit: UnitOfWork | None = None

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Record what happens inside in one store transaction. If it rolls back, what it
        changed in memory (job models, runs in flight, queues) is undone and the error goes
        on; once it commits, its log lines are written and the runs it claimed start."""
        if self._unit is not None:
            yield
            return
        unit = self._unit = UnitOfWork()
        try:
            # One flush of the logs for the whole batch; its events wait for the commit.
            with self._logger.buffered(), self._events.held():
                try:
                    with self._store.batch():
                        yield
                except BaseException:
                    unit.roll_back()
                    raise
                finally:
                    self._unit = None
                for call in unit.after:
                    call()
        finally:
            self._unit = None
        for ticket in unit.tickets:
            self._runner.submit(ticket)

    def submit(self, ticket: Ticket) -> None:
        """Hand ``ticket`` to the runner once the current transaction commits (now, outside one):
        never a process whose claim could vanish."""
        if self._unit is not None:
            self._unit.tickets.append(ticket)
        else:
            self._runner.submit(ticket)

    def later(self, call: Callable[[], None]) -> None:
        """Run ``call`` once the current store transaction commits (now, outside one)."""
        if self._unit is None:
            call()
        else:
            self._unit.after.append(call)

    def on_rollback(self, undo: Callable[[], object]) -> None:
        if self._unit is not None:
            self._unit.on_rollback(undo)

    def touch(self, model: JobModel) -> None:
        """The lifecycle is about to change ``model``: remember what it was, for a rollback."""
        if self._unit is not None:
            self._unit.touch(model)
