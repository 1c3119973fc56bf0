"""Sign-in sessions of the admin page and its sign-in form.

Design decisions
----------------
**Our own login, not Gradio's ``auth=``.** Gradio's built-in login keeps its tokens in memory
forever and has no rate limit. The admin app is a FastAPI app with a plain HTML login form of its
own; Gradio is mounted inside it with ``auth_dependency`` returning the user of a valid session
(or None, which Gradio answers with 401), and a middleware in front of *every* path refuses a
request without a valid session (401 for API calls, a redirect to ``/login`` for a browser page),
so Gradio routes that do not check ``auth_dependency`` themselves are covered too.

**Sessions** are a signed cookie (itsdangerous ``URLSafeSerializer``) carrying the user name, a
random id, the time it was issued and the time it was last used. The server refuses it ``ttl``
seconds after sign-in (the lifetime, default 8 hours) and ``idle`` seconds after its last use
(default 1 hour), whatever the browser does with the cookie: both times are inside the signature,
and the wall clock is injectable so tests expire a session without sleeping. The last-use time is
refreshed (a new cookie on the response) at most once a minute. An open page polls every few
seconds, so it counts as use: the idle timeout ends the sessions of closed pages and sleeping
laptops, the lifetime ends every session. The cookie is ``HttpOnly`` and ``SameSite=Strict``, and
``Secure`` when asked (behind HTTPS). The secret is random per server start unless a secret file
is given (created with mode 0600).

**Signing out is remembered across restarts.** The id of a signed-out session is kept until the
session would have expired anyway, in memory and, when a revocations file is given (``jobfsm
admin`` uses ``<logs>/admin-revoked.json``, mode 0600), on disk: a copied cookie stays dead after
the admin restarts with the same secret. The file is re-read when it changes, so several admin
processes sharing a logs folder agree. A session also dies when its account is removed: the user
is looked up on every request.
"""

from __future__ import annotations

import html
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer

log = logging.getLogger(__name__)

COOKIE_NAME = "jobfsm_session"
DEFAULT_SESSION_TTL = 8 * 3600.0
DEFAULT_IDLE_TIMEOUT = 3600.0
REFRESH_AFTER_SECONDS = 60.0
"""How stale a cookie's last-use time may get before a response carries a fresh cookie."""
CLOCK_SKEW_SECONDS = 60.0


def load_secret(path: Path | str | None) -> str:
    """A random secret, or the one kept in ``path`` (created with mode 0600 when missing)."""
    if path is None:
        return secrets.token_urlsafe(32)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret


@dataclass(frozen=True)
class Session:
    user: str
    sid: str
    issued: int
    """When the user signed in (wall-clock seconds)."""
    active: int
    """When the cookie was last refreshed by a request."""


class Revocations:
    """Ids of signed-out sessions, each until the session would have expired anyway; kept in
    ``path`` (JSON, mode 0600) when given, else in memory only."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._until: dict[str, float] = {}
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _reload(self) -> None:
        stamp = self._stamp()
        if self.path is None or stamp == self._seen:
            return
        self._seen = stamp
        if stamp is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            revoked = data["revoked"]
            self._until = {str(k): float(v) for k, v in revoked.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # keep what we know rather than reopening signed-out sessions
            log.warning("revocations file %s unreadable (%s); keeping %d known", self.path, exc, len(self._until))

    def __contains__(self, sid: str) -> bool:
        with self._lock:
            self._reload()
            return sid in self._until

    def add(self, sid: str, until: float, now: float) -> None:
        with self._lock:
            self._reload()
            self._until = {s: t for s, t in self._until.items() if t > now}
            self._until[sid] = until
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"revoked": self._until}, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._seen = self._stamp()


class SessionManager:
    """Signs, checks, refreshes and revokes session cookies."""

    def __init__(
        self,
        secret: str,
        *,
        ttl: float = DEFAULT_SESSION_TTL,
        idle: float = DEFAULT_IDLE_TIMEOUT,
        secure: bool = False,
        wall: Callable[[], float] = time.time,
        revocations: Revocations | None = None,
    ) -> None:
        self._serializer = URLSafeSerializer(secret, salt="jobfsm-admin-session")
        self.ttl = ttl
        self.idle = idle
        self.secure = secure
        self._wall = wall
        self.revocations = revocations if revocations is not None else Revocations()

    def issue(self, user: str) -> str:
        now = int(self._wall())
        return self._dump(Session(user, secrets.token_urlsafe(16), now, now))

    def _dump(self, session: Session) -> str:
        return self._serializer.dumps({"u": session.user, "s": session.sid, "t": session.issued, "a": session.active})

    def read(self, cookie: str | None) -> Session | None:
        """The session of a valid, unexpired, not idle, unrevoked cookie; None otherwise."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        user, sid, issued, active = data.get("u"), data.get("s"), data.get("t"), data.get("a")
        if not isinstance(user, str) or not isinstance(sid, str):
            return None
        if not isinstance(issued, int) or not isinstance(active, int):
            return None
        now = self._wall()
        if issued - now > CLOCK_SKEW_SECONDS or active - now > CLOCK_SKEW_SECONDS:
            return None  # from the future: the clock moved, or a forgery with the secret
        if now - issued >= self.ttl or now - active >= self.idle:
            return None
        if sid in self.revocations:
            return None
        return Session(user, sid, issued, active)

    def refreshed(self, session: Session) -> str | None:
        """A new cookie with the last-use time moved to now, when it is due; else None."""
        now = int(self._wall())
        if now - session.active < min(REFRESH_AFTER_SECONDS, self.idle / 4):
            return None
        return self._dump(Session(session.user, session.sid, session.issued, now))

    def revoke(self, cookie: str | None) -> Session | None:
        """End the cookie's session for good; returns it (None when it was not valid)."""
        session = self.read(cookie)
        if session is None:
            return None
        self.revocations.add(session.sid, session.issued + self.ttl + CLOCK_SKEW_SECONDS, self._wall())
        return session

    def cookie_options(self) -> dict[str, object]:
        return {
            "httponly": True,
            "samesite": "strict",
            "secure": self.secure,
            "max_age": int(self.ttl),
            "path": "/",
        }

    def set_cookie_header(self, value: str) -> bytes:
        """The ``Set-Cookie`` value for ``value`` with :meth:`cookie_options`, for raw ASGI sends."""
        parts = [f"{COOKIE_NAME}={value}", "Path=/", f"Max-Age={int(self.ttl)}", "HttpOnly", "SameSite=Strict"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts).encode("latin-1")


def login_page(*, error: str = "", next_path: str = "/", username: str = "") -> str:
    """The login form. Everything interpolated is HTML-escaped."""
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jobfsm admin: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f3f4f6; display: flex;
       justify-content: center; align-items: center; min-height: 100vh; margin: 0; }}
form {{ background: white; padding: 2rem; border-radius: 8px; box-shadow: 0 2px 8px #0002;
       min-width: 18rem; }}
h1 {{ font-size: 1.3rem; margin-top: 0; }}
label {{ display: block; margin: .8rem 0 .2rem; }}
input {{ width: 100%; padding: .5rem; box-sizing: border-box; }}
button {{ margin-top: 1.2rem; width: 100%; padding: .6rem; background: #f97316; color: white;
         border: 0; border-radius: 4px; font-size: 1rem; cursor: pointer; }}
.error {{ color: #b91c1c; }}
</style></head>
<body><form method="post" action="login">
<h1>jobfsm admin</h1>{err}
<input type="hidden" name="next" value="{html.escape(next_path)}">
<label for="username">User</label>
<input id="username" name="username" autocomplete="username" required value="{html.escape(username)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></body></html>
"""
