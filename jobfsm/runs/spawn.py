"""What a run's process is started with, and why it could not start.

- **The argv and the environment.** A string command runs as ``/bin/sh -c COMMAND``, a list as
  it is. The environment is the executor's base, then the job's ``env``, then ``JOBFSM_JOB``,
  ``JOBFSM_RUN_ID``, ``JOBFSM_SCHEDULED_FOR`` and ``JOBFSM_NODE_PID`` (the pid of the jobfsm
  process that started the run), which whatever the run starts inherits: that is how the
  processes of a lost run are found (:mod:`jobfsm.runs.lost`).
- **A config built in code is never validated.** The loader checks every job file against the
  schema; a :class:`~jobfsm.model.JobConfig` built in code is not. What would make its start
  raise or go astray is refused here with a reason, as ``NOT_STARTED``: a name that breaks the
  config's name rule (it becomes a folder), no working directory, and what ``execve`` cannot
  take (a NUL, a variable name with ``=``, a value that is not a string). These are the
  operating system's limits, not the job file's rules (which are stricter, and the schema's).
- **A failed start says what is wrong and names the thing** (``working directory '/x' does not
  exist``): :func:`explain` turns what ``Popen`` raised into one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime

from jobfsm.clock import utc
from jobfsm.config.names import NAME_PATTERN
from jobfsm.model import JobConfig

SHELL = "/bin/sh"


def base_environ(base_env: Mapping[str, str]) -> dict[bytes, bytes]:
    """The base environment as bytes: a run sees it as it was when this was made."""
    # Made once per executor, not per run: copying os.environ is a sizeable part of a start.
    if base_env is os.environ and os.supports_bytes_environ:
        return dict(os.environb)
    return {os.fsencode(k): os.fsencode(v) for k, v in base_env.items()}


def config_problem(job: JobConfig) -> str:
    """Why the name or the working directory of a config cannot be used; '' if they can. The
    name is checked by the config's one rule, because it becomes the run's output folder."""
    name = job.name
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return f"job name {name!r} is not a valid job name, so it cannot name an output folder"
    workdir = job.working_directory
    if not isinstance(workdir, str) or not workdir:  # None would run it in the daemon's folder
        return f"working directory {workdir!r} is not a folder path; set one"
    return ""


def argv(command: object) -> tuple[list[str], str]:
    """The argv of a command, or why ``execve`` could not take it (only a config built in code
    gets that far: the schema refuses all of these in a job file)."""
    if isinstance(command, str):
        if "\0" in command:
            return [], f"command {command!r} contains a NUL character"
        return [SHELL, "-c", command], ""
    if isinstance(command, (list, tuple)):
        if not command:
            return [], "command is an empty list; give the program to run"
        for arg in command:
            if not isinstance(arg, str):
                return [], f"command argument {arg!r} is not a string"
            if "\0" in arg:
                return [], f"command argument {arg!r} contains a NUL character"
        return list(command), ""
    return [], f"command {command!r} is neither a string nor a list of strings"


def run_env(
    base: dict[bytes, bytes], node_pid: bytes, job: JobConfig, run_id: int,
    scheduled_for: datetime | None,
) -> tuple[dict[bytes, bytes], str]:
    """Base env, then the job's, then JOBFSM_*; as bytes, which Popen takes as they are. Or
    why ``execve`` could not take the job's env (only a config built in code gets that far)."""
    env = base.copy()
    if not isinstance(job.env, Mapping):
        return env, f"env {job.env!r} is not a mapping of names to values"
    for key, value in job.env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            return env, f"environment variable {key!r} must be a string with a string value"
        if not key or "=" in key or "\0" in key:
            return env, (
                f"environment variable name {key!r} is invalid: "
                "it must be non-empty without '=' or NUL"
            )
        if "\0" in value:
            return env, f"environment variable {key!r} contains a NUL character"
        env[os.fsencode(key)] = os.fsencode(value)
    env[b"JOBFSM_JOB"] = os.fsencode(job.name)
    env[b"JOBFSM_RUN_ID"] = str(run_id).encode()
    env[b"JOBFSM_NODE_PID"] = node_pid
    env[b"JOBFSM_SCHEDULED_FOR"] = (
        utc(scheduled_for).isoformat().encode() if scheduled_for else b""
    )
    return env, ""


def explain(exc: BaseException, job: JobConfig, argv: list[str]) -> str:
    """A one-line reason why Popen failed, naming the directory or the program at fault."""
    if not isinstance(exc, OSError):
        return f"could not start {job.command_text!r}: {exc}"
    cwd = job.working_directory
    program = argv[0] if argv else ""
    about_cwd = exc.filename == cwd and not (exc.filename == program and os.path.isdir(cwd))
    if about_cwd:
        return _about_working_directory(exc, cwd)
    if isinstance(exc, FileNotFoundError):
        if "/" not in program:
            return (
                f"command {program!r} not found on the PATH; "
                "give its full path or set PATH in the job's env"
            )
        if os.path.exists(program):
            return f"cannot run {program!r}: the interpreter on its #! line was not found"
        return f"command {program!r} not found"
    if isinstance(exc, NotADirectoryError):
        return f"command {program!r} not found: a part of its path is not a directory"
    if isinstance(exc, PermissionError):
        return (
            f"permission denied running {program!r}; "
            "check that it is executable (chmod +x) and its folders are searchable"
        )
    if exc.errno == 8:  # ENOEXEC
        return (
            f"cannot run {program!r}: exec format error "
            "(a script without a #! line, or built for another machine?)"
        )
    return f"cannot run {program!r}: {exc.strerror or str(exc)}"


def _about_working_directory(exc: OSError, cwd: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"working directory {cwd!r} does not exist"
    if isinstance(exc, NotADirectoryError):
        return f"working directory {cwd!r} is not a directory"
    if isinstance(exc, PermissionError):
        return f"permission denied entering working directory {cwd!r}"
    return f"cannot enter working directory {cwd!r}: {exc.strerror or exc}"
