"""The daemon-wide notification settings, and what a job's ``notify`` makes of them.

``jobfsm start --notify-webhook URL`` (env ``JOBFSM_NOTIFY_WEBHOOK``), ``--notify-email ADDR``
(repeatable), ``--smtp URL`` (env ``JOBFSM_SMTP_URL``) and ``JOBFSM_WEBHOOK_SECRET``. A job's
``notify`` overrides them field by field: its ``webhook`` replaces the daemon's, its ``email``
the daemon's addresses, its ``on`` the default events (``"on": []`` silences the job).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from jobfsm.model import Notify, NotifyEvent

WEBHOOK_SECRET_ENV = "JOBFSM_WEBHOOK_SECRET"
WEBHOOK_ENV = "JOBFSM_NOTIFY_WEBHOOK"
SMTP_ENV = "JOBFSM_SMTP_URL"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF_SECONDS = 2.0
"""A failed delivery is tried again after 2 s, 4 s, 8 s: four attempts over about 14 s."""
_ADDRESS = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+$")
_WEBHOOK = re.compile(r"^https?://[^\s\x00]+$")


class SettingsError(ValueError):
    """A notification option that cannot be used: the message names the option and the fix."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where mail goes: ``smtp://user:password@host:port`` (STARTTLS when the server offers
    it) or ``smtps://...`` (TLS from the first byte)."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    tls: bool = False
    sender: str = "jobfsm@localhost"

    @classmethod
    def parse(cls, url: str, *, option: str = "--smtp") -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SettingsError(f"{option} {url!r} is not an SMTP URL; use smtp://user:password@host:port")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError:
            raise SettingsError(f"{option} {url!r} has a bad port; use smtp://user:password@host:port") from None
        user = unquote(parts.username) if parts.username else None
        sender = f"jobfsm@{parts.hostname}"
        if parts.query.startswith("from="):
            sender = unquote(parts.query[5:])
        return cls(parts.hostname, port, user, unquote(parts.password) if parts.password else None,
                   parts.scheme == "smtps", sender)

    def shown(self) -> str:
        """The URL without its password, for logs."""
        who = f"{self.user}@" if self.user else ""
        return f"{'smtps' if self.tls else 'smtp'}://{who}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class NotifySettings:
    webhook: str | None = None
    email: tuple[str, ...] = ()
    smtp: SmtpServer | None = None
    secret: bytes | None = None
    """HMAC key of the webhook signature (``JOBFSM_WEBHOOK_SECRET``)."""
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    attempts: int = DEFAULT_ATTEMPTS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS

    @classmethod
    def build(
        cls, *, webhook: str | None, email: list[str] | tuple[str, ...] | None, smtp: str | None,
        environ: Mapping[str, str] | None = None,
    ) -> NotifySettings:
        """From the options of ``jobfsm start`` and the environment; a bad value raises
        :class:`SettingsError` naming the option."""
        env = os.environ if environ is None else environ
        webhook = webhook or env.get(WEBHOOK_ENV) or None
        if webhook is not None and not _WEBHOOK.match(webhook):
            raise SettingsError(f"--notify-webhook {webhook!r} is not an http(s) URL; use https://host/path")
        for address in email or ():
            if not _ADDRESS.match(address):
                raise SettingsError(f"--notify-email {address!r} is not an e-mail address; use name@host")
        smtp = smtp or env.get(SMTP_ENV) or None
        secret = env.get(WEBHOOK_SECRET_ENV)
        return cls(
            webhook=webhook, email=tuple(email or ()),
            smtp=SmtpServer.parse(smtp) if smtp else None,
            secret=secret.encode() if secret else None,
        )

    def targets(self, notify: Notify) -> Targets:
        """Who is told what for a job with this ``notify``."""
        return Targets(
            on=frozenset(notify.on),
            webhook=notify.webhook or self.webhook,
            email=notify.email or self.email,
            long_running_seconds=notify.long_running_seconds,
        )


@dataclass(frozen=True, slots=True)
class Targets:
    on: frozenset[NotifyEvent]
    webhook: str | None
    email: tuple[str, ...]
    long_running_seconds: int | None

    def wants(self, event: NotifyEvent) -> bool:
        return event in self.on and (self.webhook is not None or bool(self.email))
