"""Who did what: audit entries to the store and to ``logs/audit.log``, secrets masked.

Design decisions
----------------
**Two sinks, one call.** :meth:`AuditLog.record` writes the entry to the store (where the admin
page and ``jobfsm audit`` query it) and appends it to ``<logs>/audit.log`` as one JSON object per
line (where ``grep``, ``jq`` and log shippers find it). The line carries the store's id, so the
two can be matched.

**One entry, one line.** The JSON is ASCII-only (``\\uXXXX`` escapes), so no Unicode line break
in a user name or a job's description can split an entry for a line-oriented reader.

**Appends are locked across processes.** The daemon, the admin page and several CLI commands may
audit at the same moment. Each line is written with one ``write`` on a file opened in append
mode while holding an exclusive ``fcntl.flock`` on it, so lines never interleave, also not
between processes on one host.

**Masking happens here, once.** :func:`mask_secrets` replaces the value of every mapping key that
looks secret (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``, ``*KEY*``, any case), at any depth, with
:data:`MASK` (:func:`mask_secret_text` does it in a job file's text, valid JSON or not). The
service uses the same functions for everything it returns for display, so a
secret that reached a job file's ``env`` never reaches an audit entry, a log line or a screen.
What a mask sent back in an edit means is the service's rule (:mod:`jobfsm.service.edits`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from jobfsm.errors import LogDirectoryError
from jobfsm.store.abc import AuditEntry, Store

__all__ = [
    "AUDIT_FILE", "MASK", "OUTCOMES", "AuditLog", "is_secret_key", "mask_env", "mask_secret_text", "mask_secrets",
]

log = logging.getLogger(__name__)

MASK = "••••••"
"""What a secret value is shown as."""

AUDIT_FILE = "audit.log"

OUTCOMES = ("allowed", "denied", "failed")
"""``allowed``: done. ``denied``: refused because of who asked or the state of things (a stale
version, a disabled job, a missing role). ``failed``: the request itself was wrong (invalid
document, unknown job, a name that is taken)."""

_SECRET = re.compile(r"PASSWORD|TOKEN|SECRET|KEY", re.IGNORECASE)


def is_secret_key(key: object) -> bool:
    """Whether a key (an ``env`` variable name, say) looks like it holds a secret."""
    return isinstance(key, str) and _SECRET.search(key) is not None


def mask_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an ``env`` mapping with secret-looking values replaced by :data:`MASK`."""
    return {k: (MASK if is_secret_key(k) else v) for k, v in env.items()}


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` (JSON-like data) with the value of every secret-looking key masked,
    at any depth; lists and tuples are walked too. Non-container values come back unchanged."""
    if isinstance(value, Mapping):
        return {
            k: (MASK if is_secret_key(k) and v is not None else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    return value


_KEY_VALUE = re.compile(r'("((?:[^"\\]|\\.)*)"\s*:\s*)"((?:[^"\\]|\\.)*)"')


def mask_secret_text(text: str) -> str:
    """JSON text (valid or not) with every ``"KEY": "value"`` whose key looks secret masked."""
    return _KEY_VALUE.sub(
        lambda m: f'{m.group(1)}"{MASK}"' if is_secret_key(m.group(2)) else m.group(0), text
    )


class AuditLog:
    """Records audit entries in the store and in ``<log_dir>/audit.log``. Thread- and process-safe."""

    def __init__(self, log_dir: Path | str, store: Store) -> None:
        self.path = Path(log_dir) / AUDIT_FILE
        self._store = store
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LogDirectoryError(
                f"cannot create the logs folder '{self.path.parent}' for the audit log: "
                f"{exc.strerror or exc}; create it or pass another --logs folder"
            ) from exc

    def record(self, entry: AuditEntry) -> AuditEntry:
        """Mask, store, append one line; returns the stored entry (with its id)."""
        if entry.outcome not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {OUTCOMES}, not {entry.outcome!r}")
        entry = replace(entry, details=mask_secrets(entry.details))
        stored = self._store.add_audit(entry)
        # ASCII-only JSON: no raw U+2028, U+0085 or other line breaks that a reader splitting on
        # Unicode line boundaries would cut an entry at; one entry is always one line.
        line = json.dumps(stored.to_dict(), ensure_ascii=True, default=str)
        self._append(line + "\n")
        log.debug("audit: %s %s %s %s", stored.user, stored.action, stored.job, stored.outcome)
        return stored

    def _append(self, line: str) -> None:
        data = line.encode("utf-8")
        with self._lock:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            except OSError as exc:
                raise LogDirectoryError(
                    f"cannot write the audit log '{self.path}': {exc.strerror or exc}; "
                    "check the logs folder's permissions"
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    os.write(fd, data)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
