"""The two human-readable log files of the daemon, rotating, one record per line.

- ``scheduler_main.log``: daemon lifecycle, configuration and schedule errors.
- ``scheduler_jobs.log``: every run's start and completion (with status, exit code, signal,
  duration, message and the output tails), skipped fires, lifecycle state changes.

Design decisions:

- **One record is always one line.** Job output, names, commands and messages are escaped by
  :func:`escape` before they go into a line: ``\\`` becomes ``\\\\``, a newline ``\\n``, every
  other C0/C1 control character and DEL ``\\xNN``, and the Unicode line and paragraph
  separators (and lone surrogates) ``\\uNNNN``. A job printing ``\\n2026-... ERROR daemon ...``
  therefore cannot forge a record, and ``grep``/``tail -f``/log shippers see whole records.
  Free-text fields are also quoted (``stdout="..."``) with ``"`` escaped, so where one field
  ends is unambiguous.
- **No ``logging``, no globals.** Each :class:`JobLogger` writes its two files itself (see
  below) and owns everything it uses: nothing is registered with the ``logging`` module or
  reaches the root logger, two instances on two folders never mix, and
  :meth:`JobLogger.close` really releases the files. Later calls write nothing.
- **Writability is checked up front**: the constructor creates the folder and opens both files
  for appending, so an unwritable ``--logs`` fails at start-up with a
  :class:`~jobfsm.errors.LogDirectoryError` naming the folder, not at the first run.
- Timestamps are ISO 8601 in UTC with their offset and milliseconds
  (``2026-11-26T23:40:01.123+00:00``), like every other time jobfsm shows.
- **A small writer of its own, not ``logging``.** A daemon writes two lines per job start and
  two per completion, so a burst of 10,000 fires is 20,000+ lines, and ``logging`` spends most
  of a line on a ``LogRecord``, a ``Formatter`` and ``shouldRollover``'s ``stat``, ``seek`` and
  ``tell``. Here a line is formatted by hand (the date and time part once a second), encoded
  once, and written under a lock to a binary file whose size the writer tracks itself (size
  at open + bytes written); ``bench/bench_joblog.py`` compares the two. Rotation is the same as
  ``RotatingFileHandler``'s (10 MB, 5 backups ``scheduler_jobs.log.1`` ... ``.5`` by default;
  a line that would bring the file to ``max_bytes`` or beyond goes into a fresh one, so a line
  is never split across files; ``max_bytes=0`` never rotates), with the fix of newer Pythons
  that an empty file is never rotated. One daemon process owns a logs folder; other processes
  (the CLI, the admin page) read these files but do not write them.
- **Flush policy**: by default every line is flushed to the file as it is written, so
  ``tail -f`` sees it at once and a crash of the daemon loses nothing already logged. Inside
  :meth:`JobLogger.buffered` (re-entrant, and for the whole logger: lines of every thread)
  lines are not flushed one by one; leaving the outermost block flushes both files. It is
  meant for a burst of fires: one flush per burst instead of one per line, and the burst's
  lines are in the files when the batch that recorded them ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from jobfsm.clock import utc
from jobfsm.errors import LogDirectoryError
from jobfsm.lifecycle.events import (
    Event,
    RunFinished,
    RunLost,
    RunSkipped,
    RunStarted,
    StateChanged,
)

if TYPE_CHECKING:
    from jobfsm.runs.executor import JobResult

MAIN_LOG = "scheduler_main.log"
JOBS_LOG = "scheduler_jobs.log"

_UNSAFE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    if ch == "\\":
        return "\\\\"
    if ch == "\n":
        return "\\n"
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: object) -> str:
    """``text`` made safe for one log line (see the module docstring); None becomes ``-``."""
    if text is None:
        return "-"
    return _UNSAFE.sub(_escape_char, str(text))


def quote(text: object) -> str:
    """``text`` escaped and in double quotes, with ``"`` escaped too, for free-text fields."""
    return '"' + escape(text).replace('"', '\\"') + '"'


RECOVERED_AFTER_SECONDS = 60.0
"""A log file counts as writable again after this long without a failed write: on a nearly full
disk short lines still fit in the last page now and then, and each would end the streak."""


class _LogFile:
    """One append-only log file: whole lines written under a lock, rotated by size.

    The size is tracked here (size at open + bytes written) rather than asked of the file
    system per line. Rotation follows ``RotatingFileHandler``: before a line that would bring
    the file to ``max_bytes`` or beyond, ``name.4`` becomes ``name.5`` ... ``name`` becomes
    ``name.1``, and a fresh file is opened. ``max_bytes=0`` never rotates, nor does
    ``backup_count=0`` (the handler then reopened the same file and went on appending to it);
    a non-regular file (``/dev/null``, a pipe) is never rotated, nor is an empty one.
    """

    def __init__(self, path: Path, max_bytes: int, backup_count: int) -> None:
        self.path = path
        self._max_bytes = max_bytes if backup_count > 0 else 0
        self._backup_count = backup_count
        self._lock = threading.Lock()
        self._flush_each_line = True
        self._closed = False
        self._failing = False
        self._failed_at = 0.0  # time.monotonic() of the latest failed write
        self._size = 0
        self._file: IO[bytes] | None = self._open()  # raises OSError now: the write test

    def _open(self) -> IO[bytes]:
        # Binary: the line is encoded once, by the caller, and its length is its size on disk.
        file = open(self.path, "ab")  # noqa: SIM115 - kept open until close() or rotation
        info = os.fstat(file.fileno())
        self._size = info.st_size
        if not stat.S_ISREG(info.st_mode):
            self._max_bytes = 0
        return file

    def write(self, data: bytes) -> None:
        """Append one encoded line; flush it unless inside a buffered block. Never raises."""
        with self._lock:
            if self._closed:
                return  # after close(): dropped, as a closed logging.Logger did
            try:
                if self._max_bytes and self._size and self._size + len(data) >= self._max_bytes:
                    self._rotate()
                if self._file is None:  # after a rotation, or a failed reopen: open again
                    self._file = self._open()
                self._file.write(data)
                self._size += len(data)
                if self._flush_each_line:
                    self._file.flush()
                if self._failing and time.monotonic() - self._failed_at >= RECOVERED_AFTER_SECONDS:
                    self._failing = False
                    self._say(f"jobfsm: the log {str(self.path)!r} can be written again")
            except OSError as exc:
                self._report(exc)

    def _rotate(self) -> None:
        """Close the file and shift the backups; if a rename fails, report it and carry on
        (the line then goes at the end of the current file: a big file rather than a lost line).
        """
        if self._file is not None:
            self._file.close()
            self._file = None
        name = str(self.path)
        try:
            for i in range(self._backup_count - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{name}.{i}", f"{name}.{i + 1}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(name, f"{name}.1")
        except OSError as exc:
            self._report(exc)

    def set_flush_each_line(self, on: bool) -> None:
        """Flush every line from now on (and what is buffered now), or stop doing so."""
        with self._lock:
            self._flush_each_line = on
            if on and self._file is not None:
                try:
                    self._file.flush()
                except OSError as exc:
                    self._report(exc)

    def reopen(self) -> None:
        """Close the file; the next line opens the path again (a new file if it was moved away)."""
        with self._lock:
            if self._closed or self._file is None:
                return
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:
                self._report(exc)

    def close(self) -> None:
        """Flush and close; idempotent. Later writes are dropped."""
        with self._lock:
            self._closed = True
            file, self._file = self._file, None
            if file is not None:
                try:
                    file.close()
                except OSError as exc:
                    self._report(exc)

    def _report(self, exc: OSError) -> None:
        # As logging.Handler.handleError did: a full disk costs log lines, not the daemon. Said
        # once per streak of failures, not once per line (a full disk would flood stderr).
        self._failed_at = time.monotonic()
        if self._failing:
            return
        self._failing = True
        self._say(f"jobfsm: cannot write the log {str(self.path)!r}: {exc}; lines are lost until it "
                  "can be written again (said once)")

    @staticmethod
    def _say(message: str) -> None:
        stream = sys.stderr  # None in a process started without one
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.write(message + "\n")


class JobLogger:
    """Writes ``scheduler_main.log`` and ``scheduler_jobs.log`` in ``log_dir``."""

    def __init__(
        self, log_dir: Path, *, max_bytes: int = 10 * 1024 * 1024, backup_count: int = 5
    ) -> None:
        self.log_dir = Path(log_dir)
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LogDirectoryError(
                f"cannot create the logs folder {str(self.log_dir)!r}: {exc.strerror or exc}; "
                "fix its permissions or choose another with --logs / JOBFSM_LOGS"
            ) from exc
        self._lock = threading.Lock()  # guards _depth
        self._depth = 0
        self._stamp: tuple[int, str] = (-1, "")  # (second, its "YYYY-MM-DDTHH:MM:SS")
        self._files: list[_LogFile] = []
        try:
            self._main = self._open(MAIN_LOG, max_bytes, backup_count)
            self._jobs = self._open(JOBS_LOG, max_bytes, backup_count)
        except OSError as exc:
            self.close()
            raise LogDirectoryError(
                f"cannot write in the logs folder {str(self.log_dir)!r}: {exc.strerror or exc}; "
                "fix its permissions or choose another with --logs / JOBFSM_LOGS"
            ) from exc

    @property
    def main_path(self) -> Path:
        return self.log_dir / MAIN_LOG

    @property
    def jobs_path(self) -> Path:
        return self.log_dir / JOBS_LOG

    def _open(self, filename: str, max_bytes: int, backups: int) -> _LogFile:
        file = _LogFile(self.log_dir / filename, max_bytes, backups)
        self._files.append(file)
        return file

    @contextlib.contextmanager
    def buffered(self) -> Iterator[None]:
        """Within this block lines are not flushed one by one; leaving it flushes both files.

        Re-entrant (only the outermost exit flushes) and for the whole logger: lines other
        threads write meanwhile are buffered too.
        """
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                for file in self._files:
                    file.set_flush_each_line(False)
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    for file in self._files:
                        file.set_flush_each_line(True)

    def _timestamp(self) -> str:
        """Now as ``2026-11-26T23:40:01.123+00:00``; the date and time part built once a second."""
        second, nanos = divmod(time.time_ns(), 1_000_000_000)
        cached, prefix = self._stamp  # one tuple: consistent even if another thread replaces it
        if cached != second:
            prefix = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")[:-6]
            self._stamp = (second, prefix)
        return f"{prefix}.{nanos // 1_000_000:03d}+00:00"

    def _write(self, file: _LogFile, level: str, component: str, msg: str, *args: object) -> None:
        line = f"{self._timestamp()} {level} {escape(component)} {msg % args}\n"
        file.write(line.encode("utf-8"))

    # -- main log ------------------------------------------------------------------------
    def startup(self, *, version: str, node: str, jobs: int, pid: int) -> None:
        self._write(
            self._main, "INFO", "daemon", "started: version=%s node=%s pid=%d jobs=%d",
            escape(version), escape(node), pid, jobs,
        )

    def shutdown(self, *, reason: str) -> None:
        self._write(self._main, "INFO", "daemon", "stopped: reason=%s", quote(reason))

    def config_error(self, path: str, message: str) -> None:
        self._write(self._main, "ERROR", "loader", "%s: %s", escape(path), escape(message))

    def schedule_error(self, job: str, message: str) -> None:
        self._write(
            self._main, "ERROR", "scheduler", "job %s: %s", escape(job), escape(message)
        )

    def error(self, message: str, *, component: str = "daemon") -> None:
        self._write(self._main, "ERROR", component, "%s", escape(message))

    def fatal(self, message: str, *, component: str = "daemon") -> None:
        self._write(self._main, "CRITICAL", component, "%s", escape(message))

    def info(self, message: str, *, component: str = "daemon") -> None:
        self._write(self._main, "INFO", component, "%s", escape(message))

    # -- jobs log ------------------------------------------------------------------------
    def job_start(
        self,
        job: str,
        run_id: int,
        *,
        trigger: str,
        scheduled_for: datetime | None,
        command: str,
    ) -> None:
        self._write(
            self._jobs, "INFO", f"job:{job}",
            "run %d started: trigger=%s scheduled_for=%s command=%s",
            run_id, escape(trigger), utc(scheduled_for).isoformat() if scheduled_for else "-",
            quote(command),
        )

    def job_completion(self, result: JobResult, *, trigger: str) -> None:
        level = "INFO" if result.success else "WARNING"
        self._write(
            self._jobs, level, f"job:{result.job_name}",
            "run %d finished: status=%s exit_code=%s signal=%s duration=%.3fs trigger=%s "
            "message=%s stdout=%s stderr=%s",
            result.run_id, result.status.value, escape(result.exit_code), escape(result.signal),
            result.duration_seconds, escape(trigger), quote(result.message),
            quote(result.stdout), quote(result.stderr),
        )

    def job_skipped(self, job: str, run_id: int | None, *, reason: str) -> None:
        what = f"run {run_id}" if run_id is not None else "fire"
        self._write(
            self._jobs, "INFO", f"job:{job}", "%s skipped: reason=%s", what, quote(reason)
        )

    def state_change(
        self, job: str, *, event: str, source: str, dest: str, user: str | None = None
    ) -> None:
        self._write(
            self._jobs, "INFO", f"job:{job}", "state %s -> %s: event=%s user=%s",
            escape(source), escape(dest), escape(event), escape(user),
        )

    def on_event(self, event: Event) -> None:
        """The job log as a listener of the lifecycle's events: one line each."""
        if isinstance(event, StateChanged):
            self.state_change(event.job, event=event.event, source=event.source, dest=event.dest, user=event.user)
        elif isinstance(event, RunStarted):
            self.job_start(event.job, event.run_id, trigger=event.trigger.value,
                           scheduled_for=event.scheduled_for, command=event.command)
        elif isinstance(event, RunFinished):
            self.job_completion(event.result, trigger=event.trigger.value)
        elif isinstance(event, RunSkipped):
            self.job_skipped(event.job, event.run_id, reason=event.reason)
        elif isinstance(event, RunLost):
            self.error(f"run {event.run.id} of job {event.run.job!r} was lost: {event.run.message}")

    def reopen(self) -> None:
        """Reopen both files by name (after logrotate moved them away: SIGHUP)."""
        for file in self._files:
            file.reopen()

    def close(self) -> None:
        """Flush and close both files; idempotent, and later calls to this logger write nothing."""
        for file in self._files:
            file.close()

    def __enter__(self) -> JobLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
