"""The store's records of operational control: a job's pause and a request to kill a run.

Both are operational state, not part of a job's definition: they live in the store (tables
``job_pauses`` and ``kill_requests``), never in the job file, so pausing a job for a night of
maintenance leaves no diff in git (see docs/operations-control.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobfsm.clock import iso
from jobfsm.errors import JobfsmError


@dataclass(frozen=True, slots=True)
class Pause:
    """A job's fires are skipped (recorded, with the reason) from ``since`` until ``until``
    (None: until someone resumes it)."""

    job: str
    user: str
    since: datetime
    until: datetime | None = None
    reason: str = ""

    def active(self, at: datetime) -> bool:
        """Whether the pause holds at ``at`` (it ends by itself at ``until``)."""
        return self.until is None or at < self.until

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "user": self.user, "since": iso(self.since),
                "until": iso(self.until), "reason": self.reason}


KILL_PENDING = ""
"""A kill request's ``result`` until the node that runs the run has taken it."""
KILL_SIGNALLED = "signalled"
"""The node sent SIGTERM to the run's process group (SIGKILL follows after the grace period)."""


@dataclass(frozen=True, slots=True)
class KillRequest:
    """A person's request to end one running run, for the node that runs it."""

    id: int
    job: str
    run_id: int
    node: str
    """The node that runs it (the one that takes the request)."""
    user: str
    requested_at: datetime
    claimed_at: datetime | None = None
    result: str = KILL_PENDING
    """:data:`KILL_PENDING`, :data:`KILL_SIGNALLED`, or why nothing was killed
    (``not running here: ...``)."""


class KillRequestNotFoundError(JobfsmError, LookupError):
    def __init__(self, request_id: object) -> None:
        super().__init__(f"no kill request with id {request_id!r} was found")
        self.request_id = request_id


__all__ = ["KILL_PENDING", "KILL_SIGNALLED", "KillRequest", "KillRequestNotFoundError", "Pause"]
