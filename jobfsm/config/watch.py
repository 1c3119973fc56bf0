"""Which job files changed since the last look: Linux inotify, or "don't know" (rescan).

Listing and stat-ing every file of a big jobs folder each time the daemon looks would cost it
CPU while doing nothing, so on Linux the folder is watched with
inotify (through ctypes; no dependency) and a check is one non-blocking ``read``. Events are taken
when a file is *closed after writing* or renamed into place, never on each write, so a reader never
sees a half-written file. Where inotify is unavailable, or its queue overflowed, or the folder
itself was replaced, :meth:`DirectoryWatcher.changes` answers ``None`` and the caller rescans
everything (correct, just slower).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import struct
from pathlib import Path

log = logging.getLogger(__name__)

IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
_WATCHED = IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
_WATCH_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


class DirectoryWatcher:
    """Names of entries of one folder that changed since the previous call."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._libc = _libc()
        self._fd: int | None = None
        self._rescan = True  # the first answer is always "rescan": nothing was seen yet
        self._open()

    @property
    def fd(self) -> int | None:
        """The inotify descriptor, readable when something changed (None: not watching)."""
        if self._fd is None:
            self._open()
        return self._fd

    @property
    def active(self) -> bool:
        """True when inotify is watching (False: every call answers "rescan")."""
        return self._fd is not None

    def _open(self) -> None:
        libc = self._libc
        if libc is None or not hasattr(libc, "inotify_init1"):
            return
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            log.info("inotify unavailable (%s); polling the jobs folder", os.strerror(ctypes.get_errno()))
            return
        if libc.inotify_add_watch(fd, os.fsencode(self.directory), _WATCHED) < 0:
            log.info("cannot watch %s (%s); polling it", self.directory, os.strerror(ctypes.get_errno()))
            os.close(fd)
            return
        self._fd = fd
        self._rescan = True  # whatever happened before the watch existed is unknown

    def changes(self) -> set[str] | None:
        """Changed entry names, or ``None``: rescan the whole folder."""
        if self._fd is None:
            self._open()  # the folder may exist (again) now
            if self._fd is None:
                return None
        names: set[str] = set()
        gone = False
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                if mask & (IN_Q_OVERFLOW | _WATCH_GONE):
                    self._rescan = True
                    gone = gone or bool(mask & _WATCH_GONE)
                elif name:
                    names.add(os.fsdecode(name))
        if gone:  # the folder was deleted or moved away: watch its path again next time
            self.close()
        if self._rescan:
            self._rescan = False
            return None
        return names

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

