"""The job lifecycle: the state machine every job goes through, and what it announces."""

from __future__ import annotations

from jobfsm.lifecycle.events import (
    Announcer,
    Event,
    Listener,
    RunFinished,
    RunLost,
    RunSkipped,
    RunStarted,
    StateChanged,
)
from jobfsm.lifecycle.machine import (
    CALLBACK_KEYS,
    EVENTS,
    TRANSITIONS,
    JobModel,
    Lifecycle,
    render_mermaid,
)

__all__ = [
    "CALLBACK_KEYS", "EVENTS", "TRANSITIONS", "Announcer", "Event", "JobModel", "Lifecycle", "Listener",
    "RunFinished", "RunLost", "RunSkipped", "RunStarted", "StateChanged", "render_mermaid",
]
