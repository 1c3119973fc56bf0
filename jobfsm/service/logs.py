"""A run's output as ``jobfsm logs`` and the admin page's search show it: read whole from its
files (bounded), or only the lines that contain a search, streamed.

Which files can be read here, and what to say when they cannot, is :mod:`jobfsm.service.output`;
a run whose files are elsewhere shows the head and tail the store keeps.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from jobfsm.service.output import OutputSource, output_place
from jobfsm.service.views import LogEntry
from jobfsm.store.abc import RunRecord

__all__ = ["LOG_READ_LIMIT", "MAX_MATCHES", "log_entry"]

LOG_READ_LIMIT = 2 * 1024 * 1024
"""At most this many bytes of a run's output file are returned whole; a bigger one comes back as
its first and last half of this with a marker between (like the store's tails)."""
MAX_MATCHES = 10_000
"""At most this many matching lines per stream and run when searching."""


def log_entry(run: RunRecord, needle: str | None) -> LogEntry | None:
    """The output of ``run``: whole, or (``needle``, already casefolded) the lines that contain
    it; None when a search found nothing."""
    place = output_place(run)
    # Output stored by a node of another host: its paths name files of that host, not this one.
    here = place.source is OutputSource.FILE
    out_path, err_path = (run.stdout_path, run.stderr_path) if here else (None, None)
    if needle is None:
        out = _read_output(out_path, run.stdout_tail)
        err = _read_output(err_path, run.stderr_tail)
        return LogEntry(run, out, err, place.source, place.note)
    out = _grep(out_path, run.stdout_tail, needle)
    err = _grep(err_path, run.stderr_tail, needle)
    return LogEntry(run, out, err, place.source, place.note) if out or err else None


def _read_output(path: str | None, tail: str) -> str:
    """A run's whole output from its file (bounded), or the stored tail when the file is gone."""
    if not path:
        return tail
    try:
        size = os.path.getsize(path)
        if size <= LOG_READ_LIMIT:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        from jobfsm.runs.executor import read_tail

        return read_tail(Path(path), LOG_READ_LIMIT // 2)
    except OSError:
        return tail


def _grep(path: str | None, tail: str, needle: str) -> str:
    """Lines of a run's output that contain ``needle`` (already casefolded), streamed."""
    matches: list[str] = []
    lines: Iterator[str]
    handle = None
    try:
        if path:
            handle = open(path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
            lines = iter(handle)
        else:
            lines = iter(tail.splitlines(keepends=True))
    except OSError:
        lines = iter(tail.splitlines(keepends=True))
    try:
        for line in lines:
            text = line.rstrip("\r\n")
            if needle in text.casefold():
                matches.append(text)
                if len(matches) >= MAX_MATCHES:
                    break
    finally:
        if handle is not None:
            handle.close()
    return "".join(m + "\n" for m in matches)
