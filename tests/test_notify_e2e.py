"""A real ``jobfsm start`` stopped across a minute boundary and started again tells one
``missed`` (real time, real processes, a real local HTTP server). Slow: it waits for minutes."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobfsm.model import RunStatus
from jobfsm.store.sql import SqlStore
from tests.conftest import wait_for
from tests.notify_support import hooks
from tests.test_daemon_e2e import _no_daemon_outlives_its_test, start, write  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


def test_a_daemon_down_across_a_minute_boundary_tells_one_missed_on_restart(tmp_path: Path) -> None:
    jobs, logs, url = tmp_path / "jobs", tmp_path / "logs", f"sqlite:///{tmp_path / 'store.db'}"
    jobs.mkdir()
    write(jobs, "every-minute", schedule="* * * * *", command="true")
    store = SqlStore(url)
    with hooks() as server:
        daemon = start(jobs, logs, url, "--notify-webhook", server.url)
        wait_for(lambda: store.list_runs("every-minute"), 75, "a first fire")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        stopped = datetime.now(UTC)
        wait_for(lambda: datetime.now(UTC).replace(second=0, microsecond=0) > stopped.replace(second=0, microsecond=0)
                 and datetime.now(UTC).second >= 2, 70, "the next minute to pass with no daemon")
        daemon = start(jobs, logs, url, "--notify-webhook", server.url)
        wait_for(lambda: server.received, 15, "the missed notice")
        time.sleep(2)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    assert server.events() == [("missed", "every-minute")]
    body = server.received[0].json
    assert "missed while the daemon was down: 1 fire(s) from" in body["message"], body["message"]
    assert body["run"]["status"] == RunStatus.SKIPPED.value
    store.close()
