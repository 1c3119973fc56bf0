"""Which entries of a jobs folder are job files: the one rule, for the loader, the daemon and
the service alike.

A job file is a regular file (a symbolic link to one counts, under the link's name) whose name
ends in ``.json`` and does not start with a dot (editors' lock and backup files, ``.#x.json``,
and the service's own temporary files are never jobs). FIFOs, devices, folders and links to
them, or to nothing, are not job files.
"""

from __future__ import annotations

import os
from pathlib import Path


def is_job_file_name(name: str) -> bool:
    return name.endswith(".json") and not name.startswith(".")


def job_entries(directory: Path | str) -> list[os.DirEntry[str]]:
    """The job files of ``directory``, sorted by name; raises OSError if it cannot be listed."""
    with os.scandir(directory) as entries:
        return sorted((e for e in entries if is_job_file_name(e.name) and e.is_file()), key=lambda e: e.name)
