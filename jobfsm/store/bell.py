"""The trigger doorbell: how a process that asked for a manual run wakes the daemon at once,
so the daemon need not poll the store every second.

- **SQLite** (one host): the requester touches a file beside the database
  (``<file>-trigger``), and the daemon watches that folder with inotify.
- **PostgreSQL** (any host): the requester sends ``NOTIFY jobfsm_triggers``; each daemon keeps
  one connection of its own that ``LISTEN``s.

A bell that cannot be set up (no inotify, a connection that dropped) is no bell: the daemon
then looks for trigger requests every second, as it always may. Ringing never fails a trigger.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from jobfsm.config.watch import DirectoryWatcher
from jobfsm.store.abc import Store

log = logging.getLogger(__name__)

CHANNEL = "jobfsm_triggers"


def _bell_file(database: Path) -> Path:
    return database.with_name(database.name + "-trigger")


def ring(store: Store) -> None:
    """Tell the daemons a trigger request is waiting (best effort: they look anyway)."""
    from jobfsm.store.sql import SqlStore

    if not isinstance(store, SqlStore):
        return
    database = store.sqlite_path
    try:
        if database is not None:
            with open(_bell_file(database), "a"):
                pass  # closing a file opened for writing is the event the daemon watches for
        elif not store.url.startswith("sqlite"):
            connection = store.dedicated_connection()
            try:
                connection.autocommit = True
                connection.execute(f"NOTIFY {CHANNEL}")
            finally:
                connection.close()
    except Exception as exc:  # a bell that does not ring costs a second, never the trigger
        log.debug("trigger bell of %s not rung: %s", store.url, exc)


class Bell:
    """The daemon's side: a descriptor that is readable once someone rang, and :meth:`heard`."""

    def __init__(self, store: Store) -> None:
        from jobfsm.store.sql import SqlStore

        self._store = store if isinstance(store, SqlStore) else None
        self._watcher: DirectoryWatcher | None = None
        self._name = ""
        self._listener: Any = None
        self._missed = False
        """LISTEN has just begun: a ring before it was not heard, so the next look looks anyway."""
        if self._store is not None and self._store.sqlite_path is not None:
            path = _bell_file(self._store.sqlite_path)
            self._name = path.name
            self._watcher = DirectoryWatcher(path.parent)

    @property
    def fd(self) -> int | None:
        if self._watcher is not None:
            return self._watcher.fd
        if self._store is None or self._store.url.startswith("sqlite"):
            return None
        if self._listener is None:
            self._listen()
        return self._listener.fileno() if self._listener is not None else None

    def heard(self) -> bool:
        """Read what woke us; True when it may have been a ring (then look for requests)."""
        if self._watcher is not None:
            names = self._watcher.changes()
            return names is None or self._name in names
        if self._listener is None or self._missed:
            self._missed = False
            return True
        try:
            pgconn = self._listener.pgconn
            pgconn.consume_input()
            rang = False
            while pgconn.notifies() is not None:
                rang = True
            return rang
        except Exception:  # the connection dropped: listen again next time, and look now
            self.close()
            return True

    def _listen(self) -> None:
        assert self._store is not None
        try:
            connection = self._store.dedicated_connection()
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            self._listener = connection
            self._missed = True
        except Exception as exc:
            log.debug("cannot LISTEN on %s: %s", self._store.url, exc)

    @property
    def working(self) -> bool:
        """Whether a ring would be heard now (otherwise the daemon polls)."""
        return self.fd is not None

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.close()
            self._listener = None


__all__ = ["CHANNEL", "Bell", "ring"]
