"""The Gradio admin page: an embeddable jobs section and a standalone app (docs/architecture.md).

Import what you need from the submodules; names here are loaded lazily so that importing
``jobfsm.admin.accounts`` (for ``jobfsm users``) does not import Gradio.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "create_jobs_section": "jobfsm.admin.section",
    "build_app": "jobfsm.admin.app",
    "serve": "jobfsm.admin.app",
    "Accounts": "jobfsm.admin.accounts",
    "Role": "jobfsm.admin.accounts",
    "JobsHandlers": "jobfsm.admin.handlers",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jobfsm.admin' has no attribute {name!r}")
    return getattr(import_module(module), name)
