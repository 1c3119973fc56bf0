"""The management service: the one API the CLI and the admin page adapt."""

from __future__ import annotations

from jobfsm.service.nodes import NodeView
from jobfsm.service.output import OutputSource
from jobfsm.service.service import JobManagementService
from jobfsm.service.views import JobView, LogEntry
from jobfsm.service.waits import RunWaitTimeoutError, TriggerTimeoutError

__all__ = [
    "JobManagementService",
    "JobView",
    "LogEntry",
    "NodeView",
    "OutputSource",
    "RunWaitTimeoutError",
    "TriggerTimeoutError",
]
