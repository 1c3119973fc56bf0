"""One store transaction's worth of changes in the scheduler: how to undo in memory what it
changed, if it rolls back (job models, runs in flight, queues), and what waits for its commit
(runs to start, retries to schedule). Its events wait in the lifecycle's announcer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobfsm.lifecycle import JobModel
    from jobfsm.runs.runner import Ticket


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
