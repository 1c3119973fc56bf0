"""What the service tells about each change of a job file, before and after it is made.

:class:`~jobfsm.service.JobManagementService` calls every :class:`FileHook` it was given with a
:class:`FileChange`: ``before`` once every check passed, just before the file is written or
removed (raising there refuses the change and nothing is written), and ``after`` once it was.
Both run under the jobs folder's write lock, so hooks of several processes never interleave.
The admin page, the CLI and the Python API share this one path; ``--git-commit``
(:class:`~jobfsm.service.gitcommit.GitCommitter`) is such a hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["FileChange", "FileHook"]


@dataclass(frozen=True, slots=True)
class FileChange:
    """One change of one job file, made by a person."""

    action: str
    """What the audit calls it: ``create``, ``update``, ``replace``, ``enable``, ``disable``, ``delete``."""
    job: str
    path: Path
    """The job's file (gone after a delete)."""
    user: str
    """Who asked for it (the audit's user)."""


class FileHook(Protocol):
    def before(self, change: FileChange) -> None:
        """Raise a :class:`~jobfsm.errors.JobfsmError` to refuse the change (nothing is written)."""
        ...

    def after(self, change: FileChange) -> None:
        """The file was written or removed."""
        ...
