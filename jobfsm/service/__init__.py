"""The management service: the one API the CLI and the admin page adapt."""

from __future__ import annotations

from jobfsm.service.nodes import NodeView
from jobfsm.service.output import OutputSource
from jobfsm.service.service import (
    JobManagementService,
    JobView,
    LogEntry,
    RunWaitTimeoutError,
    TriggerTimeoutError,
)

__all__ = [
    "JobManagementService",
    "JobView",
    "LogEntry",
    "NodeView",
    "OutputSource",
    "RunWaitTimeoutError",
    "TriggerTimeoutError",
]
