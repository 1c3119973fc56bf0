"""What changed in the jobs folder since the daemon last applied it: the files as they are now
(modification time, size, inode), from the inotify watcher's list of changed names when it has
one (cheap) or from a full scan, against the snapshot of what was applied."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

from jobfsm.config.folder import is_job_file_name, job_entries
from jobfsm.config.watch import DirectoryWatcher
from jobfsm.errors import JobsDirectoryError

FileStat = tuple[int, int, int]
DELETE_SETTLE_SECONDS = 1.0
"""A job file gone is unloaded once it has stayed gone this long with its folder still there:
``rm -rf jobs`` deletes the files before the folder, and a look in between must not unload every
job of a folder a deploy is about to write again."""


class JobFolder:
    def __init__(self, directory: Path, report: Callable[[str], None],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``report(message)`` hears of a folder that cannot be read (once until it can again)."""
        self.directory = directory
        self._report = report
        self._watcher: DirectoryWatcher | None = None
        self.applied: dict[str, FileStat] = {}
        """What the daemon has applied: path → stat."""
        self._rescan = False
        self._error: str | None = None
        self._monotonic = monotonic
        self._gone_at: float | None = None
        """When files were first seen gone (their unloading waits for ``delete_settle_seconds``)."""
        self.delete_settle_seconds = DELETE_SETTLE_SECONDS

    @property
    def fd(self) -> int | None:
        """Readable when the folder changed (None: not watched; the daemon looks every second)."""
        return self._watch().fd

    def _watch(self) -> DirectoryWatcher:
        if self._watcher is None:
            self._watcher = DirectoryWatcher(self.directory)
        return self._watcher

    def current(self) -> dict[str, FileStat] | None:
        """The job files as they are now, or None when the folder cannot be read (keep what was
        applied) or nothing changed."""
        stats = self._scan() if self._rescan else self._changed()
        if stats is self.applied:  # the watcher saw no change: an idle look costs nothing more
            return None
        if stats is not None and not stats.keys() >= self.applied.keys():
            stats = self._settled(stats)
        else:
            self._gone_at = None
        if stats is None or stats == self.applied:
            if stats is not None and self._gone_at is None:
                self._rescan = False  # read, and nothing to apply
            return None
        self._rescan = True  # until apply() finishes: a failure part way rescans next time
        return stats

    def settle_seconds(self) -> float | None:
        """How soon to look again for files seen gone to be unloaded (None: none waits)."""
        if self._gone_at is None:
            return None
        return max(0.0, self._gone_at + self.delete_settle_seconds - self._monotonic())

    def _settled(self, stats: dict[str, FileStat]) -> dict[str, FileStat]:
        """``stats`` with the files that went away kept as applied until they have stayed gone
        ``delete_settle_seconds`` (the whole folder is read again meanwhile, to be sure)."""
        now = self._monotonic()
        if self._gone_at is None:
            self._gone_at = now
        if now - self._gone_at < self.delete_settle_seconds:
            self._rescan = True  # the next look compares the whole folder
            return {**{p: st for p, st in self.applied.items() if p not in stats}, **stats}
        self._gone_at = None
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
        names = self._watch().changes()
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
