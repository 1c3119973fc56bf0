"""``jobfsm users`` (accounts of the admin page) and ``jobfsm admin`` (serve it).

``users add`` reads the password from a prompt (twice, not echoed) when standard input is a
terminal, else one line from standard input (for scripts: ``printf '%s\\n' "$PW" | jobfsm users
add ops --role admin``). ``admin`` refuses to start while there is no account, and says how to
add one: there is no default account and no default password. Without the ``admin`` extra
installed, ``admin`` says which module is missing and how to install it (exit 2).
"""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from jobfsm.cli.parser import UsageError

EXIT_OK = 0
EXIT_FAILED = 1
DEFAULT_IDLE_SECONDS = 3600
"""``jobfsm admin --idle-timeout``: a session with no request for an hour ends (README)."""
ADMIN_EXTRA_MODULES = ("fastapi", "gradio", "uvicorn", "itsdangerous")
"""What ``pip install 'jobfsm[admin]'`` brings (pyproject.toml), checked before serving."""


def _missing_extra(name: str | None) -> UsageError:
    return UsageError(
        f"jobfsm admin: error: the admin page needs the 'admin' extra (module {name!r} is not "
        "installed); install it with: pip install 'jobfsm[admin]'"
    )


def _require_admin_extra() -> None:
    """Raise the one-line usage error when a module of the extra cannot be found (found, not
    imported: Gradio takes seconds to import, and the account check comes next)."""
    for name in ADMIN_EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise _missing_extra(name)


def forwarded_ips(text: str) -> list[str]:
    """``--forwarded-allow-ips``: comma-separated addresses or networks (``10.0.0.0/8``), or ``*``."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not an IP address or network; give e.g. 127.0.0.1 or 10.0.0.0/8"
            ) from None
    return items


def users_file(args: argparse.Namespace) -> Path:
    given = getattr(args, "users_file", None)
    return Path(given) if given else Path(args.logs) / "users.json"


def _read_password(username: str, err: TextIO, stdin: TextIO | None = None) -> str:
    from jobfsm.admin.accounts import AccountError

    stdin = stdin if stdin is not None else sys.stdin
    if stdin.isatty():
        first = getpass.getpass(f"Password for {username}: ")
        second = getpass.getpass("Repeat it: ")
        if first != second:
            raise AccountError("the two passwords differ; nothing was changed")
        return first
    line = stdin.readline()
    return line.rstrip("\r\n")


def cmd_users(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jobfsm.admin.accounts import AccountError, Accounts

    accounts = Accounts(users_file(args))
    try:
        if args.users_command == "add":
            password = _read_password(args.username, err)
            account = accounts.add(args.username, password, args.role)
            out.write(f"saved account {account.username!r} with role {account.role.value} in {accounts.path}\n")
        elif args.users_command == "list":
            for account in accounts.list():
                out.write(f"{account.username}\t{account.role.value}\n")
        elif args.users_command == "remove":
            accounts.remove(args.username)
            out.write(f"removed account {args.username!r}\n")
    except AccountError as exc:
        err.write(f"jobfsm users: error: {exc}\n")
        return EXIT_FAILED
    return EXIT_OK


def cmd_admin(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _require_admin_extra()
    from jobfsm.admin.accounts import AccountError, Accounts

    path = users_file(args)
    accounts = Accounts(path)
    try:
        count = len(accounts)
    except AccountError as exc:
        err.write(f"jobfsm admin: error: {exc}\n")
        return EXIT_FAILED
    if count == 0:
        hint = f" --users-file {path}" if getattr(args, "users_file", None) else ""
        err.write(
            f"jobfsm admin: error: no accounts in {str(path)!r}; add one first with "
            f"`jobfsm users{hint} add NAME --role admin` (there is no default account)\n"
        )
        return EXIT_FAILED
    from jobfsm.cli.jobs import file_hooks

    hooks = file_hooks(args)  # before Gradio loads: a jobs folder in no git work tree is one line
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from jobfsm.admin.app import build_app, serve
    except ModuleNotFoundError as exc:  # a dependency of the extra's modules is missing
        raise _missing_extra(exc.name) from None
    from jobfsm.service import JobManagementService
    from jobfsm.store import open_store

    store = open_store(str(args.store))
    service = JobManagementService(args.jobs, args.logs, store, file_hooks=hooks)
    try:
        try:
            app = build_app(
                service, accounts, secret_file=Path(args.logs) / "admin-secret",
                revocations_file=Path(args.logs) / "admin-revoked.json",
                secure_cookies=args.secure_cookies, idle_timeout=float(args.idle_timeout),
            )
        except ModuleNotFoundError as exc:  # Gradio is imported here, on first use
            raise _missing_extra(exc.name) from None
        out.write(f"jobfsm admin on http://{args.host}:{args.port}/ (accounts: {path})\n")
        out.flush()
        serve(app, args.host, args.port, forwarded_allow_ips=args.forwarded_allow_ips)
    finally:
        service.close()
        store.close()
    return EXIT_OK
