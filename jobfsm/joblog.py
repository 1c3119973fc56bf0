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
- **Private loggers, no globals.** Each :class:`JobLogger` builds its own ``logging.Logger``
  objects directly (not through ``logging.getLogger``, which would register them for the
  life of the process) that do not propagate to the root logger. Two instances on two
  folders never mix, and :meth:`JobLogger.close` really releases the files.
- **Writability is checked up front**: the constructor creates the folder and opens both files
  for appending, so an unwritable ``--logs`` fails at start-up with a
  :class:`~jobfsm.errors.LogDirectoryError` naming the folder, not at the first run.
- Timestamps are ISO 8601 in UTC with their offset and milliseconds
  (``2026-11-26T23:40:01.123+00:00``), like every other time jobfsm shows.
- Rotation is the standard ``RotatingFileHandler`` (10 MB, 5 backups by default), thread-safe
  through the handler's lock. One daemon process owns a logs folder; other processes (the
  CLI, the admin page) read these files but do not write them.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

from jobfsm.clock import utc
from jobfsm.errors import LogDirectoryError

if TYPE_CHECKING:
    from jobfsm.executor import JobResult

MAIN_LOG = "scheduler_main.log"
JOBS_LOG = "scheduler_jobs.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(component)s %(message)s"

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


class _Formatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


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
        self._handlers: list[logging.Handler] = []
        try:
            self._main = self._logger("jobfsm.main", MAIN_LOG, max_bytes, backup_count)
            self._jobs = self._logger("jobfsm.jobs", JOBS_LOG, max_bytes, backup_count)
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

    def _logger(self, name: str, filename: str, max_bytes: int, backups: int) -> logging.Logger:
        handler = RotatingFileHandler(
            self.log_dir / filename, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )  # opens the file now (delay=False): this is the write test
        handler.setFormatter(_Formatter(LOG_FORMAT))
        self._handlers.append(handler)
        # Built directly, not through logging.getLogger: not registered with logging's manager,
        # so each instance has its own Logger objects (the shared name is only a label).
        logger = logging.Logger(name, logging.INFO)
        logger.propagate = False
        logger.addHandler(handler)
        return logger

    def _write(
        self, logger: logging.Logger, level: int, component: str, msg: str, *args: object
    ) -> None:
        logger.log(level, msg, *args, extra={"component": escape(component)})

    # -- main log ------------------------------------------------------------------------
    def startup(self, *, version: str, node: str, jobs: int, pid: int) -> None:
        self._write(
            self._main, logging.INFO, "daemon", "started: version=%s node=%s pid=%d jobs=%d",
            escape(version), escape(node), pid, jobs,
        )

    def shutdown(self, *, reason: str) -> None:
        self._write(self._main, logging.INFO, "daemon", "stopped: reason=%s", quote(reason))

    def config_error(self, path: str, message: str) -> None:
        self._write(self._main, logging.ERROR, "loader", "%s: %s", escape(path), escape(message))

    def schedule_error(self, job: str, message: str) -> None:
        self._write(
            self._main, logging.ERROR, "scheduler", "job %s: %s", escape(job), escape(message)
        )

    def error(self, message: str, *, component: str = "daemon") -> None:
        self._write(self._main, logging.ERROR, component, "%s", escape(message))

    def fatal(self, message: str, *, component: str = "daemon") -> None:
        self._write(self._main, logging.CRITICAL, component, "%s", escape(message))

    def info(self, message: str, *, component: str = "daemon") -> None:
        self._write(self._main, logging.INFO, component, "%s", escape(message))

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
            self._jobs, logging.INFO, f"job:{job}",
            "run %d started: trigger=%s scheduled_for=%s command=%s",
            run_id, escape(trigger), utc(scheduled_for).isoformat() if scheduled_for else "-",
            quote(command),
        )

    def job_completion(self, result: JobResult, *, trigger: str) -> None:
        level = logging.INFO if result.success else logging.WARNING
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
            self._jobs, logging.INFO, f"job:{job}", "%s skipped: reason=%s", what, quote(reason)
        )

    def state_change(
        self, job: str, *, event: str, source: str, dest: str, user: str | None = None
    ) -> None:
        self._write(
            self._jobs, logging.INFO, f"job:{job}", "state %s -> %s: event=%s user=%s",
            escape(source), escape(dest), escape(event), escape(user),
        )

    def close(self) -> None:
        """Flush and close both files; later calls to this logger write nothing."""
        for logger in (getattr(self, "_main", None), getattr(self, "_jobs", None)):
            if logger is not None:
                logger.disabled = True
                for handler in list(logger.handlers):
                    logger.removeHandler(handler)
        for handler in self._handlers:
            handler.close()
        self._handlers.clear()

    def __enter__(self) -> JobLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
