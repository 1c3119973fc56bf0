"""The jobs-folder watcher: which files changed, or "rescan" when it cannot know."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobfsm.config.watch import DirectoryWatcher


@pytest.fixture
def watcher(tmp_path: Path):
    w = DirectoryWatcher(tmp_path)
    if not w.active:
        pytest.skip("inotify is not available here; the scheduler rescans instead")
    assert w.changes() is None  # the first answer is always: rescan
    yield w
    w.close()


def test_nothing_changed_is_an_empty_set(watcher: DirectoryWatcher) -> None:
    assert watcher.changes() == set()


def test_in_place_write_rename_and_delete_are_reported(tmp_path: Path, watcher: DirectoryWatcher) -> None:
    (tmp_path / "a.json").write_text("{}")  # created and written in place
    assert watcher.changes() == {"a.json"}
    (tmp_path / ".b.tmp").write_text("{}")
    os.replace(tmp_path / ".b.tmp", tmp_path / "b.json")  # the atomic way
    assert watcher.changes() == {".b.tmp", "b.json"}
    (tmp_path / "a.json").unlink()
    assert watcher.changes() == {"a.json"}
    os.utime(tmp_path / "b.json")  # touch
    assert watcher.changes() == {"b.json"}
    assert watcher.changes() == set()


def test_a_replaced_folder_means_rescan_then_watching_again(tmp_path: Path) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    w = DirectoryWatcher(folder)
    if not w.active:
        pytest.skip("inotify is not available here")
    assert w.changes() is None
    folder.rename(tmp_path / "old")
    folder.mkdir()
    assert w.changes() is None  # the watch followed the old folder away
    assert w.changes() is None  # watching the new folder at the same path: rescan it once
    assert w.active
    (folder / "x.json").write_text("{}")
    assert w.changes() == {"x.json"}
    w.close()


def test_a_missing_folder_always_means_rescan(tmp_path: Path) -> None:
    w = DirectoryWatcher(tmp_path / "missing")
    assert not w.active
    assert w.changes() is None and w.changes() is None



def test_a_deleted_file_is_unloaded_once_it_stays_gone_and_rm_rf_of_the_folder_unloads_nothing(tmp_path: Path) -> None:
    """``rm -rf jobs`` deletes the files, then the folder: a look in between must not unload
    every job of a folder a deploy writes again; a file deleted alone is unloaded a second later."""
    from jobfsm.daemon.jobfolder import DELETE_SETTLE_SECONDS, JobFolder

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    for name in ("a", "b"):
        (jobs / f"{name}.json").write_text("{}")
    now = [0.0]
    reports: list[str] = []
    folder = JobFolder(jobs, reports.append, lambda: now[0])
    folder.fd  # noqa: B018 - start watching, as the daemon does

    def apply() -> set[str]:
        stats = folder.current()
        assert stats is not None
        folder.applied = stats
        folder.done()
        return {Path(p).name for p in stats}

    assert apply() == {"a.json", "b.json"}
    (jobs / "a.json").unlink()
    assert folder.current() is None, "unloaded at once"
    assert folder.settle_seconds() == DELETE_SETTLE_SECONDS
    now[0] += DELETE_SETTLE_SECONDS
    assert folder.settle_seconds() == 0.0
    assert apply() == {"b.json"}
    assert folder.settle_seconds() is None

    (jobs / "b.json").unlink()  # rm -rf, seen between its two steps
    assert folder.current() is None
    jobs.rmdir()
    now[0] += DELETE_SETTLE_SECONDS
    assert folder.current() is None, "the jobs of a folder that is gone stay loaded"
    assert len(reports) == 1 and "keeping the jobs loaded" in reports[0]
    jobs.mkdir()  # the deploy writes it again
    (jobs / "b.json").write_text("{}")
    stats = folder.current()
    assert stats is not None and set(stats) == {str(jobs / "b.json")}
    folder.close()
