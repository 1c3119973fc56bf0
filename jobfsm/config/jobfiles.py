"""The jobs folder as the management service sees it: versioned reads and safe, minimal writes.

Design decisions
----------------
**A version is the hash of the bytes.** :func:`version_of` is the SHA-256 of the file as it is on
disk. Whoever edits a job passes the version they read; a write whose expected version is not
the file's version now raises :class:`~jobfsm.errors.ConcurrentModificationError` instead of
overwriting someone else's change. A hash (rather than an mtime) also catches an edit in a text
editor within the same second, and costs nothing next to the fsyncs.

**Read-check-write under a folder lock.** :meth:`JobFiles.locked` holds an exclusive
``fcntl.flock`` on ``<jobs>/.jobfsm.lock`` (a dot file, so the loader never sees it). Each call
opens the lock file anew, and ``flock`` locks belong to the open file description, so the lock
excludes other threads of this process as well as other processes: two admin pages, a CLI and a
``git pull`` hook that all use the service serialize, and the second of two racing writers sees
the first one's version and is refused. (People editing files by hand do not take the lock;
the hash check still catches them unless they save in the microseconds between check and
rename.)

**Atomic writes.** :func:`write_atomic`: a temporary file in the same folder (same file system,
so the rename is atomic), written, fsynced, ``os.replace``-d over the target, then the folder
fsynced so the rename itself survives a crash. A reader (the daemon) sees the old file or the
new one, never half of one.

**Minimal edits.** A job file lives in git, so a change should be a small diff.
:func:`apply_changes` does not re-serialize the document: it finds the byte span of every
top-level member in the existing text and replaces only the values that changed, removes only the
members that went away, and inserts new members next to their neighbour in the canonical key
order (:class:`~jobfsm.model.JobConfig`), copying the file's own indentation, key/value separator
and member separator. Untouched members keep their exact text (inline ``"env": {...}`` objects,
unusual spacing, ``\\u`` escapes), and the trailing newline stays as it was. Flipping
``enabled`` is therefore a one-line diff.

**Names are checked before they become paths** (:func:`jobfsm.config.names.check_name`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from jobfsm.config.folder import job_entries
from jobfsm.config.limits import MAX_FILE_BYTES
from jobfsm.config.loader import decode_text, parse_document, read_job_bytes
from jobfsm.config.names import check_name
from jobfsm.errors import (
    ConcurrentModificationError,
    JobNotFoundError,
    JobsDirectoryError,
    ValidationError,
)
from jobfsm.model import JobConfig
from jobfsm.problems import Problem

__all__ = [
    "CANONICAL_ORDER",
    "LOCK_FILE",
    "JobFile",
    "JobFiles",
    "apply_changes",
    "check_name",
    "render_document",
    "version_of",
    "write_atomic",
]

LOCK_FILE = ".jobfsm.lock"
CANONICAL_ORDER: tuple[str, ...] = tuple(
    "$schema" if f.name == "schema_ref" else f.name for f in fields(JobConfig)
)
"""Key order of a job file as jobfsm writes it (``$schema`` first)."""
CANONICAL_ORDER = ("$schema", *(k for k in CANONICAL_ORDER if k != "$schema"))


def version_of(raw: bytes) -> str:
    """The version of a file's content: its SHA-256, hex."""
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class JobFile:
    """One job file as read: its bytes, version and (when it is JSON) its document."""

    name: str
    path: Path
    raw: bytes
    version: str
    text: str | None
    """The decoded text; None when the bytes are not UTF-8 (or carry a BOM), or were not read
    (not a regular file, too big: then ``raw`` is empty)."""
    document: Any
    """The parsed JSON (any type); None when it does not parse."""
    problem: Problem | None
    """Why ``text``/``document`` is missing, if it is."""


# -- writing -------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (temp file, fsync, rename, fsync folder)."""
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def _mode_for(path: Path) -> int:
    """A replaced file keeps its permissions; a new one is the owner's only (``env`` may hold
    secrets; chmod it 0640 for a group that must read it, and later writes keep that)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o600


def fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- formatting ----------------------------------------------------------------------------


def _dumps(value: Any, ascii_only: bool, indent: str | None = None) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, indent=indent)


def _inline(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, separators=(", ", ": "))


def render_document(document: Mapping[str, Any], *, indent: str = "  ") -> str:
    """A new file's text: the document's own key order, two-space indent, short containers of
    scalars inline (as people write ``"env": {"LANG": "C"}``), trailing newline."""
    lines = []
    for key, value in document.items():
        lines.append(f"{indent}{_dumps(key, False)}: {_render_value(value, False, indent, indent)}")
    if not lines:
        return "{}\n"
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _render_value(value: Any, ascii_only: bool, unit: str, member_indent: str) -> str:
    """A value for a member at ``member_indent``: inline when short and flat, else block."""
    inline = _inline(value, ascii_only)
    flat = not isinstance(value, dict | list) or all(
        not isinstance(v, dict | list) for v in (value.values() if isinstance(value, dict) else value)
    )
    if flat and len(member_indent) + len(inline) <= 88:
        return inline
    block = _dumps(value, ascii_only, indent=unit)
    return block.replace("\n", "\n" + member_indent)


@dataclass
class _Member:
    key: str
    start: int
    """Where the member's key starts."""
    key_end: int
    value_start: int
    value_end: int


def _scan(text: str) -> tuple[list[_Member], int, int] | None:
    """The top-level members of a JSON object text, with the object's ``{`` and ``}`` offsets;
    None when the text is not a single JSON object."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")

    def skip(i: int) -> int:
        m = ws.match(text, i)
        return m.end() if m else i

    i = skip(0)
    if i >= len(text) or text[i] != "{":
        return None
    open_at = i
    members: list[_Member] = []
    i = skip(i + 1)
    if i < len(text) and text[i] == "}":
        return members, open_at, i
    while True:
        if i >= len(text) or text[i] != '"':
            return None
        try:
            key, key_end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return None
        j = skip(key_end)
        if j >= len(text) or text[j] != ":":
            return None
        vs = skip(j + 1)
        try:
            _, ve = decoder.raw_decode(text, vs)
        except json.JSONDecodeError:
            return None
        members.append(_Member(key, i, key_end, vs, ve))
        i = skip(ve)
        if i < len(text) and text[i] == ",":
            i = skip(i + 1)
            continue
        if i < len(text) and text[i] == "}":
            return members, open_at, i
        return None


def _line_indent(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    m = re.match(r"[ \t]*", text[line_start:pos])
    return m.group(0) if m else ""


def _detect_unit(text: str, member_indent: str) -> str:
    """The indentation step of the file (for block values): from a nested line, else the
    members' own indentation, else two spaces."""
    for line in text.splitlines():
        m = re.match(r"[ \t]+", line)
        if m and len(m.group(0)) > len(member_indent) and m.group(0).startswith(member_indent):
            step = m.group(0)[len(member_indent):]
            if step:
                return step
    return member_indent or "  "


def apply_changes(text: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The text of ``new`` made from ``text`` (which holds ``old``) by editing only what changed.

    Falls back to :func:`render_document` when ``text`` is not a single JSON object.
    """
    scanned = _scan(text)
    if scanned is None or not isinstance(old, Mapping):
        return render_document(new)
    members, open_at, close_at = scanned
    if not any(m.key in new for m in members):
        return render_document(new)  # nothing to keep: write it fresh
    ascii_only = text.isascii() and "\\u" in text
    if members:
        first = members[0]
        member_indent = _line_indent(text, first.start) if "\n" in text[open_at:first.start] else ""
        kv_sep = text[first.key_end:first.value_start]
        if len(members) > 1:
            sep = text[members[0].value_end:members[1].start]
        else:
            sep = ",\n" + member_indent if member_indent else ", "
        multiline = "\n" in text[open_at:close_at]
    else:  # unreachable: an empty object has no member to keep
        return render_document(new)
    unit = _detect_unit(text, member_indent) if multiline else "  "

    def render(key: str, value: Any, was: str | None) -> str:
        if was is not None and "\n" not in was:
            inline = _inline(value, ascii_only)
            if not isinstance(value, dict | list) or len(inline) <= 88:
                return inline
        if not multiline:
            return _inline(value, ascii_only)
        if was is not None and "\n" in was and isinstance(value, dict | list) and value:
            return _dumps(value, ascii_only, indent=unit).replace("\n", "\n" + member_indent)
        return _render_value(value, ascii_only, unit, member_indent)

    # Edits as (start, end, replacement), applied from the end so offsets stay valid.
    edits: list[tuple[int, int, str]] = []
    present = {m.key for m in members}
    kept = [m for m in members if m.key in new]
    for m in members:
        if m.key in new and (m.key not in old or new[m.key] != old[m.key] or
                             type(new[m.key]) is not type(old[m.key])):
            edits.append((m.value_start, m.value_end, render(m.key, new[m.key], text[m.value_start:m.value_end])))
    # Removals: a member with the separator before it; a leading run of removed members up to
    # the first kept one (there is one, see above) in one piece.
    first_kept = members.index(kept[0])
    if first_kept > 0:
        edits.append((members[0].start, kept[0].start, ""))
    for idx in range(first_kept + 1, len(members)):
        if members[idx].key not in new:
            edits.append((members[idx - 1].value_end, members[idx].value_end, ""))
    # Insertions: after the nearest kept member that precedes it canonically; several new
    # members at one place are joined in canonical order.
    order = _insertion_order(new)
    groups: dict[int, list[str]] = {}
    before_first: list[str] = []
    for key in sorted((k for k in new if k not in present), key=order.index):
        member = f"{_dumps(key, ascii_only)}{kv_sep}{render(key, new[key], None)}"
        anchor = None
        for m in kept:
            if order.index(m.key) < order.index(key):
                anchor = m
        if anchor is not None:
            groups.setdefault(anchor.value_end, []).append(member)
        else:
            before_first.append(member)
    for pos, group in groups.items():
        edits.append((pos, pos, "".join(sep + member for member in group)))
    if before_first and kept:
        edits.append((kept[0].start, kept[0].start, "".join(member + sep for member in before_first)))
    out = text
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        out = out[:start] + replacement + out[end:]
    return out


def _insertion_order(new: Mapping[str, Any]) -> list[str]:
    """Canonical key order, then any other keys of ``new`` in their own order."""
    return [*CANONICAL_ORDER, *(k for k in new if k not in CANONICAL_ORDER)]


# -- the folder ----------------------------------------------------------------------------


class JobFiles:
    """The jobs folder: versioned reads, locked and atomic writes. Safe across threads and processes."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path_for(self, name: str) -> Path:
        """``<jobs>/<name>.json``, after :func:`check_name`."""
        check_name(name, path=str(self.directory / "<name>.json"))
        return self.directory / f"{name}.json"

    def names(self) -> list[str]:
        """Stems of the ``*.json`` files in the folder, sorted (including invalid names); none
        when the folder does not exist yet (:mod:`jobfsm.config.folder` says which files count). :class:`JobsDirectoryError` when the path is not a folder or
        cannot be read."""
        try:
            return [e.name[: -len(".json")] for e in job_entries(self.directory)]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise JobsDirectoryError(self.directory, exc) from exc

    def exists(self, name: str) -> bool:
        return self.path_for(name).is_file()

    def read(self, name: str) -> JobFile:
        """Read ``<name>.json``; :class:`JobNotFoundError` when there is none."""
        return self.read_path(self.path_for(name), name)

    def read_path(self, path: Path, name: str) -> JobFile:
        shown = str(path)
        try:
            raw, problem = read_job_bytes(path, shown)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise JobNotFoundError(name) from None
        except OSError as exc:  # no permission, a name too long: the file is there but unusable
            raw, problem = b"", Problem(shown, "$", f"cannot read file: {exc.strerror or exc}")
        text = document = None
        if problem is None:
            text, problem = decode_text(raw, shown)
        if text is not None:
            document, problem = parse_document(text, shown)
        return JobFile(name, path, raw, version_of(raw), text, document, problem)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's write lock (exclusive across threads and processes)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the lock

    @staticmethod
    def check_version(current: JobFile, expected: str | None) -> None:
        if expected is not None and expected != current.version:
            raise ConcurrentModificationError(current.name)

    def write(self, name: str, text: str) -> str:
        """Write ``text`` as ``<name>.json`` atomically; returns the new version. Call it while
        holding :meth:`locked`, after your checks. A text over the loader's size limit is a
        :class:`ValidationError`: the daemon would refuse to read the file it made."""
        path = self.path_for(name)
        data = text.encode("utf-8")
        if len(data) > MAX_FILE_BYTES:
            raise ValidationError([Problem(
                str(path), "$",
                f"the job file would be {len(data):,} bytes; a job file may be at most "
                f"{MAX_FILE_BYTES:,} bytes (1 MiB)",
            )])
        write_atomic(path, data)
        return version_of(data)

    def remove(self, name: str) -> None:
        """Delete ``<name>.json`` (and make that durable). Call it while holding :meth:`locked`."""
        path = self.path_for(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise JobNotFoundError(name) from None
        fsync_dir(self.directory)
