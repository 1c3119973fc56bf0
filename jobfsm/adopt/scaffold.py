"""What ``jobfsm init`` writes: a jobs repository that works from its first commit.

- ``jobs/example.json``: one disabled job whose ``description`` explains it (JSON has no
  comments, and the schema allows no unknown key, so the description is where the comment goes);
- ``schemas/job.schema.json``: the schema this jobfsm ships, which the example's ``$schema``
  points at, so editors check the files as they are typed;
- ``deploy/jobfsm.service``: a systemd unit running ``jobfsm start`` in this folder with the
  ``jobfsm`` that wrote it (adjust the paths and the user where the repository is deployed).
  Its values are written as systemd reads them back (:func:`unit_word`, :func:`unit_value`), so a
  folder with spaces, quotes, ``%`` or ``$`` in its name works; a name no unit file can hold is
  refused (:func:`unit_trouble`);
- ``.github/workflows/jobfsm.yml``: CI that runs ``jobfsm validate --format github jobs/`` on
  every push and pull request (each problem an annotation on its line). It installs
  ``jobfsm==<this version>``, so CI checks with the schema the files were written for; a comment
  says what to give pip instead when the team's package index has no jobfsm (a wheel, a git URL).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jobfsm import __version__
from jobfsm.config.jobfiles import render_document
from jobfsm.config.schema import schema_text

EXAMPLE_NAME = "example"

EXAMPLE = {
    "$schema": "../schemas/job.schema.json",
    "name": EXAMPLE_NAME,
    "description": (
        "An example to copy: says hello at 06:00 Berlin time on weekdays. Disabled: "
        "'jobfsm enable example' switches it on, 'jobfsm run example' runs it now. The file name "
        "must equal name; 'jobfsm validate jobs/' checks every file; 'jobfsm next \"0 6 * * "
        "mon-fri\"' shows when a schedule fires. Delete this file once you have your own jobs."
    ),
    "schedule": "0 6 * * mon-fri",
    "timezone": "Europe/Berlin",
    "command": "echo \"hello from $JOBFSM_JOB, run $JOBFSM_RUN_ID\"",
    "working_directory": "/tmp",
    "enabled": False,
    "timeout_seconds": 300,
    "env": {"LANG": "C.UTF-8"},
    "overlap": "skip",
    "catch_up": "none",
    "retries": 0,
    "retry_delay_seconds": 60,
}

WORKFLOW = """\
# Checks every job file on each push and pull request; each problem is shown as an annotation
# on its line. Written by `jobfsm init`.
name: jobfsm
on:
  push:
    paths: ["jobs/**", ".github/workflows/jobfsm.yml"]
  pull_request:
    paths: ["jobs/**", ".github/workflows/jobfsm.yml"]
jobs:
  validate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      # The jobfsm this repository was made with, from the package index pip uses. If the team
      # installs jobfsm from elsewhere, give pip that instead (keep the version):
      #   a wheel committed here:  python -m pip install ./wheels/jobfsm-{version}-py3-none-any.whl
      #   a git repository:        python -m pip install "jobfsm @ git+https://<git host>/<group>/jobfsm.git@<tag>"
      #   the team's own index:    python -m pip install --index-url <index URL> "jobfsm=={version}"
      - run: python -m pip install "jobfsm=={version}"
      - run: jobfsm validate --format github jobs/
"""

UNIT = """\
# systemd unit for the jobfsm daemon, written by `jobfsm init` for this folder and this jobfsm.
# Where the repository is deployed elsewhere, adjust WorkingDirectory, ExecStart and User. Install:
#   sudo cp deploy/jobfsm.service /etc/systemd/system/ && sudo systemctl daemon-reload
#   sudo systemctl enable --now jobfsm
[Unit]
Description=jobfsm scheduler daemon
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# Every job runs as this user (cron ran each user's jobs as that user).
User={user}
WorkingDirectory={folder}
Environment={jobs}
Environment={logs}
ExecStart={command}
# SIGTERM: no new runs; running jobs get --grace-seconds to finish, then are killed and recorded.
KillMode=mixed
TimeoutStopSec=90
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_NEEDS_QUOTES = frozenset(" \t\n\r\"'\\")


def unit_word(word: str, *, command: bool = False) -> str:
    """``word`` as one word of a unit file's ``Environment=`` or ``ExecStart=`` line.

    systemd splits those lines into words, each unquoted and C-unescaped (``systemd.syntax``),
    then expands ``%`` specifiers in each (``systemd.unit``: ``%%`` is a ``%``); a command line
    also substitutes ``$NAME`` when the command runs (``systemd.service``: ``$$`` is a ``$``).
    ``Environment=`` substitutes nothing, so ``command`` says which rules apply. The word is
    put in double quotes only when it needs them (a blank, a quote, a backslash)."""
    text = word.replace("%", "%%")
    if command:
        text = text.replace("$", "$$")
    if text and not any(ch in _NEEDS_QUOTES or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return text
    escaped = (_C_ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 32 or ord(ch) == 127 else ch)
               for ch in text)
    return '"' + "".join(escaped) + '"'


def unit_value(text: str) -> str:
    """``text`` as a ``WorkingDirectory=`` or ``User=`` value: systemd takes the rest of the line
    as it is (no quotes, no escapes), expanding only ``%`` specifiers."""
    return text.replace("%", "%%")


def unit_trouble(folder: str, program: str) -> str | None:
    """Why no unit file can name ``folder`` (as ``WorkingDirectory=``) or start ``program`` (the
    first word of ``ExecStart=``), and what to do; None when it can. systemd reads unit files as
    UTF-8, ends a line at a newline and joins one ending in a backslash to the next, strips blanks
    at both ends of a value, and refuses an executable's path with a quote, a backslash or a
    control character; a ``$`` in it would not be a ``$`` in the program's ``argv[0]``."""
    fixes = {"folder": "choose another DIR", "program": "run an installed jobfsm from another folder"}
    for what, text in (("folder", folder), ("program", program)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return f"the {what} {text!r} is not UTF-8 text, which a systemd unit cannot hold; {fixes[what]}"
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            return f"the {what} {text!r} has a control character, which a systemd unit cannot hold; {fixes[what]}"
    if folder != folder.strip() or folder.endswith("\\"):
        return (f"the folder {folder!r} ends in a blank or a backslash, which a systemd unit cannot "
                f"hold; {fixes['folder']}")
    if any(ch in program for ch in "\"'\\$"):
        return (f"the program {program!r} has a quote, a backslash or a '$', which systemd refuses "
                f"in ExecStart=; {fixes['program']}")
    return None


def unit(folder: Path, jobfsm: Sequence[str], user: str) -> str:
    """The systemd unit starting ``jobfsm`` (its command's words) in ``folder`` as ``user``."""
    where = str(folder)
    command = [*jobfsm, "start", "--grace-seconds", "60"]
    return UNIT.format(
        user=unit_value(user), folder=unit_value(where),
        jobs=unit_word(f"JOBFSM_JOBS={folder / 'jobs'}"), logs=unit_word(f"JOBFSM_LOGS={folder / 'logs'}"),
        command=" ".join(unit_word(word, command=True) for word in command),
    )


def files(folder: Path, *, jobfsm: Sequence[str], user: str) -> dict[str, str]:
    """Relative path → text of every file ``jobfsm init`` writes in ``folder`` (absolute and
    normalized: systemd refuses a ``WorkingDirectory=`` with ``..``); ``jobfsm`` is the command
    that starts this jobfsm, as words. Check :func:`unit_trouble` first."""
    return {
        f"jobs/{EXAMPLE_NAME}.json": render_document(EXAMPLE),
        "schemas/job.schema.json": schema_text(),
        "deploy/jobfsm.service": unit(folder, jobfsm, user),
        ".github/workflows/jobfsm.yml": WORKFLOW.format(version=__version__),
    }

