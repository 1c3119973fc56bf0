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
``nosniff``.
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
from jobfsm.admin.security import (
    COOKIE_NAME,
    DEFAULT_MAX_FAILURES,
    DEFAULT_SESSION_TTL,
    DEFAULT_WINDOW_SECONDS,
    LoginRateLimiter,
    SessionManager,
    load_secret,
    login_page,
)
from jobfsm.clock import Clock

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/login", "/logout", "/favicon.ico"})
MAX_FORM_BYTES = 8192

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

    def user(self, cookie: str | None) -> str | None:
        session = self.sessions.read(cookie)
        if session is None or self.accounts.role_of(session.user) is None:
            return None
        return session.user

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "/")
        if path in PUBLIC_PATHS or self.user(_cookie(scope)) is not None:
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


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
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
    secret_file: Path | str | None = None,
    secure_cookies: bool = False,
    max_failures: int = DEFAULT_MAX_FAILURES,
    failure_window: float = DEFAULT_WINDOW_SECONDS,
    clock: Clock | None = None,
    wall: Callable[[], float] | None = None,
    title: str = "jobfsm admin",
) -> Any:
    """The admin app (a FastAPI application) for ``service``, with ``accounts`` for sign-in."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from jobfsm.admin.downloads import add_output_route
    from jobfsm.admin.section import CSS, MAX_UPLOAD_BYTES, create_jobs_section

    session_kwargs: dict[str, Any] = {"ttl": session_ttl, "secure": secure_cookies}
    if wall is not None:
        session_kwargs["wall"] = wall
    sessions = SessionManager(load_secret(secret_file), **session_kwargs)
    limiter = LoginRateLimiter(max_failures=max_failures, window=failure_window)

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title=title)
    guard = SessionGuard(app, sessions, accounts)  # used by auth_dependency below

    def role_of(request: Any) -> str | None:
        role = accounts.role_of(getattr(request, "username", None))
        return role.value if role else None

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        if guard.user(request.cookies.get(COOKIE_NAME)):
            return RedirectResponse(_safe_next(next), status_code=303)
        return HTMLResponse(login_page(next_path=_safe_next(next)))

    @app.post("/login")
    async def login_submit(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return HTMLResponse(login_page(error="Request too large."), status_code=413)
        form = parse_qs(body.decode("utf-8", "replace"))
        username = (form.get("username") or [""])[0].strip()
        password = (form.get("password") or [""])[0]
        target = _safe_next((form.get("next") or ["/"])[0])
        address = request.client.host if request.client else "unknown"
        wait = limiter.blocked(username, address)
        if wait > 0:
            log.warning("login for %r from %s refused: too many failures", username, address)
            return HTMLResponse(
                login_page(
                    error=f"Too many failed sign-ins; try again in {int(wait) + 1} seconds.",
                    next_path=target, username=username,
                ),
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        account = accounts.verify(username, password) if username and password else None
        if account is None:
            limiter.failed(username, address)
            log.warning("failed sign-in for %r from %s", username, address)
            return HTMLResponse(
                login_page(error="Wrong user name or password.", next_path=target, username=username),
                status_code=401,
            )
        limiter.succeeded(username)
        log.info("%s signed in from %s", username, address)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE_NAME, sessions.issue(account.username), **sessions.cookie_options())  # type: ignore[arg-type]
        return response

    @app.api_route("/logout", methods=["GET", "POST"])
    def logout(request: Request) -> Response:
        sessions.revoke(request.cookies.get(COOKIE_NAME))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
        return response

    def auth_dependency(request: Request) -> str | None:
        return guard.user(request.cookies.get(COOKIE_NAME))

    add_output_route(app, service, auth_dependency)  # before Gradio takes "/"

    with gr.Blocks(title=title, analytics_enabled=False, fill_width=True) as blocks:
        with gr.Row():
            gr.Markdown(f"## {title}")
            gr.Button("Sign out", link="/logout", size="sm", scale=0, elem_id="jobfsm-logout")
        create_jobs_section(service, role_of=role_of, open=True, clock=clock)

    app = gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth_dependency=auth_dependency,
        footer_links=[],
        run_history=False,
        enable_monitoring=False,
        mcp_server=False,
        ssr_mode=False,
        show_error=True,
        max_file_size=MAX_UPLOAD_BYTES,
        css=CSS,
    )
    app.add_middleware(_GuardMiddleware, guard=guard)
    app.state.jobfsm_sessions = sessions
    app.state.jobfsm_limiter = limiter
    return app


class _GuardMiddleware:
    """Adapts :class:`SessionGuard` to ``app.add_middleware`` (which builds it around the app)."""

    def __init__(self, app: ASGIApp, guard: SessionGuard) -> None:
        self._guard = SessionGuard(app, guard.sessions, guard.accounts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._guard(scope, receive, send)


def serve(app: Any, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="info", proxy_headers=True)
    uvicorn.Server(config).run()
