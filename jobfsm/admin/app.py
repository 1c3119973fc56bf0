"""The standalone admin app: FastAPI with our own login, and the jobs section mounted inside.

Design decisions
----------------
**Layers.** ``/login`` (GET form, POST check), ``/logout`` and a guard middleware belong to this
module; everything else is the Gradio app, mounted at ``/`` with ``auth_dependency`` returning the
user of a valid session. The middleware refuses every request without a valid session *before*
Gradio sees it — a browser asking for a page is redirected to ``/login``, anything else gets 401 —
so Gradio routes that do not consult ``auth_dependency`` (queue heartbeats, uploads, static files)
are closed too. The session is re-checked against the accounts file on every request: removing an
account ends its sessions.

**Off by default**: Gradio's monitoring dashboard, run history, MCP server, analytics, the API
docs link in the footer and share links (we never call ``launch``). Responses carry
``X-Frame-Options: DENY`` (the page runs commands: no clickjacking of its buttons) and
``nosniff``; the origin check, the Content-Security-Policy and ``no-store`` are
:mod:`jobfsm.admin.headers`.

**Sign-ins are audited** (action ``sign-in``, outcome ``allowed`` or ``denied``, the client
address and why in the details; never the password, and a name that is no account is written as
``(unknown)``, since it may be a password typed into the wrong field), and so are sign-outs. Failures are throttled
per (user, address) by :mod:`jobfsm.admin.throttle`.

**Forwarded headers.** The client address (for the throttle and the audit) is the TCP peer's
unless the peer is one of ``forwarded_allow_ips`` (``jobfsm admin --forwarded-allow-ips``):
then uvicorn takes it from ``X-Forwarded-For``. The default trusts nobody, not even 127.0.0.1
as uvicorn does, because an SSH tunnel also arrives from 127.0.0.1 and would let anyone behind
it choose their address.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jobfsm.admin.accounts import Accounts
from jobfsm.admin.headers import SESSION_SCRIPT, SESSION_SCRIPT_PATH, PageHeaders
from jobfsm.admin.security import (
    COOKIE_NAME,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_SESSION_TTL,
    Revocations,
    Session,
    SessionManager,
    load_secret,
    login_page,
)
from jobfsm.admin.throttle import FREE_FAILURES, SignInThrottle
from jobfsm.clock import Clock, SystemClock
from jobfsm.store.abc import AuditEntry

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/login", "/logout", "/favicon.ico", SESSION_SCRIPT_PATH})
MAX_FORM_BYTES = 8192
UNKNOWN_USER = "(unknown)"
"""Who the audit says tried to sign in under a name that is no account."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def _cookie(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                return None
            morsel = jar.get(COOKIE_NAME)
            if morsel is not None:
                return morsel.value
    return None


def _wants_html(scope: Scope) -> bool:
    if scope.get("method") != "GET":
        return False
    for key, value in scope.get("headers", []):
        if key == b"accept":
            return b"text/html" in value
    return False


class SessionGuard:
    """ASGI middleware: no valid session, no access (except the login and logout pages)."""

    def __init__(self, app: ASGIApp, sessions: SessionManager, accounts: Accounts) -> None:
        self.app = app
        self.sessions = sessions
        self.accounts = accounts

    def session(self, cookie: str | None) -> Session | None:
        session = self.sessions.read(cookie)
        if session is None or self.accounts.role_of(session.user) is None:
            return None
        return session

    def user_of(self, request: Request) -> str | None:
        """Who signed the request in (Gradio's ``auth_dependency``), or ``None``."""
        session = self.session(request.cookies.get(COOKIE_NAME))
        return None if session is None else session.user

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "/")
        session = self.session(_cookie(scope))
        if session is not None:
            fresh = self.sessions.refreshed(session) if scope["type"] == "http" else None
            extra = [(b"set-cookie", self.sessions.set_cookie_header(fresh))] if fresh else []
            await self.app(scope, receive, _with_headers(send, extra))
            return
        if path in PUBLIC_PATHS:
            await self.app(scope, receive, _with_headers(send))
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        if _wants_html(scope):
            target = path + (("?" + scope["query_string"].decode("latin-1")) if scope.get("query_string") else "")
            location = f"/login?next={quote(target, safe='')}".encode("latin-1")
            await _respond(send, 303, b"", [(b"location", location)])
        else:
            await _respond(
                send, 401, b'{"detail": "not signed in"}', [(b"content-type", b"application/json")]
            )


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]] | None = None) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            if extra and b"set-cookie" not in present:  # sign-in and sign-out set their own
                headers += extra
            message["headers"] = headers
        await send(message)

    return wrapped


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def _safe_next(value: str | None) -> str:
    """Only a local path: never an open redirect to another site."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value:
        return "/"
    return value


def build_app(
    service: Any,
    accounts: Accounts,
    *,
    session_ttl: float = DEFAULT_SESSION_TTL,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    secret_file: Path | str | None = None,
    revocations_file: Path | str | None = None,
    secure_cookies: bool = False,
    free_failures: int = FREE_FAILURES,
    clock: Clock | None = None,
    wall: Callable[[], float] | None = None,
    title: str = "jobfsm admin",
) -> Any:
    """The admin app (a FastAPI application) for ``service``, with ``accounts`` for sign-in.

    ``wall`` (seconds, default :func:`time.time`) drives session expiry and the sign-in throttle,
    so tests move time without sleeping."""
    from jobfsm.admin.downloads import add_output_route

    session_kwargs: dict[str, Any] = {"ttl": session_ttl, "idle": idle_timeout, "secure": secure_cookies}
    throttle_kwargs: dict[str, Any] = {"free_failures": free_failures}
    if wall is not None:
        session_kwargs["wall"] = wall
        throttle_kwargs["monotonic"] = wall
    sessions = SessionManager(load_secret(secret_file), revocations=Revocations(revocations_file), **session_kwargs)
    throttle = SignInThrottle(**throttle_kwargs)
    audit_clock: Clock = clock if clock is not None else getattr(service, "clock", None) or SystemClock()

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title=title)
    guard = SessionGuard(app, sessions, accounts)
    _SignInRoutes(accounts, sessions, throttle, guard, _Auditor(service, audit_clock)).add_to(app)
    add_output_route(app, service, guard.user_of)  # before Gradio takes "/"
    app = _mount_page(app, service, accounts, guard, clock=clock, title=title)
    app.add_middleware(_GuardMiddleware, guard=guard)
    app.add_middleware(PageHeaders)  # outermost: a foreign origin is refused before anything
    app.state.jobfsm_sessions = sessions
    app.state.jobfsm_limiter = throttle
    return app


def _mount_page(
    app: FastAPI, service: Any, accounts: Accounts, guard: SessionGuard, *, clock: Clock | None, title: str
) -> Any:
    """``app`` with the Gradio page (a title, the sign-out button, the jobs section) at ``/``,
    Gradio's extras (monitoring, run history, MCP, API links, server-side rendering) off."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Gradio's queue keeps the last 10,000 events and summarizes them all in a pandas frame
    # after every event, for a monitoring page that is off here: with pages refreshing every few
    # seconds that was most of the admin process's CPU. Kept short and summarized rarely.
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
    import gradio as gr

    from jobfsm.admin.section import CSS, MAX_UPLOAD_BYTES, create_jobs_section

    def role_of(request: Any) -> str | None:
        role = accounts.role_of(getattr(request, "username", None))
        return role.value if role else None

    with gr.Blocks(title=title, analytics_enabled=False, fill_width=True) as blocks:
        with gr.Row():
            gr.Markdown(f"## {title}")
            gr.Button("Sign out", link="/logout", size="sm", scale=0, elem_id="jobfsm-logout")
        create_jobs_section(service, role_of=role_of, open=True, clock=clock)
    calm_queue(blocks)

    return gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth_dependency=guard.user_of,
        footer_links=[],
        run_history=False,
        enable_monitoring=False,
        mcp_server=False,
        ssr_mode=False,
        show_error=True,
        max_file_size=MAX_UPLOAD_BYTES,
        css=CSS,
    )


QUEUE_POLL_SECONDS = 0.1
"""How often Gradio's queue looks for a new event while it has none. It polls, every 1 ms on
Linux (0.05 s on Windows) and its progress loop every 10 ms: over a thousand wake-ups a second,
5 % of a core with no page open. An event now waits at most this long to start."""
PROGRESS_POLL_SECONDS = 0.5
"""The page shows no progress bars (every event is ``show_progress="hidden"``)."""


def calm_queue(blocks: Any) -> None:
    """Slow the polling of ``blocks``' Gradio queue (attributes of Gradio's ``Queue``, which
    ``tests/test_admin_http.py`` checks are still there)."""
    queue = getattr(blocks, "_queue", None)
    if queue is None:
        return
    for name, seconds in (("sleep_when_free", QUEUE_POLL_SECONDS), ("progress_update_sleep_when_free", PROGRESS_POLL_SECONDS)):
        if isinstance(getattr(queue, name, None), float):
            setattr(queue, name, max(getattr(queue, name), seconds))


class _Auditor:
    """Writes sign-ins and sign-outs to the service's audit trail."""

    def __init__(self, service: Any, clock: Clock) -> None:
        self._service = service
        self._clock = clock

    def __call__(self, user: str, action: str, outcome: str, address: str, reason: str = "") -> None:
        details = {"address": address, **({"reason": reason} if reason else {})}
        try:
            self._service.audit.record(AuditEntry(self._clock.now(), user, action, None, outcome, details))
        except Exception:  # the store or logs folder is down: say so, but let the person in or out
            log.exception("could not audit %s of %r from %s", action, user, address)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class _SignInRoutes:
    """``/login`` (the form and its check), ``/logout`` and the session script: the throttle in
    front of the password check, the session cookie, and the audit of each sign-in and sign-out."""

    def __init__(
        self,
        accounts: Accounts,
        sessions: SessionManager,
        throttle: SignInThrottle,
        guard: SessionGuard,
        audit: _Auditor,
    ) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.throttle = throttle
        self.guard = guard
        self.audit = audit

    def add_to(self, app: FastAPI) -> None:
        app.get("/login", response_class=HTMLResponse)(self.form)
        app.get(SESSION_SCRIPT_PATH)(_session_script)
        app.post("/login")(self.submit)
        app.api_route("/logout", methods=["GET", "POST"])(self.sign_out)

    def form(self, request: Request, next: str = "/", ended: str = "") -> Response:
        if self.guard.user_of(request):
            return RedirectResponse(_safe_next(next), status_code=303)
        note = "Your session has ended; sign in again." if ended else ""
        return HTMLResponse(login_page(error=note, next_path=_safe_next(next)))

    async def submit(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return HTMLResponse(login_page(error="Request too large."), status_code=413)
        form = parse_qs(body.decode("utf-8", "replace"))
        username = (form.get("username") or [""])[0].strip()
        password = (form.get("password") or [""])[0]
        target = _safe_next((form.get("next") or ["/"])[0])
        address = _address(request)
        # an unknown name is not written down: people type their password into the name field
        shown = username if self.accounts.role_of(username) is not None else UNKNOWN_USER
        wait = self.throttle.wait(username, address)
        if wait > 0:
            log.warning("sign-in for %r from %s refused: wait %.0f s after failures", shown, address, wait)
            self.audit(shown, "sign-in", "denied", address, "throttled")
            return HTMLResponse(
                login_page(
                    error=f"Too many failed sign-ins; try again in {int(wait) + 1} seconds.",
                    next_path=target, username=username,
                ),
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        account = self.accounts.verify(username, password) if username and password else None
        if account is None:
            self.throttle.failed(username, address)
            log.warning("failed sign-in for %r from %s", shown, address)
            self.audit(shown, "sign-in", "denied", address, "wrong user name or password")
            return HTMLResponse(
                login_page(error="Wrong user name or password.", next_path=target, username=username),
                status_code=401,
            )
        self.throttle.succeeded(username, address)
        log.info("%s signed in from %s", account.username, address)
        self.audit(account.username, "sign-in", "allowed", address)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE_NAME, self.sessions.issue(account.username), **self.sessions.cookie_options())  # type: ignore[arg-type]
        return response

    def sign_out(self, request: Request) -> Response:
        ended = self.sessions.revoke(request.cookies.get(COOKIE_NAME))
        if ended is not None:
            self.audit(ended.user, "sign-out", "allowed", _address(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
        return response


def _session_script() -> Response:
    return Response(SESSION_SCRIPT, media_type="text/javascript")


class _GuardMiddleware:
    """Adapts :class:`SessionGuard` to ``app.add_middleware`` (which builds it around the app)."""

    def __init__(self, app: ASGIApp, guard: SessionGuard) -> None:
        self._guard = SessionGuard(app, guard.sessions, guard.accounts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._guard(scope, receive, send)


def server_config(app: Any, host: str = "127.0.0.1", port: int = 7860, *,
                  forwarded_allow_ips: list[str] | None = None, log_level: str = "info") -> Any:
    """uvicorn's configuration for ``app``: ``X-Forwarded-For`` and ``-Proto`` are read only
    from the peers in ``forwarded_allow_ips`` (none by default)."""
    import uvicorn

    allowed = [ip for ip in (forwarded_allow_ips or []) if ip]
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level,
        proxy_headers=bool(allowed), forwarded_allow_ips=allowed or None,
    )


def serve(app: Any, host: str = "127.0.0.1", port: int = 7860, *,
          forwarded_allow_ips: list[str] | None = None) -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.Server(server_config(app, host, port, forwarded_allow_ips=forwarded_allow_ips)).run()
