"""Mail a notice through ``smtplib``: STARTTLS when the server offers it (or TLS throughout with
``smtps://``), a login when the URL has a user; the subject names the job and the event."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from jobfsm.notify.dispatcher import DeliveryError
from jobfsm.notify.notice import Notice
from jobfsm.notify.settings import SmtpServer


def send(server: SmtpServer, to: tuple[str, ...], notice: Notice, *, timeout: float) -> None:
    """Deliver ``notice`` to ``to`` or raise :class:`DeliveryError` saying why."""
    message = EmailMessage()
    message["Subject"] = notice.subject
    message["From"] = server.sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=server.host)
    message.set_content(notice.text())
    context = ssl.create_default_context()
    try:
        if server.tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if not server.tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if server.user:
                smtp.login(server.user, server.password or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {server.shown()}: {exc}") from None
