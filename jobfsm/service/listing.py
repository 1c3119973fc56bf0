"""The job list (``list_jobs``), computed once for every caller while nothing it shows changed.

The admin page asks for it every few seconds from every open page; with a thousand jobs,
reading and validating every file and reading every job's state each time cost a tenth of a
second per ask. So each part is kept until it can have changed:

- **a file's report** until its ``stat`` changes (inode, size, modification and change times:
  the service writes by renaming a new file into place, editors either rename or rewrite);
  from the second ask on, the folder is watched (inotify, :mod:`jobfsm.config.watch`) and only
  the files it names are looked at again;
- **what the store says** (states, newest runs, pauses) until the store's change mark moves
  (:meth:`Store.change_mark`), or for :data:`STORE_MAX_AGE_SECONDS` where it has none
  (PostgreSQL);
- **the views** until one of the above changed or the clock passes a time a view depends on
  (the earliest next fire, the end of a pause).

Each job's view is made again only when what it shows changed, and a list with a changed view
gets a new :attr:`JobList.generation`, so a caller that rendered one can tell it has nothing
new to render (a store write that changes no view, such as another process's heartbeat, makes
none).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jobfsm.clock import Clock
from jobfsm.config.folder import is_job_file_name, job_entries
from jobfsm.config.jobfiles import JobFile, JobFiles
from jobfsm.config.loader import FileReport, validate_document
from jobfsm.config.watch import DirectoryWatcher
from jobfsm.errors import JobNotFoundError, JobsDirectoryError
from jobfsm.model import JobState
from jobfsm.service.views import JobView, job_view
from jobfsm.store.abc import Changes, RunRecord, Store
from jobfsm.store.control import Pause

STORE_MAX_AGE_SECONDS = 1.0
"""How long what the store said is reused where the store cannot tell that it changed."""


@dataclass(frozen=True, slots=True)
class JobList:
    views: tuple[JobView, ...]
    """Every job file of the folder, valid or not, sorted by name."""
    generation: int
    """Moves whenever the list is rebuilt."""

    def state_of(self, name: str | None) -> JobState | None:
        """The state the list shows for job ``name`` (None: no such job, or none)."""
        return next((v.state for v in self.views if v.name == name), None)


@dataclass(frozen=True, slots=True)
class _Stored:
    states: dict[str, JobState]
    latest: dict[str, RunRecord]
    pauses: dict[str, Pause]
    read_at: float


_StatKey = tuple[int, int, int, int, int]


class JobLister:
    """:meth:`current` is safe from any thread; concurrent callers wait for one computation."""

    def __init__(self, files: JobFiles, store: Store, clock: Clock) -> None:
        self._files, self._store, self._clock = files, store, clock
        self._lock = threading.Lock()
        self._reports: dict[str, tuple[_StatKey, JobFile, FileReport | None]] = {}
        self._stored: _Stored | None = None
        self._changes = Changes(store)
        self._list: JobList | None = None
        self._built_files: tuple[tuple[str, _StatKey], ...] = ()
        self._built_stored: _Stored | None = None
        self._valid_until: datetime | None = None
        self._views: dict[str, tuple[tuple[object, ...], JobView]] = {}
        self._files_seen: tuple[tuple[str, _StatKey], ...] | None = None
        self._watcher: DirectoryWatcher | None = None
        self._asked = 0

    def close(self) -> None:
        with self._lock:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None

    def current(self) -> JobList:
        with self._lock:
            self._asked += 1
            if self._asked == 2:  # asked again: a page that refreshes, worth a watch (one fd)
                self._watcher = DirectoryWatcher(self._files.directory)
                weakref.finalize(self, self._watcher.close)
            now = self._clock.now()
            files = self._read_files()
            stored = self._read_store(now)
            fresh = self._valid_until is None or now < self._valid_until
            if self._list is not None and files == self._built_files and stored is self._built_stored and fresh:
                return self._list
            views = self._views_now(stored, now)
            if self._list is None or views != self._list.views:
                generation = self._list.generation + 1 if self._list is not None else 1
                self._list = JobList(views, generation)
            self._built_files, self._built_stored = files, stored
            self._valid_until = _valid_until(self._list.views)
            return self._list

    def _views_now(self, stored: _Stored, now: datetime) -> tuple[JobView, ...]:
        """Each job's view, made again only when what it shows changed: its file, its state,
        its newest run or pause, or the clock passed its next fire or its pause's end."""
        views: dict[str, tuple[tuple[object, ...], JobView]] = {}
        for name, (key, jf, report) in sorted(self._reports.items()):
            pause = _active(stored.pauses, name, now)
            inputs = (key, stored.states.get(name), stored.latest.get(name), pause)
            known = self._views.get(name)
            if known is not None and known[0] == inputs and _still_valid(known[1], now):
                views[name] = known
            else:
                views[name] = inputs, job_view(jf, inputs[1], now, inputs[2], pause, report=report)
        self._views = views
        return tuple(view for _, view in views.values())

    def _read_files(self) -> tuple[tuple[str, _StatKey], ...]:
        """The folder's job files with their stat keys (the same tuple while the watch saw no
        change); a file seen for the first time or changed since is read and validated again
        (the stat comes first: a write after it shows as a change next time)."""
        changed = self._watcher.changes() if self._watcher is not None else None
        if changed is not None and self._files_seen is not None and not any(map(is_job_file_name, changed)):
            return self._files_seen
        self._files_seen = self._stat_files()
        return self._files_seen

    def _stat_files(self) -> tuple[tuple[str, _StatKey], ...]:
        try:
            entries = job_entries(self._files.directory)
        except FileNotFoundError:
            entries = []
        except OSError as exc:
            raise JobsDirectoryError(self._files.directory, exc) from exc
        seen: list[tuple[str, _StatKey]] = []
        reports: dict[str, tuple[_StatKey, JobFile, FileReport | None]] = {}
        for entry in entries:
            name = entry.name[: -len(".json")]
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue  # deleted while we listed
            key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev)
            known = self._reports.get(name)
            if known is not None and known[0] == key:
                reports[name] = known
            else:
                try:
                    reports[name] = (key, *_read(self._files, Path(entry.path), name))
                except JobNotFoundError:
                    continue
            seen.append((name, key))
        self._reports = reports
        return tuple(seen)

    def _read_store(self, now: datetime) -> _Stored:
        changed = self._changes.look()
        read_at = self._clock.monotonic()
        old = self._stored
        if old is not None and (not changed or (self._changes.blind and read_at - old.read_at < STORE_MAX_AGE_SECONDS)):
            return old
        self._stored = _Stored(self._store.all_states(), self._store.latest_runs(),
                               {p.job: p for p in self._store.list_pauses()}, read_at)
        return self._stored


def _read(files: JobFiles, path: Path, name: str) -> tuple[JobFile, FileReport | None]:
    jf = files.read_path(path, name)
    return jf, (validate_document(jf.document, str(jf.path), stem=jf.name) if jf.problem is None else None)


def _active(pauses: dict[str, Pause], name: str, now: datetime) -> Pause | None:
    pause = pauses.get(name)
    return pause if pause is not None and pause.active(now) else None


def _ends(view: JobView) -> list[datetime]:
    """When ``view`` starts to read differently by the clock alone: its next fire, its pause's end."""
    return [t for t in (view.next_run, view.pause.until if view.pause else None) if t is not None]


def _still_valid(view: JobView, now: datetime) -> bool:
    return all(now < t for t in _ends(view))


def _valid_until(views: tuple[JobView, ...]) -> datetime | None:
    """The first time at which a view of the list would read differently."""
    return min((t for view in views for t in _ends(view)), default=None)

