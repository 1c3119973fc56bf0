"""POST a notice to a webhook: one JSON object, signed when a secret is set."""

from __future__ import annotations

import urllib.error
import urllib.request

from jobfsm import __version__
from jobfsm.notify.dispatcher import DeliveryError
from jobfsm.notify.notice import SIGNATURE_HEADER, Notice, signature


def post(url: str, notice: Notice, *, secret: bytes | None, timeout: float) -> None:
    """Deliver ``notice`` or raise :class:`DeliveryError` saying why (any non-2xx answer fails)."""
    body = notice.body()
    headers = {"Content-Type": "application/json", "User-Agent": f"jobfsm/{__version__}"}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DeliveryError(str(exc.reason)) from None
    except (OSError, ValueError) as exc:  # a timeout, a reset, a malformed answer
        raise DeliveryError(str(exc) or type(exc).__name__) from None
