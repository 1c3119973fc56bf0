"""The job list the admin page asks for every few seconds is computed once while nothing it
shows changed, and is never stale: a file edited in any way, a state written by another
process, a next fire or a pause's end that passes all show at the next ask."""

from __future__ import annotations

import json
import os
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobfsm.model import JobState
from jobfsm.service.listing import STORE_MAX_AGE_SECONDS
from jobfsm.service.service import JobManagementService
from jobfsm.store.control import Pause
from jobfsm.store.memory import MemoryStore
from jobfsm.store.sql import SqlStore
from tests.conftest import FakeClock, job_doc

T0 = datetime(2026, 3, 2, 0, 59, 30, tzinfo=UTC)


def write(jobs: Path, name: str, **fields: object) -> Path:
    path = jobs / f"{name}.json"
    path.write_text(json.dumps(job_doc(name, **fields)), encoding="utf-8")
    return path


def view(service: JobManagementService, name: str):
    return next(v for v in service.list_jobs() if v.name == name)


class BlindStore(MemoryStore):
    """A store that cannot tell whether it changed (as PostgreSQL)."""

    def change_mark(self) -> Hashable | None:
        return None


def test_nothing_changed_gives_the_same_list(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    write(jobs, "a")
    service = JobManagementService(jobs, tmp_path / "logs", MemoryStore(), clock=FakeClock(T0))
    first = service.job_list()
    assert service.job_list() is first


def test_a_file_rewritten_in_place_added_or_removed_shows_at_once(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    path = write(jobs, "a", schedule="0 1 * * *")
    service = JobManagementService(jobs, tmp_path / "logs", MemoryStore(), clock=FakeClock(T0))
    assert view(service, "a").config.schedule == "0 1 * * *"
    with path.open("r+", encoding="utf-8") as f:  # same size, same inode: an editor that rewrites
        text = f.read()
        f.seek(0)
        f.write(text.replace("0 1 * * *", "0 2 * * *"))
    assert view(service, "a").config.schedule == "0 2 * * *"
    path.write_text("{not json", encoding="utf-8")
    assert view(service, "a").config is None and view(service, "a").problems
    write(jobs, "b")
    os.unlink(path)
    assert [v.name for v in service.list_jobs()] == ["b"]


def test_a_state_written_by_another_process_shows_at_once(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    write(jobs, "a")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    mine, daemon = SqlStore(url), SqlStore(url)
    try:
        service = JobManagementService(jobs, tmp_path / "logs", mine, clock=FakeClock(T0))
        assert view(service, "a").state is JobState.IDLE
        daemon.set_state("a", JobState.RUNNING, T0)
        assert view(service, "a").state is JobState.RUNNING
    finally:
        mine.close()
        daemon.close()


def test_a_store_that_cannot_tell_is_read_again_within_its_maximum_age(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    write(jobs, "a")
    store, clock = BlindStore(), FakeClock(T0)
    service = JobManagementService(jobs, tmp_path / "logs", store, clock=clock)
    assert view(service, "a").state is JobState.IDLE
    store.set_state("a", JobState.RUNNING, T0)
    clock.advance(STORE_MAX_AGE_SECONDS)
    assert view(service, "a").state is JobState.RUNNING


def test_the_next_fire_and_a_pauses_end_move_with_the_clock(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    write(jobs, "a", schedule="0 1 * * *")
    store, clock = MemoryStore(), FakeClock(T0)
    store.set_pause(Pause("a", "alice", T0, until=T0 + timedelta(minutes=10)))
    service = JobManagementService(jobs, tmp_path / "logs", store, clock=clock)
    before = view(service, "a")
    assert before.next_run == datetime(2026, 3, 2, 1, 0, tzinfo=UTC) and before.pause is not None
    clock.advance(31)  # past the fire: nothing in the folder or the store changed
    assert view(service, "a").next_run == datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    assert view(service, "a").pause is not None
    clock.advance(minutes=10)
    assert view(service, "a").pause is None


def test_a_store_write_that_changes_no_view_keeps_the_generation(tmp_path: Path) -> None:
    """A daemon's heartbeat moves the store's mark every few seconds: the list is read again
    but stays the same list, so the admin page has nothing to render or send."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    write(jobs, "a")
    write(jobs, "b")
    store = MemoryStore()
    service = JobManagementService(jobs, tmp_path / "logs", store, clock=FakeClock(T0))
    first = service.job_list()
    store.beat("daemon:1", pid=1, host="here", at=T0)
    assert service.job_list().generation == first.generation
    store.set_state("b", JobState.RUNNING, T0)
    moved = service.job_list()
    assert moved.generation == first.generation + 1
    assert moved.views[0] is first.views[0], "the unchanged job's view is kept"
    assert moved.views[1].state is JobState.RUNNING
