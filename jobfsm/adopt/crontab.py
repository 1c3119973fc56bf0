"""A crontab read as jobfsm job documents: pure, no files written (``jobfsm import crontab``
writes them, :mod:`jobfsm.cli.importer`).

What each line becomes (Vixie/Debian cron's rules, ``man 5 crontab``):

- ``# …`` and blank lines are skipped.
- ``NAME = value`` (quotes around the value removed) sets a variable for the job lines *after*
  it; a later line overrides an earlier one for the jobs after it. Each job's ``env`` holds the
  variables set above it, except these, which mean something to cron itself:
  ``SHELL`` (the command runs through that shell: ``[SHELL, "-c", command]``; ``/bin/sh``, the
  default, stays a plain string command), ``CRON_TZ`` (the ``timezone`` the schedule is read in;
  a leading ``:`` is dropped), ``TZ`` (the ``timezone`` too when there is no ``CRON_TZ``, and
  kept in ``env``, as the command saw it under cron), ``MAILTO`` (the addresses become
  ``notify.email``; cron mailed a job's output, jobfsm mails on failure, recovery, missed fires
  and lost runs; a local user name is not an address and is left out, with one warning for the
  MAILTO line naming how many jobs it applies to; ``MAILTO=""`` adds nothing). ``HOME`` stays in ``env`` and is also the working directory, as
  cron runs a job in ``$HOME``.
- A job line: five time fields or a macro (``@daily``…; ``@reboot`` cannot be converted, jobfsm
  fires on a clock), then, in a system crontab (``/etc/crontab``, ``/etc/cron.d/*``), the user,
  then the command. The schedule is kept as written (fields joined by one space) and must be
  one jobfsm's cron accepts. A sixth time-like field (seconds or a year, from another cron
  dialect) is refused, as cron would run it as a command.
- ``%`` in the command keeps cron's meaning: the first one not escaped as ``\\%`` ends the
  command and starts its standard input, in which every further ``%`` is a newline; ``\\%`` is a
  ``%`` in both parts (any other backslash stays). A job file has no field for standard input,
  so a job with one becomes a list command,
  ``["/bin/sh", "-c", "printf '%s' \\"$1\\" | \\"$0\\" -c \\"$2\\"", SHELL, INPUT, COMMAND]``: the
  input and the command appear verbatim in the file, no quoting can go wrong, and the command
  reads exactly the bytes cron would have given it (no newline added).

Every job is written as its own document and validated with the loader's
:func:`~jobfsm.config.loader.validate_document`; a line whose document fails is a problem
naming the line and the field, and is not converted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jobfsm.adopt.names import name_for, unique
from jobfsm.config.loader import validate_document

DEFAULT_SHELL = "/bin/sh"
STDIN_WRAPPER = "printf '%s' \"$1\" | \"$0\" -c \"$2\""
"""Run by ``/bin/sh -c`` with ``$0`` the shell, ``$1`` the input, ``$2`` the command."""
MAX_DESCRIPTION = 1000
_SPECIAL = frozenset({"SHELL", "CRON_TZ", "MAILTO"})
_ENV_LINE = re.compile(r"\A[ \t]*([^=\s]+)[ \t]*=[ \t]*(.*?)[ \t]*\Z")
_ENV_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_WORD = re.compile(r"[ \t]*(\S+)")
_TIME_LIKE = re.compile(r"\A[0-9*][0-9*,/-]*\Z")
_USER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_.-]*\$?\Z")


@dataclass(frozen=True)
class ImportedJob:
    """One converted crontab line."""

    line: int
    """Its line number (from 1)."""
    document: dict[str, Any]
    """The job document, valid, in the order it is written."""
    warnings: tuple[str, ...] = ()
    """What was carried over with a caveat (the user column)."""

    @property
    def name(self) -> str:
        return str(self.document["name"])


@dataclass(frozen=True)
class LineProblem:
    """A line that was not converted (a job line) or not applied (an environment line), and why."""

    line: int
    text: str
    reason: str
    environment: bool = False
    """An environment line (the jobs after it do without it), else a job line (no job file)."""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class LineWarning:
    """An environment line applied with a caveat (a MAILTO naming a local user)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: warning: {self.message}"


@dataclass(frozen=True)
class CrontabImport:
    """What :func:`parse_crontab` made of a crontab."""

    jobs: tuple[ImportedJob, ...]
    problems: tuple[LineProblem, ...]
    lines: int
    """Job lines seen (converted or not); environment lines, comments and blanks do not count,
    so ``len(jobs)`` plus the problems that are not ``environment`` ones is ``lines``."""
    warnings: tuple[LineWarning, ...] = ()
    """One per environment line applied with a caveat."""


@dataclass
class _Environment:
    """The variables set so far, as cron would hand them to the next job line."""

    variables: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {k: v for k, v in self.variables.items() if k not in _SPECIAL}

    @property
    def shell(self) -> str:
        return self.variables.get("SHELL") or DEFAULT_SHELL

    @property
    def timezone(self) -> str | None:
        zone = self.variables.get("CRON_TZ") or self.variables.get("TZ")
        return zone.removeprefix(":") if zone else None

    @property
    def mailto(self) -> tuple[list[str], list[str]]:
        """(addresses, local user names) of MAILTO."""
        names = [n for n in re.split(r"[,\s]+", self.variables.get("MAILTO", "")) if n]
        addresses = list(dict.fromkeys(n for n in names if "@" in n))
        return addresses, [n for n in names if "@" not in n]


@dataclass
class _LocalMailto:
    """A MAILTO line naming local users, and how many converted jobs it applied to."""

    line: int
    users: list[str]
    jobs: int = 0

    def warning(self) -> LineWarning:
        if self.jobs:
            left = (f"left out of the {self.jobs} job(s) it applies to (add an address to their "
                    "notify.email)")
        else:
            left = "not carried over (no job after it was converted)"
        return LineWarning(self.line, f"MAILTO {', '.join(self.users)}: a local user, not an e-mail "
                                      f"address; {left}")


def split_percent(command: str) -> tuple[str, str | None]:
    """Cron's ``%`` rule: (the command, its standard input or None)."""
    out: list[str] = []
    escaped = False
    for i, ch in enumerate(command):
        if escaped:
            escaped = False
            if ch == "%":
                out[-1] = "%"  # the backslash goes
                continue
            out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            out.append(ch)
            continue
        if ch == "%":
            return "".join(out), _input(command[i + 1:])
        out.append(ch)
    return "".join(out), None


def _input(data: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in data:
        if escaped:
            escaped = False
            if ch == "%":
                out[-1] = "%"
                continue
        elif ch == "%":
            out.append("\n")
            continue
        escaped = ch == "\\"
        out.append(ch)
    return "".join(out)


def command_for(command: str, shell: str) -> str | list[str]:
    """The job's ``command`` for a crontab command run by ``shell`` (``%`` rule applied)."""
    text, stdin = split_percent(command)
    if stdin is not None:
        return [DEFAULT_SHELL, "-c", STDIN_WRAPPER, shell, stdin, text]
    if shell == DEFAULT_SHELL:
        return text
    return [shell, "-c", text]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _words(text: str, count: int) -> tuple[list[str], str] | None:
    """The first ``count`` words of ``text`` and the rest (its leading blanks removed)."""
    words, pos = [], 0
    for _ in range(count):
        match = _WORD.match(text, pos)
        if match is None:
            return None
        words.append(match.group(1))
        pos = match.end()
    rest = text[pos:].lstrip(" \t")
    return words, rest


def _description(source: str, number: int, line: str, user: str | None) -> str:
    head = f"Imported from {source} line {number}"
    tail = f" (cron ran it as user {user!r})" if user else ""
    quoted = line.strip()
    room = MAX_DESCRIPTION - len(head) - len(tail) - 4
    if len(quoted) > room:
        quoted = quoted[: room - 1] + "…"
    return f"{head}: `{quoted}`{tail}"


def parse_crontab(
    text: str,
    *,
    source: str = "crontab",
    user_column: bool = False,
    enabled: bool = False,
    home_of: Callable[[str | None], str],
    used_names: Iterable[str] = (),
) -> CrontabImport:
    """Convert every job line of ``text``.

    ``user_column``: a system crontab (a user between the schedule and the command).
    ``home_of(user)``: the working directory of a job without ``HOME`` (cron runs a job in its
    user's home; ``user`` is None in a user crontab). ``used_names``: names the new jobs must
    not take (they are made unique among themselves anyway)."""
    env = _Environment()
    used = set(used_names)
    jobs: list[ImportedJob] = []
    problems: list[LineProblem] = []
    mailtos: list[_LocalMailto] = []
    mailto: _LocalMailto | None = None
    job_lines = 0
    for number, raw in enumerate(text.split("\n"), start=1):  # cron ends lines at \n only
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        assignment = _ENV_LINE.match(line)
        if any("\ud800" <= ch <= "\udfff" for ch in line):
            if assignment:
                problems.append(LineProblem(number, line, "not UTF-8 text; not applied to the jobs after it",
                                            environment=True))
            else:
                problems.append(LineProblem(number, line, "not UTF-8 text; not converted"))
                job_lines += 1
            continue
        if assignment:
            name, value = assignment.group(1), _unquote(assignment.group(2))
            if not _ENV_NAME.match(name):
                problems.append(LineProblem(
                    number, line,
                    f"environment variable {name!r} cannot be a job's env name (letters, digits "
                    "and '_', not starting with a digit); not applied to the jobs after it",
                    environment=True,
                ))
                continue
            env.variables[name] = value
            if name == "MAILTO":
                users = env.mailto[1]
                mailto = _LocalMailto(number, users) if users else None
                if mailto:
                    mailtos.append(mailto)
            continue
        job_lines += 1
        result = _job(line, number, env, source=source, user_column=user_column,
                      enabled=enabled, home_of=home_of, used=used)
        if isinstance(result, LineProblem):
            problems.append(result)
        else:
            used.add(result.name)
            jobs.append(result)
            if mailto:
                mailto.jobs += 1
    return CrontabImport(tuple(jobs), tuple(problems), job_lines, tuple(m.warning() for m in mailtos))


def _job(
    line: str, number: int, env: _Environment, *, source: str, user_column: bool, enabled: bool,
    home_of: Callable[[str | None], str], used: set[str],
) -> ImportedJob | LineProblem:
    def problem(reason: str) -> LineProblem:
        return LineProblem(number, line, reason)

    first = line.lstrip(" \t")
    extra = 1 if user_column else 0
    if first.startswith("@"):
        split = _words(first, 1 + extra)
        if split is None:
            return problem("a macro with no command; not converted")
        words, rest = split
        macro = words[0].lower()
        if macro == "@reboot":
            return problem("@reboot runs once at boot; jobfsm fires on a clock, so this line is "
                           "not converted (start it from a systemd unit instead)")
        schedule = macro
    else:
        split = _words(first, 5 + extra)
        if split is None:
            return problem("not an environment setting nor a job line (five time fields, "
                           f"{'a user, ' if user_column else ''}a command); not converted")
        words, rest = split
        schedule = " ".join(words[:5])
    user = words[-1] if user_column else None
    # The word after the schedule: the user, or the command's first word. Time-like, it is a
    # seconds or year field of another dialect; cron would run it as a command.
    following = words[-1] if user_column else (_words(rest, 1) or ([""], ""))[0][0]
    if not first.startswith("@") and _TIME_LIKE.match(following):
        return problem(f"a sixth time field {following!r} (seconds or years are another cron's "
                       "dialect: jobfsm has five fields); not converted")
    if user is not None and not _USER.match(user):
        return problem(f"{user!r} is not a user name (a system crontab has one between the "
                       "schedule and the command); not converted")
    if not rest.strip():
        return problem("no command after the schedule; not converted")
    command = command_for(rest, env.shell)
    if command == "" or (isinstance(command, list) and not command[-1].strip()):
        return problem("the command is empty before its first '%' (standard input); not converted")
    variables = env.env()
    workdir = variables.get("HOME") or home_of(user)
    base = name_for(command if isinstance(command, str) else command[-1])
    name = unique(base, used)
    warnings: list[str] = []
    document: dict[str, Any] = {
        "name": name,
        "description": _description(source, number, line, user),
        "schedule": schedule,
    }
    zone = env.timezone
    if zone:
        document["timezone"] = zone
    document["command"] = command
    document["working_directory"] = workdir
    document["enabled"] = enabled
    if variables:
        document["env"] = variables
    addresses = env.mailto[0]
    if addresses:
        document["notify"] = {"email": addresses}
    if user is not None:
        warnings.append(f"cron ran this as user {user!r}; jobfsm runs every job as the daemon's user")
    report = validate_document(document, f"{name}.json", stem=name)
    if not report.valid:
        errors = "; ".join(f"{p.json_path}: {p.message}" for p in report.errors)
        return problem(f"{errors}; not converted")
    return ImportedJob(number, document, tuple(warnings))


def looks_like_system(text: str, is_user: Callable[[str], bool]) -> bool:
    """Whether ``text`` reads as a system crontab: every job line has, after its schedule, a
    word ``is_user`` knows (a crontab with no job line reads as a user crontab)."""
    seen = False
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#") or _ENV_LINE.match(line):
            continue
        split = _words(line, 2 if line.startswith("@") else 6)
        if split is None or not is_user(split[0][-1]):
            return False
        seen = True
    return seen
