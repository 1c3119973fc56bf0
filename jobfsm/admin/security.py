"""Login, sessions and the login rate limit of the admin page.

Design decisions
----------------
**Our own login, not Gradio's ``auth=``.** Gradio's built-in login keeps its tokens in memory
forever and has no rate limit. The admin app is a FastAPI app with a plain HTML login form of its
own; Gradio is mounted inside it with ``auth_dependency`` returning the user of a valid session
(or None, which Gradio answers with 401), and a middleware in front of *every* path refuses a
request without a valid session (401 for API calls, a redirect to ``/login`` for a browser page),
so Gradio routes that do not check ``auth_dependency`` themselves are covered too.

**Sessions** are a signed cookie (itsdangerous ``URLSafeSerializer``) carrying the user name, a
random id and the time it was issued; the server refuses it ``ttl`` seconds after that, whatever
the browser does with the cookie (the issue time is inside the signature, and the wall clock is
injectable so tests expire a session without sleeping). The cookie is ``HttpOnly`` and ``SameSite=Strict`` (no cross-site
request carries it: that is the CSRF defence), and ``Secure`` when asked (behind HTTPS). The
secret is random per server start (every restart logs everybody out) unless a secret file is
given (created with mode 0600). Logging out revokes the session id until it would have expired
anyway. A session also dies when its account is removed: the user is looked up on every request.

**Rate limit.** Failed logins are counted per user name and per client address in a sliding
window (default 5 failures in 5 minutes); while either is over the limit, logins answer 429 before
the password is even checked. State is in memory, per server, bounded by pruning old entries.
"""

from __future__ import annotations

import html
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer

log = logging.getLogger(__name__)

COOKIE_NAME = "jobfsm_session"
DEFAULT_SESSION_TTL = 8 * 3600.0
DEFAULT_MAX_FAILURES = 5
DEFAULT_WINDOW_SECONDS = 300.0


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


@dataclass
class Session:
    user: str
    sid: str


class SessionManager:
    """Signs, checks and revokes session cookies."""

    def __init__(
        self,
        secret: str,
        *,
        ttl: float = DEFAULT_SESSION_TTL,
        secure: bool = False,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._serializer = URLSafeSerializer(secret, salt="jobfsm-admin-session")
        self.ttl = ttl
        self.secure = secure
        self._wall = wall
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, user: str) -> str:
        return self._serializer.dumps(
            {"u": user, "s": secrets.token_urlsafe(16), "t": int(self._wall())}
        )

    def read(self, cookie: str | None) -> Session | None:
        """The session of a valid, unexpired, unrevoked cookie; None otherwise."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        user, sid, issued = data.get("u"), data.get("s"), data.get("t")
        if not isinstance(user, str) or not isinstance(sid, str) or not isinstance(issued, int):
            return None
        age = self._wall() - issued
        if age < -60 or age >= self.ttl:  # expired, or issued in the future (clock moved)
            return None
        with self._lock:
            if sid in self._revoked:
                return None
        return Session(user, sid)

    def revoke(self, cookie: str | None) -> None:
        session = self.read(cookie)
        if session is None:
            return
        now = self._wall()
        with self._lock:
            self._revoked = {s: t for s, t in self._revoked.items() if t > now}
            self._revoked[session.sid] = now + self.ttl

    def cookie_options(self) -> dict[str, object]:
        return {
            "httponly": True,
            "samesite": "strict",
            "secure": self.secure,
            "max_age": int(self.ttl),
            "path": "/",
        }


@dataclass
class _Window:
    times: deque[float] = field(default_factory=deque)


class LoginRateLimiter:
    """At most ``max_failures`` failed logins per user and per address in ``window`` seconds."""

    def __init__(
        self,
        *,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window: float = DEFAULT_WINDOW_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._monotonic = monotonic
        self._failures: dict[str, _Window] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(user: str, address: str) -> tuple[str, str]:
        return (f"user:{user.lower()}", f"addr:{address}")

    def _count(self, key: str, now: float) -> int:
        window = self._failures.get(key)
        if window is None:
            return 0
        while window.times and window.times[0] <= now - self.window:
            window.times.popleft()
        if not window.times:
            del self._failures[key]
            return 0
        return len(window.times)

    def blocked(self, user: str, address: str) -> float:
        """Seconds until a login may be tried again (0 when it may be tried now)."""
        now = self._monotonic()
        wait = 0.0
        with self._lock:
            for key in self._keys(user, address):
                if self._count(key, now) >= self.max_failures:
                    oldest = self._failures[key].times[0]
                    wait = max(wait, oldest + self.window - now)
        return wait

    def failed(self, user: str, address: str) -> None:
        now = self._monotonic()
        with self._lock:
            for key in self._keys(user, address):
                self._failures.setdefault(key, _Window()).times.append(now)
            if len(self._failures) > 10_000:  # bound memory under a spray of names
                for key in list(self._failures):
                    self._count(key, now)

    def clear(self) -> None:
        """Forget every failure (an operator's reset; tests)."""
        with self._lock:
            self._failures.clear()

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(user, "")[0], None)


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
