"""What every answer of the admin app carries, and which origins may talk to it.

Design decisions
----------------
**Only the page's own origin.** A request that names an ``Origin`` other than the one it was
sent to (the host and port of its ``Host`` header) is refused with 403 before the app sees
it, websockets included. Gradio would otherwise echo the ``Origin`` back with
``Access-Control-Allow-Credentials: true`` (always behind a proxy; for any local port on
localhost), so a page on another port of the same host, which the ``SameSite`` cookie does not
stop (ports are one site), could read ``/config`` and call the API with the user's cookie.
Requests without an ``Origin`` (scripts, same-origin GETs) are not affected. Behind a proxy, pass
the browser's host and port on (nginx: ``proxy_set_header Host $http_host``).

**A Content-Security-Policy that Gradio works with.** Gradio's page has inline scripts (its
config) and runs ``js=`` handlers through the ``Function`` constructor, so HTML pages get a fresh
nonce per answer, written into each of their ``<script>`` tags, and ``script-src 'nonce-…'
'strict-dynamic' 'unsafe-eval'``: scripts the page's own scripts load are allowed, a script tag
injected into job data is not. Styles may be inline (Svelte sets them). Nothing is loaded from
another host; no page may frame this one. Other answers (JSON, files) get
``default-src 'none'``: an uploaded HTML file opened from the server cannot run anything.

**No caching of job data.** Every answer says ``Cache-Control: no-store`` except Gradio's
static, content-hashed assets: pages, API answers and downloaded output may hold job data and
must not stay in a shared or browser cache after signing out.

**The page learns when its session ended.** :data:`SESSION_SCRIPT` (served at
:data:`SESSION_SCRIPT_PATH`, inserted first in every HTML page's ``<head>`` so it runs before
Gradio's client binds ``fetch``) sends the browser to the sign-in page once, the first time any
request of the page is answered 401, instead of letting every refresh pop up an error.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_SCRIPT_PATH = "/jobfsm/session.js"
CACHEABLE_PREFIXES = ("/assets/", "/static/", "/gradio_api/static/", "/favicon.ico", "/svelte/")
"""Gradio's static files (content-hashed or fixed): the only answers that may be cached."""

HTML_POLICY = (
    "default-src 'self'; "
    "script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "media-src 'self' blob:; worker-src 'self' blob:; frame-src 'self' blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"

SESSION_SCRIPT = """\
(() => {
  // jobfsm: once a request of this page is refused for want of a session, go to the sign-in page
  let leaving = false;
  const signIn = () => {
    if (leaving) { return; }
    leaving = true;
    const here = window.location.pathname + window.location.search;
    window.location.replace("/login?ended=1&next=" + encodeURIComponent(here));
  };
  const ownFetch = window.fetch.bind(window);
  window.fetch = async (...args) => {
    const response = await ownFetch(...args);
    if (response.status === 401 && new URL(response.url, window.location.href).origin === window.location.origin) {
      signIn();
    }
    return response;
  };
})();
"""

_SCRIPT_TAG = re.compile(rb"<script\b", re.IGNORECASE)
_HEAD_TAG = re.compile(rb"<head\b[^>]*>", re.IGNORECASE)
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _host_port(netloc: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"//{netloc}")
        return (parts.hostname or "", parts.port)
    except ValueError:
        return None


def same_origin(scope: Scope, origin: str) -> bool:
    """Whether ``origin`` names the host and port the request was sent to (its ``Host``).

    The scheme is not compared (one port speaks one protocol, and behind a TLS proxy the app sees
    ``http``); a ``Host`` without a port matches the default port of the origin's scheme."""
    host = _header(scope, b"host")
    if not host or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or parts.path not in ("", "/"):
        return False
    theirs, ours = _host_port(parts.netloc), _host_port(host)
    if theirs is None or ours is None or not theirs[0] or theirs[0] != ours[0]:
        return False
    their_port = theirs[1] or int(_DEFAULT_PORTS[parts.scheme])
    return their_port == (ours[1] or int(_DEFAULT_PORTS[parts.scheme]))


def with_nonce(body: bytes, nonce: str) -> bytes:
    """``body`` (an HTML page) with ``nonce`` on every script tag and the session script first."""
    tagged = _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode("ascii") + b'"', body)
    ours = f'<script nonce="{nonce}" src="{SESSION_SCRIPT_PATH}"></script>'.encode("ascii")
    match = _HEAD_TAG.search(tagged)
    if match is None:
        return tagged
    return tagged[: match.end()] + ours + tagged[match.end():]


class PageHeaders:
    """ASGI middleware: refuses foreign origins; adds the policy, no-store and the nonces."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is not None and not same_origin(scope, origin):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4403})
                return
            body = b'{"detail": "cross-origin request refused"}'
            await send({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"), (b"content-security-policy", OTHER_POLICY.encode()),
            ]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _Rewriter(scope, send))


class _Rewriter:
    """Wraps ``send`` for one HTTP answer: headers always; an HTML body is buffered and tagged."""

    def __init__(self, scope: Scope, send: Send) -> None:
        self._send = send
        self._path = str(scope.get("path", "/"))
        self._head = scope.get("method") == "HEAD"
        self._start: Message | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
            is_html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers) and not any(
                k.lower() == b"content-encoding" for k, _ in headers
            )
            if not self._path.startswith(CACHEABLE_PREFIXES):
                headers = [(k, v) for k, v in headers if k.lower() not in (b"cache-control", b"expires", b"etag", b"last-modified")]
                headers.append((b"cache-control", b"no-store"))
            message["headers"] = headers
            if is_html and not self._head:
                self._start = message  # wait for the body: its nonce goes into the policy too
                return
            headers.append((b"content-security-policy", OTHER_POLICY.encode()))
            await self._send(message)
            return
        if message["type"] == "http.response.body" and self._start is not None:
            self._chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            nonce = secrets.token_urlsafe(18)
            body = with_nonce(b"".join(self._chunks), nonce)
            start, self._start = self._start, None
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers += [
                (b"content-length", str(len(body)).encode()),
                (b"content-security-policy", HTML_POLICY.format(nonce=nonce).encode()),
            ]
            start["headers"] = headers
            await self._send(start)
            await self._send({"type": "http.response.body", "body": body})
            return
        await self._send(message)
