"""What the admin page can do, with the role check in front of every entry point.

Design decisions
----------------
**One guard.** Every public method of :class:`JobsHandlers` is wrapped by :func:`guarded`, which
finds the ``gr.Request`` among the arguments, resolves the user (``request.username``, which the
standalone app's ``auth_dependency`` fills from the session cookie) and the role (``role_of``), and
refuses before the method body runs: a caller that is not signed in is refused; a signed-in user
without the ``admin`` role who calls a method that changes something (or the audit view) is refused
*and* the attempt goes to ``service.record_denied`` (audited). The Gradio wiring in
:mod:`jobfsm.admin.events` only ever calls these methods, so timers, ``.then()`` steps and
``value=`` callables, which Gradio exposes as HTTP endpoints too, pass the same check. Hiding a
button is a convenience for the viewer, never the check.

**Thin.** No business rule lives here: validation, audit of allowed and failed actions, the
lifecycle, the stale-edit check all belong to the management service. Methods return plain data
(frames, text, problems); formatting for Gradio is the section's business.

**Refusals** raise :class:`Refused` (a ``gr.Error`` whose message is HTML-escaped, because Gradio's
toast renders its message as sanitized HTML and job names must show as typed). Expected failures
of an allowed action (no such job, stale edit, invalid document) are returned as an
:class:`ActionResult` with the message, for the page to show as text.
"""

from __future__ import annotations

import functools
import html
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import gradio as gr

from jobfsm.clock import Clock, SystemClock
from jobfsm.errors import (
    ConcurrentModificationError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobfsmError,
    JobNotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from jobfsm.model import RunStatus
from jobfsm.problems import Problem
from jobfsm.service.listing import JobList

log = logging.getLogger(__name__)

ADMIN = "admin"
VIEWER = "viewer"
ANONYMOUS = "anonymous"

RoleOf = Callable[[gr.Request], "str | None"]
F = TypeVar("F", bound=Callable[..., Any])


class Refused(gr.Error):
    """The caller may not do this. The message is escaped for Gradio's HTML toast."""

    def __init__(self, message: str) -> None:
        super().__init__(html.escape(message), title="Refused")
        self.text = message


def default_role_of(request: gr.Request) -> str | None:
    """With no role check from the host app: a user the host signed in is an admin; nobody else
    may see anything (so an app without authentication shows nothing)."""
    return ADMIN if getattr(request, "username", None) else None


@dataclass
class ActionResult:
    """How an allowed action ended: ``ok`` with a message, or not, with the reason."""

    ok: bool
    message: str
    job: str | None = None
    view: Any = None
    problems: list[Problem] = field(default_factory=list)
    run_id: int | None = None


def guarded(action: str, *, changes: bool, job_arg: int | None = 0) -> Callable[[F], F]:
    """Check the caller before ``fn`` runs (see the module docstring)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: JobsHandlers, *args: Any, **kwargs: Any) -> Any:
            request = next(
                (a for a in (*args, *kwargs.values()) if isinstance(a, gr.Request)), None
            )
            job = None
            if job_arg is not None and len(args) > job_arg and isinstance(args[job_arg], str):
                job = args[job_arg] or None
            self.authorize(request, action, job, changes=changes)
            return fn(self, *args, **kwargs)

        wrapper.__jobfsm_guarded__ = (action, changes)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


class JobsHandlers:
    """The admin page's actions and queries over a ``JobManagementService``."""

    def __init__(
        self, service: Any, *, role_of: RoleOf | None = None, clock: Clock | None = None
    ) -> None:
        self.service = service
        self.role_of = role_of or default_role_of
        self.clock = clock or SystemClock()

    # -- the check --------------------------------------------------------------------------
    @staticmethod
    def user_of(request: gr.Request | None) -> str | None:
        user = getattr(request, "username", None) if request is not None else None
        return str(user) if user else None

    def authorize(self, request: gr.Request | None, action: str, job: str | None, *, changes: bool) -> str:
        """The user name when allowed; raises :class:`Refused` (audited when it changes things)."""
        user = self.user_of(request)
        role = self.role_of(request) if (request is not None and user) else None
        if role is None:
            if changes:
                self._deny(user or ANONYMOUS, action, job, "not signed in")
            raise Refused("You are not signed in (or your session expired); sign in again.")
        if changes and role != ADMIN:
            reason = f"role {role!r} may only look; {action} needs the admin role"
            self._deny(user or ANONYMOUS, action, job, reason)
            raise Refused(f"{user!r} may not {action}: {reason}.")
        return user or ANONYMOUS

    def _deny(self, user: str, action: str, job: str | None, reason: str) -> None:
        log.warning("refused %s of job %s by %s: %s", action, job, user, reason)
        self.service.record_denied(user, action, job, reason)

    def is_admin(self, request: gr.Request) -> bool:
        user = self.user_of(request)
        return bool(user) and self.role_of(request) == ADMIN

    # -- looking ----------------------------------------------------------------------------
    @guarded("view", changes=False, job_arg=None)
    def list_jobs(self, request: gr.Request) -> list[Any]:
        return list(self.service.list_jobs())

    @guarded("view", changes=False, job_arg=None)
    def job_list(self, request: gr.Request) -> JobList:
        """The job list with its generation (:mod:`jobfsm.service.listing`)."""
        return self.service.job_list()

    @guarded("view", changes=False)
    def get_job(self, name: str, request: gr.Request) -> Any:
        return self.service.get_job(name)

    @guarded("view", changes=False)
    def get_source(self, name: str, request: gr.Request) -> str:
        """The job file's text (secrets masked), also when it is invalid."""
        return str(self.service.get_job_source(name))

    @guarded("history", changes=False)
    def history(
        self,
        name: str,
        status: str | None,
        since: datetime | None,
        until: datetime | None,
        request: gr.Request,
        limit: int = 200,
    ) -> list[Any]:
        run_status = RunStatus(status) if status else None
        return list(
            self.service.get_job_history(name, status=run_status, since=since, until=until, limit=limit)
        )

    @guarded("logs", changes=False)
    def logs(
        self, name: str, search: str | None, status: str | None, request: gr.Request, limit: int = 20
    ) -> list[Any]:
        run_status = RunStatus(status) if status else None
        return list(
            self.service.get_job_logs(name, search=search or None, status=run_status, limit=limit)
        )

    @guarded("now", changes=False, job_arg=None)
    def now(self, request: gr.Request) -> datetime:
        return self.clock.now()

    @guarded("audit", changes=True, job_arg=None)
    def audit(self, user: str | None, job: str | None, request: gr.Request, limit: int = 500) -> list[Any]:
        """Admins only (who did what is not for every viewer); a refused look is audited."""
        return list(self.service.list_audit(user=user or None, job=job or None, limit=limit))

    # -- changing ---------------------------------------------------------------------------
    @guarded("enable", changes=True)
    def enable(self, name: str, request: gr.Request) -> ActionResult:
        user = self.user_of(request) or ANONYMOUS
        return self._act(name, lambda: self.service.enable_job(name, user), f"Enabled {name!r}.")

    @guarded("disable", changes=True)
    def disable(self, name: str, request: gr.Request) -> ActionResult:
        user = self.user_of(request) or ANONYMOUS
        return self._act(name, lambda: self.service.disable_job(name, user), f"Disabled {name!r}.")

    @guarded("trigger", changes=True)
    def trigger(self, name: str, request: gr.Request) -> ActionResult:
        user = self.user_of(request) or ANONYMOUS
        result = self._act(name, lambda: self.service.trigger_job(name, user), "")
        if result.ok:
            result.run_id = int(result.view)
            result.view = None
            result.message = f"Triggered {name!r} (run {result.run_id}); the table shows it running, then its outcome."
        return result

    @guarded("delete", changes=True)
    def delete(self, name: str, confirmed: str | None, version: str | None, request: gr.Request) -> ActionResult:
        """Deletes only when ``confirmed`` repeats the job's name (the page's confirm dialog
        sets it; a dismissed dialog sends nothing at all)."""
        user = self.user_of(request) or ANONYMOUS
        if not name:
            return ActionResult(False, "Select a job first.")
        if confirmed != name:
            reason = "deletion was not confirmed"
            self._deny(user, "delete", name, reason)
            return ActionResult(False, f"Job {name!r} was not deleted: {reason}.", job=name)
        return self._act(
            name,
            lambda: self.service.delete_job(name, user, expected_version=version or None),
            f"Deleted {name!r}.", "delete", user,
        )

    @guarded("create", changes=True, job_arg=None)
    def create(self, document: Mapping[str, Any], request: gr.Request) -> ActionResult:
        user = self.user_of(request) or ANONYMOUS
        name = str(document.get("name") or "")
        return self._act(name, lambda: self.service.create_job(dict(document), user), f"Created {name!r}.")

    @guarded("replace", changes=True)
    def replace(self, name: str, document: Mapping[str, Any], version: str | None, request: gr.Request) -> ActionResult:
        """The raw JSON editor: the whole document."""
        user = self.user_of(request) or ANONYMOUS
        if not name:
            return ActionResult(False, "Select a job first.")
        return self._act(
            name,
            lambda: self.service.replace_job(name, dict(document), user, expected_version=version or None),
            f"Saved {name!r}.", "replace", user,
        )

    @guarded("update", changes=True)
    def edit(self, name: str, document: Mapping[str, Any], version: str | None, request: gr.Request) -> ActionResult:
        """The form: the whole job as it holds it (secrets masked as shown); the service keeps
        the masked secrets and writes only what changed."""
        user = self.user_of(request) or ANONYMOUS
        if not name:
            return ActionResult(False, "Select a job first.")
        return self._act(
            name,
            lambda: self.service.edit_job(name, dict(document), user, expected_version=version or None),
            f"Saved {name!r}.", "update", user,
        )

    def _conflict_message(self, name: str, action: str, user: str) -> str:
        """Why the version the page sent is stale: who changed the job (the audit entry that wrote
        the file's current version), or that its file was edited outside the service."""
        lead = "Not deleted" if action == "delete" else "Not saved"
        try:
            view = self.service.get_job(name)
        except JobNotFoundError:
            return f"{lead}: job {name!r} was deleted since you opened it."
        entries = self.service.list_audit(job=name, limit=200)
        entry = next(
            (e for e in entries if e.outcome == "allowed" and (e.details or {}).get("version") == view.version),
            None,
        )
        if entry is not None:
            who = "you changed it in another tab or window" if entry.user == user else f"user {entry.user!r} changed it"
            what = f"{who} ({entry.action}, {entry.time.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)"
        else:
            try:
                when = datetime.fromtimestamp(os.path.getmtime(view.file), UTC)
                at = f", {when:%Y-%m-%d %H:%M:%S} UTC"
            except OSError:
                at = ""
            what = f"its file was edited outside this page (in an editor, git or a script{at})"
        verb = "delete it" if action == "delete" else "apply your change"
        return (
            f"{lead}: job {name!r} was changed since you opened it: {what}. "
            f"Select it again to see the change, then {verb} again."
        )

    def _act(self, name: str, call: Callable[[], Any], ok_message: str, action: str = "", user: str = "") -> ActionResult:
        try:
            value = call()
        except ValidationError as exc:
            return ActionResult(False, "Not saved: fix the fields marked below.", job=name, problems=exc.problems)
        except ConcurrentModificationError:
            return ActionResult(False, self._conflict_message(name, action, user), job=name)
        except (JobNotFoundError, JobAlreadyExistsError, InvalidTransitionError, PermissionDeniedError) as exc:
            return ActionResult(False, str(exc), job=name)
        except JobfsmError as exc:
            log.warning("admin action on %s failed: %s", name, exc)
            return ActionResult(False, str(exc), job=name)
        return ActionResult(True, ok_message, job=name, view=value)
