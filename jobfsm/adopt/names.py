"""Job names for imported commands: derived from the program a command runs, valid for the
schema (``^[a-z0-9][a-z0-9_.-]{0,63}$``) and unique within one import.

``cd /srv/app && nice -n 10 ./bin/backup.sh --full`` is named ``backup``: words before the
program are skipped (``cd …``, ``test …`` and ``[ … ]`` steps, ``VAR=value`` assignments,
wrappers such as ``nice``, ``sudo``, ``timeout``, interpreters such as ``python3`` or
``run-parts``, and their options), then the program's file name loses a script extension. A
second job of the same name gets ``-2``, then ``-3``…
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection

MAX_NAME = 64
FALLBACK = "job"

_SKIPPED_STEPS = frozenset({"cd", "test", "[", "[[", ":", "true", "export", "umask", "set", "source", "."})
_WRAPPERS = frozenset({
    "nice", "ionice", "nohup", "sudo", "exec", "time", "timeout", "chronic", "cronic", "flock",
    "env", "command", "stdbuf", "setsid", "sh", "bash", "dash", "zsh", "ksh", "python", "python2",
    "python3", "perl", "ruby", "php", "node", "run-parts", "xargs", "su",
})
_OPERATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")", "{", "}", ";;", "|&"})
_ASSIGNMENT = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*=")
_EXTENSIONS = (".sh", ".bash", ".py", ".pl", ".rb", ".php", ".js")
_NOT_ALLOWED = re.compile(r"[^a-z0-9_.-]+")
_SPLIT_WORDS = re.compile(r"&&|\|\||[;|&()<>]|[^\s;|&()<>]+")


_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
_OPTION_ARGUMENTS = {
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}, "nice": {"-n"}, "ionice": {"-c", "-n", "-p"},
    "flock": {"-w", "-E", "-c"}, "timeout": {"-s", "-k"}, "su": {"-s", "-g"}, "stdbuf": {"-i", "-o", "-e"},
    "run-parts": {"-u", "--umask", "--arg", "--regex"},
}
"""Options of a wrapper that take the next word as their value."""
_POSITIONAL = {"flock": 1, "timeout": 1, "su": 1}
"""Words a wrapper takes before the command it runs (the lock file, the duration, the user)."""
_REDIRECTION = re.compile(r"\d*(?:&>>?|>>?&?|<&?)[ \t]*(?:\d+\b|[^\s;&|()<>]+)?")


def _words(command: str) -> list[str]:
    command = _REDIRECTION.sub(" ", command)
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        return list(lexer)
    except ValueError:  # an unbalanced quote: the shell would fail too, but name it all the same
        return _SPLIT_WORDS.findall(command)


def _program(command: str, depth: int = 0) -> str | None:
    """The first word of the command that names what it runs, or None."""
    words = _words(command)
    skipping_step = False
    wrapper: str | None = None
    positional = 0
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word in _OPERATORS or set(word) <= set("&|;()<>"):
            skipping_step, wrapper = False, None
            continue
        if skipping_step or _ASSIGNMENT.match(word):
            continue
        if word in _SKIPPED_STEPS:
            skipping_step = True
            continue
        if word.startswith("-"):
            if wrapper in _SHELLS and word == "-c" and i < len(words) and depth < 3:
                return _program(words[i], depth + 1)
            if wrapper is not None and word in _OPTION_ARGUMENTS.get(wrapper, ()):
                i += 1
            continue
        if wrapper is not None and positional:
            positional -= 1
            continue
        base = word.rsplit("/", 1)[-1]
        if base in _WRAPPERS or re.fullmatch(r"python\d(?:\.\d+)?", base):
            wrapper, positional = base, _POSITIONAL.get(base, 0)
            continue
        if wrapper is not None and (word.isdigit() or re.fullmatch(r"\d+[smhd]", word)):
            continue
        return base or None
    return None


def slug(text: str) -> str:
    """``text`` made into a valid job name (or :data:`FALLBACK` when nothing of it is left)."""
    name = _NOT_ALLOWED.sub("-", text.lower())
    name = re.sub(r"-{2,}", "-", name)
    name = re.sub(r"\A[^a-z0-9]+", "", name)[:MAX_NAME]
    name = re.sub(r"[-_.]+\Z", "", name)
    return name or FALLBACK


def name_for(command: str) -> str:
    """The name a command suggests, before it is made unique."""
    program = _program(command) or ""
    for extension in _EXTENSIONS:
        if program.lower().endswith(extension) and len(program) > len(extension):
            program = program[: -len(extension)]
            break
    return slug(program)


def unique(name: str, used: Collection[str]) -> str:
    """``name``, or ``name-2``, ``name-3``… (shortened to stay within 64 characters)."""
    if name not in used:
        return name
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = name[: MAX_NAME - len(suffix)].rstrip("-_.") + suffix
        if candidate not in used:
            return candidate
        n += 1
