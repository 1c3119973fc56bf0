"""The SQL store: SQLAlchemy Core over SQLite (one file, the default) or PostgreSQL (several hosts).

One code path for both backends: tables are Core ``Table`` objects and queries Core statements;
the backend differences are the connection set-up (:mod:`.engine`) and the dialect's ``INSERT …
ON CONFLICT``. The modules:

- :mod:`.tables`: the tables, and :class:`UTCDateTime` (aware UTC in, aware UTC out)
- :mod:`.migrations`: the schema version and the steps between versions
- :mod:`.engine`: URLs, the engine of each backend, SQLite's pragmas and ``BEGIN IMMEDIATE``
- :mod:`.core`: :class:`~.core.SqlCore`, the transactions (and batches) every part runs in
- :mod:`.rows`: rows turned into the store's records
- :mod:`.runs`, :mod:`.states`, :mod:`.requests`, :mod:`.audit`, :mod:`.nodes`: the store's
  calls by area, each a subclass of the core; :mod:`.store` joins them into :class:`SqlStore`
"""

from jobfsm.store.sql.engine import (
    PG_CONNECT_TIMEOUT_SECONDS,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    mask_url,
    normalize_url,
)
from jobfsm.store.sql.migrations import MIGRATIONS, SCHEMA_VERSION_KEY, Migration
from jobfsm.store.sql.store import SqlStore
from jobfsm.store.sql.tables import METADATA, UTCDateTime

__all__ = [
    "METADATA", "MIGRATIONS", "PG_CONNECT_TIMEOUT_SECONDS", "SCHEMA_VERSION_KEY", "SQLITE_BUSY_TIMEOUT_SECONDS",
    "Migration", "SqlStore", "UTCDateTime", "mask_url", "normalize_url",
]
