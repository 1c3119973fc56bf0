"""What a job file may hold: the bounds that keep a hostile file from crashing, hanging or
filling the memory of ``jobfsm validate`` and the daemon, and the operating system's limits a
job must fit for its command to start at all (a job that passes CI and fails every fire is
worse than one that fails CI).

- **Size.** A job file is read only when it is a regular file of at most
  :data:`MAX_FILE_BYTES` (:func:`jobfsm.config.loader.read_job_bytes`).
- **Nesting.** At most :data:`MAX_NESTING` levels of arrays and objects, checked on the text
  before it is parsed (Python's JSON parser and ``repr`` recurse, and give up with
  ``RecursionError`` at about a thousand levels) and on documents handed to the service.
- **Exec.** Linux refuses to start a program when one argument or environment string is longer
  than ``MAX_ARG_STRLEN`` (:data:`MAX_ARGUMENT_BYTES`), when arguments and environment together
  exceed ``ARG_MAX`` (:data:`MAX_EXEC_BYTES` is half of its default), or when the working
  directory is longer than ``PATH_MAX`` (:data:`MAX_PATH_BYTES`). The schema bounds the same
  strings in characters (``maxLength``, which editors show); :func:`exec_problems` checks the
  bytes, which is what the kernel counts. NUL characters and lone surrogates, which no operating
  system call takes, are refused by the schema's patterns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jobfsm.problems import Problem

MAX_FILE_BYTES = 1024 * 1024
"""A job file is at most 1 MiB (a real one is under 2 KiB; this bounds what one read costs)."""
MAX_NESTING = 32
"""Levels of arrays and objects in a job file, the top-level object included (a job needs 3)."""
MAX_ARGUMENT_BYTES = 128 * 1024 - 1
"""One argument or ``NAME=value`` environment string, in UTF-8 bytes: Linux's
``MAX_ARG_STRLEN`` (32 pages of 4 KiB) less the terminating NUL."""
MAX_EXEC_BYTES = 1024 * 1024
"""The command and ``env`` of a job together, counted as the kernel does: each string's bytes,
its NUL and an 8-byte pointer. Half of ``ARG_MAX`` with the default 8 MiB stack (2 MiB), so the
daemon's own environment, which every run inherits, keeps the other half."""
MAX_PATH_BYTES = 4095
"""The working directory, in UTF-8 bytes: ``PATH_MAX`` (4,096) less the terminating NUL."""
_POINTER_BYTES = 8
_SHELL = ("/bin/sh", "-c")  # a string command runs as /bin/sh -c COMMAND

# A JSON string (closed or running to the end of the text) or one bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)


def text_nesting_offset(text: str, limit: int = MAX_NESTING) -> int | None:
    """Where the JSON text ``text`` first opens more than ``limit`` arrays and objects, or
    None. Brackets inside strings do not count. Counting every bracket first (in C) answers
    for almost every file without looking at a single token."""
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for match in _TOKEN.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > limit:
                return match.start()
        elif char in "]}":
            depth -= 1
    return None


def nested_too_deeply(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` (a parsed document: dicts, lists, scalars) holds more than ``limit``
    levels of containers, itself included. Iterative, so any depth is safe to ask about."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        for child in children:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))
    return False


def nesting_message(limit: int = MAX_NESTING) -> str:
    return (
        f"nested too deeply: at most {limit} levels of arrays and objects (a job file needs 3); "
        "remove the extra brackets"
    )


def _utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _certainly_small(document: Mapping[str, Any]) -> bool:
    """Whether the characters alone show every limit is kept (a character is at most 4 bytes
    in UTF-8): true of every real job, and costs no encoding and no copy."""
    workdir = document.get("working_directory")
    chars, count = len(workdir) if isinstance(workdir, str) else 0, 0
    command = document.get("command")
    if isinstance(command, str):
        chars, count = chars + len(command) + 10, 3
    elif isinstance(command, list):
        chars += sum(len(arg) for arg in command if isinstance(arg, str))
        count = len(command)
    env = document.get("env")
    if isinstance(env, dict):
        chars += sum(len(key) + 1 + len(value) for key, value in env.items()
                     if isinstance(key, str) and isinstance(value, str))
        count += len(env)
    return 4 * chars + (1 + _POINTER_BYTES) * count <= min(MAX_ARGUMENT_BYTES, MAX_PATH_BYTES)


def exec_problems(document: Mapping[str, Any], path: str, skip: frozenset[str]) -> list[Problem]:
    """Byte limits of what the job hands the operating system: the working directory, each
    argument and environment string, and all of them together. Fields the schema already
    reported (``skip``) or that have the wrong type are left to the schema's messages.

    Cheap for every real file: a string of ``n`` characters has at most ``4 n`` bytes, so the
    bytes are counted only when the characters alone cannot settle it."""
    if _certainly_small(document):
        return []
    problems: list[Problem] = []
    workdir = document.get("working_directory")
    if (isinstance(workdir, str) and "$.working_directory" not in skip
            and len(workdir) * 4 > MAX_PATH_BYTES and _utf8_bytes(workdir) > MAX_PATH_BYTES):
        problems.append(Problem(
            path, "$.working_directory",
            f"is {_utf8_bytes(workdir):,} bytes long in UTF-8; the operating system enters a folder of "
            f"at most {MAX_PATH_BYTES:,} bytes (PATH_MAX); use a shorter path",
        ))
    strings: list[tuple[str, str]] = []  # (JSON path, the string as the kernel gets it)
    command = document.get("command")
    if isinstance(command, str):
        strings += [("", part) for part in _SHELL] + [("$.command", command)]
    elif isinstance(command, list):
        strings += [(f"$.command[{i}]", arg) for i, arg in enumerate(command) if isinstance(arg, str)]
    env = document.get("env")
    if isinstance(env, dict):
        strings += [(f"$.env.{key}", f"{key}={value}") for key, value in env.items()
                    if isinstance(key, str) and isinstance(value, str)]
    total = 0
    for json_path, text in strings:
        size = _utf8_bytes(text)
        total += size + 1 + _POINTER_BYTES
        if size <= MAX_ARGUMENT_BYTES or not json_path or json_path in skip:
            continue
        if json_path.startswith("$.env."):
            what = "environment variable (NAME=value)"
            fix = "keep the value in a file and pass its path"
        else:
            what = "argument"
            fix = "put the script in a file and run that file"
        problems.append(Problem(
            path, json_path,
            f"is {size:,} bytes long in UTF-8; Linux passes at most {MAX_ARGUMENT_BYTES:,} bytes in "
            f"one {what} (MAX_ARG_STRLEN), so the job could never start; {fix}",
        ))
    reported = any(p.startswith(("$.command", "$.env")) for p in skip) or problems
    if total > MAX_EXEC_BYTES and not reported:
        problems.append(Problem(
            path, "$.command" if not isinstance(env, dict) or not env else "$.env",
            f"the command and env take {total:,} bytes when the job starts (each string with its NUL "
            f"and an 8-byte pointer); at most {MAX_EXEC_BYTES:,} fit beside the daemon's own "
            "environment in Linux's default ARG_MAX of 2 MiB; pass the data in a file instead",
        ))
    return problems
