"""The one exception tree of jobfsm.

Every error a user can cause derives from :class:`JobfsmError`, and each child also
subclasses the builtin that matches its meaning, so callers that only know Python's
builtins still catch it sensibly. Messages are built from ids with ``!r`` and say what
would fix the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobfsm.problems import Problem


class JobfsmError(Exception):
    """Root of every error jobfsm raises on purpose."""


class CronError(JobfsmError, ValueError):
    """A cron expression that cannot be parsed or never fires.

    ``field`` names the cron field at fault (``minute``, ``hour``, ``day-of-month``,
    ``month``, ``day-of-week``) or is ``None`` when the expression as a whole is wrong.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FireTimeRangeError(CronError):
    """A fire time outside the years jobfsm computes (1 to 9998): a schedule that fires only
    beyond them, or a question asked after (or before) them."""


class ValidationError(JobfsmError, ValueError):
    """A job definition failed validation; ``problems`` holds every one of them.

    The message lists at most :data:`~jobfsm.problems.MAX_PROBLEMS_PER_FILE` of them (a
    document of 10,000 unknown keys must not make a message of 10,000 parts)."""

    def __init__(self, problems: Sequence[Problem], subject: str = "job") -> None:
        from jobfsm.problems import cap_problems

        self.problems = list(problems)
        lines = "; ".join(f"{p.json_path}: {p.message}" for p in cap_problems(self.problems))
        super().__init__(f"{subject} is invalid: {lines}")


class JobNotFoundError(JobfsmError, LookupError):
    def __init__(self, name: str) -> None:
        from jobfsm.problems import quote

        super().__init__(f"no job named {quote(name, 64)} was found; `jobfsm status` lists the jobs")
        self.name = name


class JobAlreadyExistsError(JobfsmError, ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a job named {name!r} already exists; edit it or choose another name")
        self.name = name


class ConcurrentModificationError(JobfsmError, RuntimeError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"job {name!r} was changed by someone else since you read it; "
            "reload it and apply your change again"
        )
        self.name = name


class InvalidTransitionError(JobfsmError, RuntimeError):
    """A lifecycle event that the job's current state does not allow."""


class RunNotFoundError(JobfsmError, LookupError):
    def __init__(self, run_id: object) -> None:
        super().__init__(f"no run with id {run_id!r} was found")
        self.run_id = run_id


class TriggerRequestNotFoundError(JobfsmError, LookupError):
    def __init__(self, request_id: object) -> None:
        super().__init__(f"no trigger request with id {request_id!r} was found")
        self.request_id = request_id


class JobsDirectoryError(JobfsmError, OSError):
    """The jobs folder itself is missing or unreadable (bad files are problems, not errors)."""

    def __init__(self, directory: object, cause: OSError) -> None:
        reason = cause.strerror or str(cause)
        super().__init__(f"cannot read jobs folder '{directory}': {reason}")
        self.directory = directory


class LogDirectoryError(JobfsmError, OSError):
    """The logs folder cannot be created or written."""


class StoreError(JobfsmError, RuntimeError):
    """The store cannot be opened or used (bad URL, unreachable server, newer schema)."""


class StoreUnavailableError(StoreError):
    """The database itself failed (unreachable, connection dropped, locked too long, disk full):
    worth trying again later, unlike a bad URL or a schema from a newer jobfsm."""


class StoreValueError(StoreError, ValueError):
    """The database refused a value (PostgreSQL's text holds no NUL, a string longer than its
    column, a number out of its type's range, text that cannot be encoded): trying again gives
    the same answer, so this is no outage; the daemon records the run's result without the
    texts it cannot store."""


class PermissionDeniedError(JobfsmError, PermissionError):
    """A user without the needed role tried to change something."""


class WorkTreeError(JobfsmError, RuntimeError):
    """``--git-commit``: the jobs folder is not in a git work tree, or its work tree refuses a
    change (the job's file has changes not committed, a conflict, a merge in progress); nothing
    was written."""


class CommitFailedError(JobfsmError, RuntimeError):
    """``--git-commit``: the job's file was changed, but git did not commit it (git's reason in
    the message)."""
