"""Shared fixtures: a fake clock, a jobs folder with a job writer, the PostgreSQL URL."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Every property runs at least 100 examples; processes and files make per-example time vary.
settings.register_profile(
    "jobfsm", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("jobfsm")


class FakeClock:
    """A clock that only moves when told to; ``wait`` returns at once after advancing."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 1000.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        delta = timedelta(seconds=seconds, **kwargs)
        with self._lock:
            self._now += delta
            self._mono += delta.total_seconds()
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._mono += (when - self._now).total_seconds()
            self._now = when

    def step(self, **kwargs: float) -> datetime:
        """The wall clock is stepped (by hand, by NTP): the monotonic clock does not move."""
        with self._lock:
            self._now += timedelta(**kwargs)
            return self._now

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        if event.is_set():
            return True
        if timeout:
            self.advance(timeout)
        return event.is_set()


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, detail: Callable[[], str] | None = None
) -> object:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout``
    seconds naming ``what`` (and ``detail()``, what was seen instead)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f" ({detail()})" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{seen}")
        time.sleep(0.02)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def job_doc(name: str = "hello", **overrides: Any) -> dict[str, Any]:
    """A valid job document (working directory that exists everywhere)."""
    doc: dict[str, Any] = {
        "name": name,
        "schedule": "*/5 * * * *",
        "command": "echo hello",
        "working_directory": "/tmp",
        "enabled": True,
    }
    doc.update(overrides)
    return doc


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "jobs"
    path.mkdir()
    return path


@pytest.fixture
def write_job(jobs_dir: Path) -> Callable[..., Path]:
    def write(name: str = "hello", *, raw: str | bytes | None = None, **fields: Any) -> Path:
        path = jobs_dir / f"{name}.json"
        if raw is None:
            path.write_text(json.dumps(job_doc(name, **fields), indent=2), encoding="utf-8")
        elif isinstance(raw, bytes):
            path.write_bytes(raw)
        else:
            path.write_text(raw, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("JOBFSM_TEST_POSTGRES")
    if not url:
        pytest.skip("JOBFSM_TEST_POSTGRES is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


@contextmanager
def pg_schema(server: str, *, application_name: str | None = None) -> Iterator[str]:
    """``server`` with its ``search_path`` set to a fresh schema, dropped on the way out (and,
    when given, an ``application_name`` by which a test can find its own connections)."""
    from sqlalchemy import create_engine, text

    from jobfsm.store.sql import normalize_url

    schema = f"jobfsm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(server))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in server else "?"
    url = f"{server}{sep}options=-csearch_path%3D{schema}"
    if application_name:
        url += f"&application_name={application_name}"
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def store_on(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AbstractContextManager[str]:
    """A fresh store's URL on ``backend``: a SQLite file in ``tmp_path``, or a schema of its own
    on the PostgreSQL of ``JOBFSM_TEST_POSTGRES`` (the test skips without it)."""
    if backend == "postgresql":
        return pg_schema(request.getfixturevalue("postgres_url"))
    return nullcontext(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB tmpfs (mounting needs root; elsewhere the test skips). No stand-in without
    root: a file-size limit (``RLIMIT_FSIZE``) makes writes fail with ``EFBIG``, which SQLite
    reports as ``disk I/O error`` (``SQLITE_IOERR_WRITE``), not the ``database or disk is
    full`` (``SQLITE_FULL``, from ``ENOSPC``) of a full disk."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root; RLIMIT_FSIZE is no stand-in, SQLite reads "
                    f"its EFBIG as an I/O error, not a full disk): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:  # unbuffered: closing never fails on the full disk
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    return filler
