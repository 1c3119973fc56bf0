"""Exactly one audit entry per change request made through the service.

Every mutating call runs inside :meth:`Auditor.audited`, which records one entry: ``allowed``
when it went through, ``denied`` when it was refused because of the state of things (a stale
version, a disabled job, a missing role, a folder that is no git work tree), ``failed`` when the
request itself was wrong (invalid document, unknown job, taken name). Where the request has a
lifecycle transition applied (on the local runs' thread), the entry is written when the lifecycle
announces it, carrying the request's action and details; the request then knows it was recorded
and does not write another.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobfsm.audit import AuditLog
from jobfsm.clock import Clock
from jobfsm.errors import (
    ConcurrentModificationError,
    InvalidTransitionError,
    PermissionDeniedError,
    ValidationError,
    WorkTreeError,
)
from jobfsm.store.abc import AuditEntry

if TYPE_CHECKING:
    from jobfsm.lifecycle import Event

__all__ = ["AuditContext", "Auditor"]

_DENIED = (ConcurrentModificationError, InvalidTransitionError, PermissionDeniedError, WorkTreeError)
"""Refusals because of the state of things, not of the request."""


@dataclass
class AuditContext:
    """One change request: what its audit entry will say."""

    action: str
    user: str
    job: str | None
    details: dict[str, Any] = field(default_factory=dict)
    recorded: bool = False


class Auditor:
    """The audit of a service's change requests; each request belongs to the thread that made it."""

    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self.audit = audit
        self._clock = clock
        self._local = threading.local()
        self._lent: AuditContext | None = None
        """The request whose work the local runs' thread is doing (its transitions are audited there)."""

    @contextlib.contextmanager
    def audited(self, action: str, user: str, job: str | None) -> Iterator[AuditContext]:
        """Run a change request and record exactly one audit entry for it."""
        ctx = AuditContext(action, user, job)
        outer = getattr(self._local, "ctx", None)
        self._local.ctx = ctx
        try:
            yield ctx
        except _DENIED as exc:
            self._record(ctx, "denied", exc)
            raise
        except ValidationError as exc:
            ctx.details["problems"] = [p.to_dict() for p in exc.problems]
            self._record(ctx, "failed", exc)
            raise
        except Exception as exc:
            self._record(ctx, "failed", exc)
            raise
        finally:
            self._local.ctx = outer
        if not ctx.recorded:
            self._record(ctx, "allowed", None)

    def current(self) -> AuditContext:
        """The request this thread is making (call it inside :meth:`audited`)."""
        ctx: AuditContext | None = getattr(self._local, "ctx", None)
        assert ctx is not None, "called outside audited()"
        return ctx

    @contextlib.contextmanager
    def lent(self) -> Iterator[None]:
        """While this thread's request has its work done on another thread (the local runs'),
        transitions announced there are audited as this request's. Callers serialize it."""
        self._lent = getattr(self._local, "ctx", None)
        try:
            yield
        finally:
            self._lent = None

    def record_denied(self, user: str, action: str, job: str | None, reason: str) -> None:
        """Audit an attempt refused before it reached the service (the admin page's role check)."""
        self.audit.record(AuditEntry(self._clock.now(), user, action, job, "denied", {"reason": reason}))

    def on_transition(self, event: Event) -> None:
        """A state change a person caused is audited: the one entry of the request behind it."""
        from jobfsm.lifecycle import StateChanged

        if not isinstance(event, StateChanged) or event.user is None:
            return
        ctx: AuditContext | None = getattr(self._local, "ctx", None) or self._lent
        if ctx is None:
            self.audit.record(AuditEntry(event.at, event.user, event.event, event.job, "allowed",
                                         {"source": event.source, "dest": event.dest}))
            return
        if ctx.recorded:
            return
        ctx.details.update(transition=event.event, source=event.source, dest=event.dest)
        ctx.recorded = True
        self.audit.record(AuditEntry(event.at, ctx.user, ctx.action, ctx.job, "allowed", ctx.details))

    def _record(self, ctx: AuditContext, outcome: str, exc: BaseException | None) -> None:
        if ctx.recorded:
            return
        if exc is not None:
            ctx.details["reason"] = str(exc)
        ctx.recorded = True
        self.audit.record(AuditEntry(self._clock.now(), ctx.user, ctx.action, ctx.job, outcome, ctx.details))
