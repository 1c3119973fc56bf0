"""Where jobfsm keeps its files when no option or environment variable says: the jobs and logs
folders, and the store, a SQLite file in the logs folder."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_JOBS", "DEFAULT_LOGS", "STORE_FILE", "default_store_url"]

DEFAULT_JOBS = "jobs"
"""The jobs folder (``--jobs``, ``JOBFSM_JOBS``), relative to the working directory."""
DEFAULT_LOGS = "logs"
"""The logs folder (``--logs``, ``JOBFSM_LOGS``), relative to the working directory."""
STORE_FILE = "jobfsm.db"
"""The default store's file name in the logs folder."""


def default_store_url(logs: Path | str) -> str:
    """The store used when none is given (``--store``, ``JOBFSM_STORE``): ``sqlite:///<logs>/jobfsm.db``."""
    return f"sqlite:///{Path(logs) / STORE_FILE}"
