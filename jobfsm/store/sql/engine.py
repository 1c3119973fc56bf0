"""Connecting to the database: URLs, the engine of each backend, and what an error says.

- **SQLite is used by several processes at once** (two daemons, the CLI, the admin page), so a
  writer must wait, never fail with "database is locked". Every connection runs in WAL mode
  (readers never block the writer) with a ``busy_timeout``; sqlite3's own implicit ``BEGIN``
  is switched off and the store emits its own: ``BEGIN IMMEDIATE`` for writes (the write lock
  is taken up front, where the busy handler can wait for it, instead of on the first write of
  a read transaction, where SQLite gives up at once with ``SQLITE_BUSY``) and a plain
  ``BEGIN`` for reads (one consistent snapshot per call).
- **Pooling.** A ``QueuePool`` on both backends (``pool_pre_ping`` on PostgreSQL, since the
  daemon outlives server restarts). ``sqlite://`` (in memory) uses one shared connection.
- **Errors name the store**: failing to open (bad URL, unreachable server, unwritable path)
  raises :class:`jobfsm.errors.StoreError` with the URL (password masked) and what to check.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from jobfsm.errors import StoreError

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite writer waits for another process's write transaction before giving up."""
PG_CONNECT_TIMEOUT_SECONDS = 10
_USAGE = "use sqlite:///path/to/file.db or postgresql://user:password@host:5432/dbname"


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; everything else is left alone."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (also for URLs SQLAlchemy cannot parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def reason(exc: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's SQL dump and help link."""
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


def hint(exc: BaseException | None, *, sqlite: bool) -> str:
    """What to check when the database failed."""
    if exc is not None and "locked" in reason(exc):
        return ("another process held the database's write lock too long; "
                "add ?timeout=SECONDS to the URL to wait longer")
    if sqlite:
        return "check that the file's folder can be created and written, or pass another --store"
    return ("check that the server is running and reachable from here and that the URL's "
            "host, port, user, password and database are right")


def insert_for(dialect: str) -> Any:
    """The dialect's ``INSERT`` (with ``ON CONFLICT``). PostgreSQL's is imported only when used:
    with the asyncio and asyncpg modules it pulls in, it cost a SQLite daemon ~40 ms of start-up."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert
    return sqlite_insert


def upsert(conn: Connection, table: Table, values: dict[str, Any], keys: Sequence[str]) -> None:
    """``INSERT … ON CONFLICT (keys) DO UPDATE`` every non-key column: atomic on both backends."""
    stmt: Any = insert_for(conn.dialect.name)(table).values(**values)
    set_ = {k: stmt.excluded[k] for k in values if k not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=set_))


def make_engine(url: str, *, masked: str, echo: bool) -> Engine:
    """The engine for ``url`` (normalized); ``masked`` is what messages show of it."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number ("[::1")
        raise StoreError(f"cannot open the store {masked!r}: not a database URL; {_USAGE}") from exc
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"cannot open the store {masked!r}: unsupported database {backend!r}; {_USAGE}")
    kwargs: dict[str, Any] = {"echo": echo}
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _create_sqlite_file(database, masked)
        connect_args["check_same_thread"] = False
        if "timeout" not in parsed.query:
            connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_SECONDS
        if not database or database == ":memory:":
            kwargs["poolclass"] = StaticPool
    else:
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_SECONDS
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot open the store {masked!r}: {reason(exc)}; {_USAGE}") from exc
    if backend == "sqlite":
        event.listen(engine, "connect", sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _create_sqlite_file(database: str, masked: str) -> None:
    try:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        # runs' output tails and audit details: the owner only (SQLite would make it
        # 0644 less the umask; its -wal and -shm files copy this file's mode)
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        raise StoreError(
            f"cannot open the store {masked!r}: cannot create the folder of "
            f"{database!r} ({exc.strerror or exc}); choose a writable path with --store"
        ) from exc


def sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Take transaction control away from sqlite3 and set the pragmas every connection needs."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout itself comes from sqlite3's ``timeout`` (a URL's ?timeout= wins).
        cursor.execute("PRAGMA foreign_keys = ON")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode and str(mode[0]).lower() not in ("wal", "memory"):
            logger.warning("SQLite could not switch to WAL mode (got %r); writers will block readers", mode[0])
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Emit our own BEGIN: IMMEDIATE for writes, so the write lock is waited for up front."""
    write = conn.get_execution_options().get("jobfsm_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
