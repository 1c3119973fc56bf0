"""jobfsm: a cron replacement whose jobs are JSON files and whose every job is a state machine.

The names in ``__all__`` are the public API. They are imported lazily (PEP 562), so that
``jobfsm --help`` and ``jobfsm validate`` stay fast and never import the heavy parts.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "JobConfig": "jobfsm.model",
    "JobState": "jobfsm.model",
    "Overlap": "jobfsm.model",
    "CatchUp": "jobfsm.model",
    "RunStatus": "jobfsm.model",
    "Outcome": "jobfsm.model",
    "Trigger": "jobfsm.model",
    "Problem": "jobfsm.problems",
    "ConfigLoader": "jobfsm.config.loader",
    "LoadResult": "jobfsm.config.loader",
    "validate_document": "jobfsm.config.loader",
    "next_fire": "jobfsm.cron",
    "fires_between": "jobfsm.cron",
    "describe": "jobfsm.cron",
    "JobExecutor": "jobfsm.runs.executor",
    "JobResult": "jobfsm.runs.executor",
    "JobLogger": "jobfsm.joblog",
    "Lifecycle": "jobfsm.lifecycle",
    "JobModel": "jobfsm.lifecycle",
    "JobManagementService": "jobfsm.service",
    "JobView": "jobfsm.service",
    "create_jobs_section": "jobfsm.admin",
    "Store": "jobfsm.store",
    "open_store": "jobfsm.store",
    "JobfsmError": "jobfsm.errors",
    "CronError": "jobfsm.errors",
    "ValidationError": "jobfsm.errors",
    "JobNotFoundError": "jobfsm.errors",
    "JobAlreadyExistsError": "jobfsm.errors",
    "ConcurrentModificationError": "jobfsm.errors",
    "InvalidTransitionError": "jobfsm.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jobfsm' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
