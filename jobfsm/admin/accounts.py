"""Admin-page accounts: a small JSON file of users, roles and slow salted password hashes.

Design decisions
----------------
**Where.** One JSON file (default ``<logs>/users.json``), written atomically (temp file in the
same folder, fsync, rename) with mode ``0600`` from the moment it exists: only its owner can read
the hashes. A file that others can read is still used, but a warning says how to fix it.

**How passwords are kept.** ``hashlib.scrypt`` (memory-hard, in the standard library) with a
fresh 16-byte salt per password and the cost parameters stored beside the hash
(``n=2**14, r=8, p=1``, about 16 MiB and a few tens of milliseconds per check), so the cost can be
raised later without breaking existing accounts. Verification compares with
:func:`hmac.compare_digest`. An unknown user is checked against a dummy hash so that the time a
login takes does not tell whether the name exists.

**No defaults.** There is no built-in account and no default password; the admin app refuses to
start while the file has no account (see :func:`jobfsm.cli.admin.cmd_admin`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import tempfile
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from jobfsm.errors import JobfsmError

log = logging.getLogger(__name__)

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
FILE_VERSION = 1


class Role(StrEnum):
    """What an account may do on the admin page."""

    ADMIN = "admin"
    """May look at everything and change jobs (create, edit, delete, enable, disable, trigger)."""
    VIEWER = "viewer"
    """May only look: dashboard, history and logs."""


class AccountError(JobfsmError, ValueError):
    """A bad username, an empty password, an unreadable accounts file."""


@dataclass(frozen=True)
class Account:
    username: str
    role: Role


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> dict[str, Any]:
    """A salted scrypt hash of ``password`` with its parameters, ready for the JSON file."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return {
        "algorithm": "scrypt",
        "n": n,
        "r": r,
        "p": p,
        "salt": base64.b64encode(salt).decode("ascii"),
        "hash": base64.b64encode(key).decode("ascii"),
    }


def check_password(password: str, record: dict[str, Any]) -> bool:
    """Whether ``password`` matches a record made by :func:`hash_password` (constant-time)."""
    try:
        salt = base64.b64decode(record["salt"])
        expected = base64.b64decode(record["hash"])
        n, r, p = int(record["n"]), int(record["r"]), int(record["p"])
    except (KeyError, TypeError, ValueError):
        return False
    if not _storable(password):
        # scrypt pads its key with NULs as HMAC does, so "pw" and "pw\0" would hash alike; a
        # lone surrogate cannot be encoded at all. add() refuses both, so none may match.
        return False
    actual = _scrypt(password, salt, n, r, p, length=len(expected))
    return hmac.compare_digest(actual, expected)


def _storable(password: str) -> bool:
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\0" not in password


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, *, length: int = KEY_BYTES) -> bytes:
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=maxmem)


class Accounts:
    """The accounts file. Thread-safe; re-reads the file on every lookup (it is tiny), so that
    ``jobfsm users add/remove`` takes effect on a running admin page without a restart."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._dummy = hash_password(secrets.token_urlsafe(16))

    def __repr__(self) -> str:
        return f"Accounts({str(self.path)!r})"

    # -- reading -------------------------------------------------------------------------
    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise AccountError(f"cannot read the accounts file {str(self.path)!r}: {exc}") from exc
        try:
            data = json.loads(raw)
            users = data["users"]
            if not isinstance(users, dict):
                raise TypeError("users is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise AccountError(
                f"the accounts file {str(self.path)!r} is not valid ({exc}); "
                "remove it and add the accounts again with `jobfsm users add NAME --role admin`"
            ) from exc
        self._warn_if_readable()
        return users

    def _warn_if_readable(self) -> None:
        try:
            mode = self.path.stat().st_mode
        except OSError:
            return
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "accounts file %s can be read by others (mode %o); run `chmod 600 %s`",
                self.path, stat.S_IMODE(mode), self.path,
            )

    def list(self) -> list[Account]:
        """Every account, sorted by name."""
        with self._lock:
            users = self._read()
        return [Account(name, Role(rec.get("role", "viewer"))) for name, rec in sorted(users.items())]

    def get(self, username: str) -> Account | None:
        with self._lock:
            rec = self._read().get(username)
        return None if rec is None else Account(username, Role(rec.get("role", "viewer")))

    def role_of(self, username: str | None) -> Role | None:
        """The account's role, or None for no such account (or no user)."""
        if not username:
            return None
        account = self.get(username)
        return account.role if account else None

    def __len__(self) -> int:
        return len(self.list())

    def verify(self, username: str, password: str) -> Account | None:
        """The account when ``password`` is right; None otherwise (same time either way)."""
        with self._lock:
            rec = self._read().get(username)
        if rec is None:
            check_password(password, self._dummy)
            return None
        if not check_password(password, rec.get("password", {})):
            return None
        return Account(username, Role(rec.get("role", "viewer")))

    # -- writing -------------------------------------------------------------------------
    def add(self, username: str, password: str, role: Role | str) -> Account:
        """Add the account, or replace its password and role when it exists."""
        if not USERNAME_PATTERN.match(username):
            raise AccountError(
                f"invalid username {username!r}: use letters, digits, '.', '_', '@' or '-', "
                "starting with a letter or digit, at most 64 characters"
            )
        if not password:
            raise AccountError(f"refusing an empty password for {username!r}; give a password")
        if not _storable(password):
            raise AccountError(
                f"refusing a password with a NUL character or an unpaired surrogate for {username!r}; choose another")
        try:
            role = Role(role)
        except ValueError:
            raise AccountError(f"invalid role {role!r}; choose 'admin' or 'viewer'") from None
        record = {"role": role.value, "password": hash_password(password)}
        with self._lock:
            users = self._read()
            users[username] = record
            self._write(users)
        log.info("account %s saved with role %s", username, role.value)
        return Account(username, role)

    def remove(self, username: str) -> None:
        with self._lock:
            users = self._read()
            if username not in users:
                raise AccountError(
                    f"no account named {username!r}; `jobfsm users list` shows the accounts"
                )
            del users[username]
            self._write(users)
        log.info("account %s removed", username)

    def _write(self, users: dict[str, dict[str, Any]]) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": FILE_VERSION, "users": users}, indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
