"""Helpers shared by the admin page's HTTP and browser tests: a real uvicorn server in a thread
over a real service (SQLite file, job files in a temporary folder), and Gradio API calls."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from jobfsm.admin.accounts import Accounts
from tests.conftest import job_doc

PASSWORDS = {"alice": "alice-pass-1", "victor": "victor-pass-1"}
"""alice is an admin, victor a viewer."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_job(jobs: Path, name: str, **fields: Any) -> Path:
    path = jobs / f"{name}.json"
    path.write_text(json.dumps(job_doc(name, **fields), indent=2) + "\n", encoding="utf-8")
    return path


@dataclass
class AdminServer:
    url: str
    jobs: Path
    logs: Path
    service: Any
    accounts: Accounts
    app: Any
    wall: list[float]
    """The session clock's offset in seconds (tests move it to expire sessions)."""


@contextmanager
def admin_server(
    root: Path, *, session_ttl: float = 3600.0, forwarded_allow_ips: list[str] | None = None,
    **app_options: Any,
) -> Iterator[AdminServer]:
    """A real admin server on a free port; ``app_options`` go to ``build_app`` (a secret file
    and a revocations file make two servers over one folder share sessions, as restarts do)."""
    import uvicorn

    from jobfsm.admin.app import build_app, server_config
    from jobfsm.service import JobManagementService

    jobs, logs = root / "jobs", root / "logs"
    jobs.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    accounts = Accounts(logs / "users.json")
    if not accounts.path.exists():  # a restart over the same folder keeps its accounts
        accounts.add("alice", PASSWORDS["alice"], "admin")
        accounts.add("victor", PASSWORDS["victor"], "viewer")
    service = JobManagementService(jobs, logs)
    offset = [0.0]
    app = build_app(
        service, accounts, session_ttl=session_ttl, wall=lambda: time.time() + offset[0], **app_options,
    )
    port = free_port()
    server = uvicorn.Server(server_config(
        app, "127.0.0.1", port, forwarded_allow_ips=forwarded_allow_ips, log_level="warning"))
    thread = threading.Thread(target=server.run, name="admin-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/login", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the admin server did not start")
        time.sleep(0.05)
    try:
        yield AdminServer(url, jobs, logs, service, accounts, app, offset)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        service.close()


def login(server: AdminServer, user: str, password: str | None = None) -> requests.Session:
    session = requests.Session()
    response = session.post(
        f"{server.url}/login",
        data={"username": user, "password": password if password is not None else PASSWORDS[user]},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303, response.text
    return session


def call(session: requests.Session, server: AdminServer, api_name: str, data: list[Any], *,
         page: str | None = None) -> tuple[str, Any]:
    """Call a Gradio endpoint over HTTP as a script would (as one open page would, with the
    Gradio session ``page``): ``(event, payload)`` where event is ``complete`` or ``error``."""
    body: dict[str, Any] = {"data": data} if page is None else {"data": data, "session_hash": page}
    response = session.post(f"{server.url}/gradio_api/call/{api_name}", json=body, timeout=30)
    if response.status_code != 200:
        return f"http {response.status_code}", response.text
    event_id = response.json()["event_id"]
    stream = session.get(f"{server.url}/gradio_api/call/{api_name}/{event_id}", timeout=60)
    event, payload = "", None
    for line in stream.text.splitlines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: ") and event in ("complete", "error"):
            payload = json.loads(line[len("data: "):])
    return event, payload
