"""The engine and the transactions every part of the SQL store runs its statements in.

Every call is one transaction: ``BEGIN IMMEDIATE`` for writes on SQLite, a plain ``BEGIN`` for
reads (one consistent snapshot per call). Writers of one process are also serialized by a
``threading.Lock`` on SQLite, so that threads queue in Python rather than in SQLite's
busy-sleep loop; ``sqlite://`` (in memory) serializes every call. :meth:`SqlCore.batch` lets
the calls of one thread share one write transaction, and every failure of the database
becomes :class:`jobfsm.errors.StoreUnavailableError`, which the daemon rides out, except a
value the database refuses, which will be refused again: :class:`jobfsm.errors.StoreValueError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError

from jobfsm.clock import Clock
from jobfsm.errors import StoreError, StoreUnavailableError, StoreValueError
from jobfsm.store.abc import Store
from jobfsm.store.sql.engine import hint, insert_for, make_engine, mask_url, normalize_url, reason
from jobfsm.store.sql.migrations import MIGRATIONS, Migration, migrate, schema_version
from jobfsm.store.sql.tables import job_states


class _BatchState(threading.local):
    """The calling thread's batch: its connection (None outside a batch) and the state writes
    made inside it, one row per job (the last write wins), written when it commits."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.states: dict[str, dict[str, Any]] = {}


class SqlCore(Store):
    """Opening the database, its transactions, and what the other parts share. Each part
    (:mod:`jobfsm.store.sql.runs`, ``states``, ``requests``, ``audit``, ``nodes``) is a
    subclass; :class:`jobfsm.store.sql.SqlStore` joins them."""

    migrations: tuple[Migration, ...] = MIGRATIONS
    """The migration steps this class applies (a subclass may extend them, e.g. in tests)."""

    def __init__(self, url: str, *, echo: bool = False, database_clock: Clock | None = None) -> None:
        self._database_clock = database_clock
        """Tests only: what stands in for the database's clock (several fake hosts on one
        server, each with its own skewed clock). Otherwise PostgreSQL's, or this host's on SQLite."""
        self.url = mask_url(url)
        """The URL with the password masked, for messages and logs."""
        self._batch = _BatchState()
        self._engine = make_engine(normalize_url(url), masked=self.url, echo=echo)
        self._is_sqlite = self._engine.dialect.name == "sqlite"
        self.spans_hosts = not self._is_sqlite
        in_memory = self._is_sqlite and self._engine.url.database in (None, "", ":memory:")
        self._write_lock: threading.Lock | None = threading.Lock() if self._is_sqlite else None
        self._read_lock = self._write_lock if in_memory else None
        self._failure = f"cannot open the store {self.url!r}"
        try:
            with self._write() as conn:
                migrate(conn, self.migrations, self.url)
        except StoreError:
            self._engine.dispose()
            raise
        except (SQLAlchemyError, OSError) as exc:
            self._engine.dispose()
            raise StoreUnavailableError(f"{self._failure}: {reason(exc)}; {self._hint(exc)}") from exc
        self._failure = f"the store {self.url!r} failed"
        self._insert = insert_for(self._engine.dialect.name)
        """The dialect's ``INSERT`` with ``ON CONFLICT``."""
        upsert = self._insert(job_states)
        self._set_state = upsert.on_conflict_do_update(
            index_elements=["job"], set_={"state": upsert.excluded.state, "updated_at": upsert.excluded.updated_at}
        )
        self._prepare()

    def _prepare(self) -> None:
        """Each part builds its statements and its own state here, once the database is open
        (statements on a fire's path are built once and executed with parameters: SQLAlchemy
        then reuses their compiled form)."""

    def __repr__(self) -> str:
        return f"SqlStore({self.url!r})"

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite store (None for PostgreSQL or an in-memory database)."""
        database = self._engine.url.database
        if not self._is_sqlite or not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        with self._read() as conn:
            return schema_version(conn) or 0

    def dedicated_connection(self) -> Any:
        """A DBAPI connection of its own, outside the pool (the daemon's ``LISTEN``); the caller
        closes it."""
        with self._errors():
            fairy = self._engine.raw_connection()
            fairy.detach()
            return fairy.dbapi_connection

    # -- transactions ---------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """The store calls this thread makes inside share one write transaction (the daemon
        records a burst of fires or results at once: one commit instead of one per call)."""
        batch = self._batch
        if batch.conn is not None:
            yield
            return
        with self._write() as conn:
            batch.conn, batch.states = conn, {}
            try:
                yield
                if batch.states:  # in one order on every node: no deadlock between two
                    conn.execute(self._set_state, [batch.states[job] for job in sorted(batch.states)])
            finally:
                batch.conn, batch.states = None, {}

    def _in_batch(self) -> Connection | None:
        return self._batch.conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        conn = self._in_batch()
        if conn is not None:
            yield conn
            return
        with self._read_lock or nullcontext(), self._errors(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite); ``IntegrityError`` passes through."""
        conn = self._in_batch()
        if conn is not None:
            yield conn
            return
        with self._write_lock or nullcontext(), self._errors(), self._engine.connect() as conn:
            conn.execution_options(jobfsm_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Every failure of the database (a driver error, an exhausted pool, a dropped
        connection) becomes :class:`StoreUnavailableError`, which the daemon rides out. A value
        the database or its driver refuses (the DBAPI's ``DataError``; text the driver cannot
        encode, which both drivers raise as ``UnicodeEncodeError`` before sending anything)
        becomes :class:`StoreValueError`: the same value would be refused on every try."""
        try:
            yield
        except IntegrityError:
            raise
        except (DataError, UnicodeEncodeError) as exc:
            raise StoreValueError(f"the store {self.url!r} refused a value: {reason(exc)}") from exc
        except (DBAPIError, SQLAlchemyError) as exc:
            raise StoreUnavailableError(f"{self._failure}: {reason(exc)}; {self._hint(exc)}") from exc

    def _hint(self, exc: BaseException | None = None) -> str:
        return hint(exc, sqlite=self._is_sqlite)

    def close(self) -> None:
        self._engine.dispose()
