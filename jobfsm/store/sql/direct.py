"""A few statements sent to SQLite on a sqlite3 connection of their own, without SQLAlchemy in
between: an idle daemon's wake-ups are mostly heartbeats, and a pooled SQLAlchemy transaction
costs several times the statement itself.

Each statement is its own transaction (the connection is in autocommit mode): a write statement
takes the write lock when it starts, waiting for it as ``BEGIN IMMEDIATE`` does.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect

from jobfsm.store.sql.tables import UTCDateTime


class DirectSqlite:
    """``statements`` by name, compiled for ``dialect`` on first use; ``connect`` opens the
    connection (again after an error)."""

    def __init__(self, connect: Callable[[], Any], dialect: Dialect, statements: Mapping[str, Any]) -> None:
        self._connect = connect
        self._dialect = dialect
        self._statements = dict(statements)
        self._compiled: dict[str, tuple[str, list[str]]] = {}
        self._connection: Any = None
        self._opened = 0
        """How many times the connection was opened: a reopened one counts its own versions."""
        self._lock = threading.Lock()
        # The column type's own conversions, exactly as SQLAlchemy would make them.
        impl = UTCDateTime().dialect_impl(dialect)
        self._bind_time: Callable[[Any], Any] = impl.bind_processor(dialect) or (lambda value: value)
        self._read_time: Callable[[Any], Any] = impl.result_processor(dialect, None) or (lambda value: value)

    def bind_time(self, value: datetime | None) -> Any:
        return self._bind_time(value)

    def read_time(self, value: Any) -> datetime | None:
        result: datetime | None = self._read_time(value)
        return result

    def execute(self, name: str, params: Mapping[str, Any]) -> list[Any]:
        """The rows the statement returns (times in ``params`` already bound with
        :meth:`bind_time`). Raises :class:`sqlite3.Error`; the connection is then closed and
        opened again on the next call."""
        sql, order = self._compiled.get(name) or self._compile(name)
        return self._run(sql, [params[k] for k in order])

    def data_version(self) -> tuple[int, int]:
        """``PRAGMA data_version`` of this connection, which changes whenever another
        connection commits (not when this one does), paired with the connection's number."""
        [(version,)] = self._run("PRAGMA data_version", [])
        return self._opened, version

    def _run(self, sql: str, values: list[Any]) -> list[Any]:
        with self._lock:
            if self._connection is None:
                self._connection = self._connect()
                self._opened += 1
            try:
                rows: list[Any] = self._connection.execute(sql, values).fetchall()
            except sqlite3.Error:
                self._close()
                raise
            return rows

    def _compile(self, name: str) -> tuple[str, list[str]]:
        compiled = self._statements[name].compile(dialect=self._dialect)
        self._compiled[name] = (str(compiled), list(compiled.positiontup or ()))
        return self._compiled[name]

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
