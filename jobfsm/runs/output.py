"""A run's output files: where they are, creating them for a start, reading back their tails.

Output goes to files, never through the daemon: stdout and stderr are opened as files under
``log_dir/runs/<job>/<run_id>.out|.err`` and handed to ``Popen``; the daemon never reads a
pipe, so a job printing a gigabyte costs disk, not memory. After the run only a bounded head
and tail (``tail_bytes`` each) are read back for the store and the log.
"""

from __future__ import annotations

import os
from pathlib import Path

OMITTED_MARKER = "\n[... {n} bytes omitted ...]\n"
"""Placed between the head and the tail of an output longer than twice the tail size."""

_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_OUTPUT_MODE = 0o600  # output may hold secrets: the owner only (the umask can only take more away)


def run_output_paths(log_dir: Path | str, job_name: str, run_id: int) -> tuple[Path, Path]:
    """Where an executor with ``log_dir`` writes the full stdout and stderr of a run (also
    while it runs: ``jobfsm logs --follow`` reads them there)."""
    stem = Path(log_dir) / "runs" / job_name / str(run_id)
    return stem.with_suffix(".out"), stem.with_suffix(".err")


def output_files(runs_dir: str, job_name: str, run_id: int) -> tuple[str, str]:
    """:func:`run_output_paths` under the absolute ``log_dir/runs``, as strings."""
    stem = f"{runs_dir}/{job_name}/{run_id}"  # strings: Path objects are a sizeable part of a start
    return f"{stem}.out", f"{stem}.err"


def open_outputs(paths: tuple[str, str]) -> tuple[int, int]:
    """Create (truncate) both output files as plain descriptors (no file objects: this is on
    the path of every start); make their folder only when it is missing. The caller closes."""
    try:
        out_fd = os.open(paths[0], _OUTPUT_FLAGS, _OUTPUT_MODE)
    except FileNotFoundError:  # the job's first run: make its folder (and runs/ if need be)
        folder = os.path.dirname(paths[0])
        try:
            os.mkdir(folder)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
        except FileExistsError:
            pass
        out_fd = os.open(paths[0], _OUTPUT_FLAGS, _OUTPUT_MODE)
    try:
        err_fd = os.open(paths[1], _OUTPUT_FLAGS, _OUTPUT_MODE)
    except OSError:
        os.close(out_fd)
        raise
    return out_fd, err_fd


def read_tail(path: str | Path, tail_bytes: int) -> str:
    """The output file as text, bounded: all of it up to ``2 * tail_bytes`` bytes, else the
    first and the last ``tail_bytes`` around an ``[... N bytes omitted ...]`` line.

    Decoded as UTF-8 with replacement characters, a NUL byte too (PostgreSQL's text refuses
    it, and a refused finish would read as a store outage); never reads more than ``2 * tail_bytes``.
    A missing file reads as empty; one that cannot be read (permissions, too many open files)
    reads as a line saying why, never an exception: the run's result must still be recorded.
    """
    try:  # plain descriptors, no file object: this runs once per stream of every run
        if os.stat(path).st_size == 0:  # most streams of most runs: one system call, not three
            return ""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"[output not readable: {exc.strerror or exc}]"
    try:
        size = os.fstat(fd).st_size
        if size <= 2 * tail_bytes:
            return _text(os.read(fd, 2 * tail_bytes))
        head = os.pread(fd, tail_bytes, 0)
        tail = os.pread(fd, tail_bytes, size - tail_bytes)
    except OSError as exc:
        return f"[output not readable: {exc.strerror or exc}]"
    finally:
        os.close(fd)
    omitted = size - len(head) - len(tail)
    return _text(head) + OMITTED_MARKER.format(n=omitted) + _text(tail)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
