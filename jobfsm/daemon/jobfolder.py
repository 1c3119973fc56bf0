"""What changed in the jobs folder since the daemon last applied it: the files as they are now
(modification time, size, inode), from the inotify watcher's list of changed names when it has
one (cheap) or from a full scan, against the snapshot of what was applied."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from jobfsm.config.folder import is_job_file_name, job_entries
from jobfsm.config.watch import DirectoryWatcher
from jobfsm.errors import JobsDirectoryError

FileStat = tuple[int, int, int]


class JobFolder:
    def __init__(self, directory: Path, report: Callable[[str], None]) -> None:
        """``report(message)`` hears of a folder that cannot be read (once until it can again)."""
        self.directory = directory
        self._report = report
        self._watcher: DirectoryWatcher | None = None
        self.applied: dict[str, FileStat] = {}
        """What the daemon has applied: path → stat."""
        self._rescan = False
        self._error: str | None = None

    @property
    def fd(self) -> int | None:
        """Readable when the folder changed (None: not watched; the daemon looks every second)."""
        if self._watcher is None:
            self._watcher = DirectoryWatcher(self.directory)
        return self._watcher.fd

    def current(self) -> dict[str, FileStat] | None:
        """The job files as they are now, or None when the folder cannot be read (keep what was
        applied) or nothing changed."""
        stats = self._scan() if self._rescan else self._changed()
        if stats is None or stats is self.applied or stats == self.applied:
            return None
        self._rescan = True  # until apply() finishes: a failure part way rescans next time
        return stats

    def rescan(self) -> None:
        """Read the whole folder at the next look, whatever the watcher says (SIGHUP)."""
        self._rescan = True

    def done(self) -> None:
        """Everything :meth:`current` returned is applied."""
        self._rescan = False

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()

    def _changed(self) -> dict[str, FileStat] | None:
        if self._watcher is None:
            self._watcher = DirectoryWatcher(self.directory)
        names = self._watcher.changes()
        if names is None:
            return self._scan()
        names = {name for name in names if is_job_file_name(name)}
        if not names:
            return self.applied  # nothing changed: no copy, no scan
        stats = dict(self.applied)
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                st = os.stat(path)
            except OSError:
                stats.pop(path, None)
                continue
            if stat.S_ISREG(st.st_mode):
                stats[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
            else:
                stats.pop(path, None)
        return stats

    def _scan(self) -> dict[str, FileStat] | None:
        try:
            stats = {}
            for entry in job_entries(self.directory):
                st = entry.stat()
                stats[entry.path] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError as exc:
            message = f"{JobsDirectoryError(self.directory, exc)}; keeping the jobs loaded"
            if message != self._error:
                self._report(message)
                self._error = message
            return None
        self._error = None
        return stats
