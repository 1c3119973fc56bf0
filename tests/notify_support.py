"""Real local endpoints for the notification tests: an HTTP server that records webhooks (and
can answer 500 first, or slowly), an SMTP server (aiosmtpd) that records mail, and ports that
refuse or never answer."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GATE_SECONDS = 30.0
"""A gated request is answered after this long at most, should the test never open the gate."""


@dataclass
class Hook:
    body: bytes
    headers: dict[str, str]
    at: float
    """time.monotonic() when it arrived."""
    wall: float = 0.0
    """time.time() when it arrived."""

    @property
    def json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


class Hooks:
    """Records every POST; answers the statuses in ``plan`` first (then 200), after ``delay`` s,
    or, with a ``gate``, once the test opens it (an endpoint as slow as the test needs)."""

    def __init__(self, plan: list[int] | None = None, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.received: list[Hook] = []
        self.attempts = 0
        self.plan = list(plan or [])
        self.delay = delay
        self.gate = gate
        self._lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hooks._lock:
                    hooks.attempts += 1
                    status = hooks.plan.pop(0) if hooks.plan else 200
                if hooks.delay:
                    time.sleep(hooks.delay)
                if hooks.gate is not None:
                    hooks.gate.wait(GATE_SECONDS)
                if status == 200:
                    with hooks._lock:
                        hooks.received.append(Hook(body, dict(self.headers), time.monotonic(), time.time()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def events(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(h.json["event"], h.json["job"]) for h in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def hooks(plan: list[int] | None = None, delay: float = 0.0, gate: threading.Event | None = None) -> Iterator[Hooks]:
    server = Hooks(plan, delay, gate)
    try:
        yield server
    finally:
        if gate is not None:
            gate.set()  # a failed test must not leave a request hanging
        server.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.logins: list[str] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        self.tls.append(session.ssl is not None)
        return "250 OK"


@contextmanager
def smtp_server(*, tls_context: Any = None, login: tuple[str, str] | None = None) -> Iterator[tuple[str, Mailbox]]:
    """A real SMTP server on a free local port; yields its ``smtp://`` URL and the mailbox.
    With ``tls_context`` it offers STARTTLS and requires it; with ``login`` it requires that
    user and password (after STARTTLS)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    mailbox = Mailbox()
    port = free_port()
    extra: dict[str, Any] = {}
    if tls_context is not None:
        extra.update(tls_context=tls_context, require_starttls=True)
    if login is not None:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            ok = (auth_data.login.decode(), auth_data.password.decode()) == login
            mailbox.logins.append(auth_data.login.decode())
            return AuthResult(success=ok)

        extra.update(authenticator=check, auth_required=True)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, server_hostname="127.0.0.1", **extra)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", mailbox
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refusing_url() -> str:
    """A URL whose port refuses connections (nothing listens there)."""
    return f"http://127.0.0.1:{free_port()}/hook"


@contextmanager
def silent_url() -> Iterator[str]:
    """A URL whose server accepts the connection and never answers (a hung endpoint)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        sock.close()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl (the test trusts it by SSL_CERT_FILE)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
