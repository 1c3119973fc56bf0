"""The store's bell: a trigger request wakes the daemon at once (a file beside SQLite, NOTIFY on
PostgreSQL), including one made just before the daemon began to listen."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobfsm.store.bell import Bell, ring
from jobfsm.store.sql import SqlStore
from tests.conftest import pg_schema, wait_for

PG_URL = os.environ.get("JOBFSM_TEST_POSTGRES")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
        yield store
        store.close()
        return
    if not PG_URL:
        pytest.skip("set JOBFSM_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL tests")
    with pg_schema(PG_URL) as url:
        store = SqlStore(url)
        yield store
        store.close()


def test_a_request_made_before_the_bell_listens_is_looked_for_and_a_quiet_bell_is_quiet(store: SqlStore) -> None:
    store.request_trigger("early", user="ops", at=datetime.now(UTC))
    ring(store)  # rung before anyone listened: on PostgreSQL a NOTIFY nobody hears
    bell = Bell(store)
    try:
        assert bell.working
        assert bell.heard(), "the first look after listening looks for requests"
        assert not bell.heard(), "nothing rang since"
        ring(store)
        wait_for(bell.heard, 5, "the ring")  # NOTIFY arrives on the listening connection
    finally:
        bell.close()
