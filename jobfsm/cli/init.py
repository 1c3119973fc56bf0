"""``jobfsm init [DIR]``: start a jobs repository (:mod:`jobfsm.adopt.scaffold` says what is in
it). Nothing is written when any of its files exists already: exit 1, each one named."""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import sys
from pathlib import Path
from typing import TextIO

from jobfsm import __version__
from jobfsm.cli.parser import PATH_QUOTE_CHARS, UsageError
from jobfsm.problems import quote


def _jobfsm() -> list[str]:
    """How the unit starts this jobfsm (its words): its console script, else this Python with
    ``-m``."""
    here = Path(sys.executable).parent / "jobfsm"
    found = str(here) if here.is_file() and os.access(here, os.X_OK) else shutil.which("jobfsm")
    return [os.path.abspath(found)] if found else [sys.executable, "-m", "jobfsm"]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "jobfsm"


def cmd_init(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jobfsm.adopt.scaffold import EXAMPLE_NAME, files, unit_trouble
    from jobfsm.config.jobfiles import write_atomic

    folder = Path(args.dir).absolute()
    shown = quote(str(args.dir), PATH_QUOTE_CHARS)
    try:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"jobfsm init: error: {shown} is not a folder")
    except OSError as exc:  # a name too long, a loop of links, no permission
        raise UsageError(f"jobfsm init: error: cannot use {shown}: {exc.strerror or exc}") from None
    try:
        where = folder.resolve()  # systemd refuses '..' in WorkingDirectory=
    except (OSError, RuntimeError) as exc:
        raise UsageError(f"jobfsm init: error: cannot use {shown}: {exc}") from None
    command = _jobfsm()
    trouble = unit_trouble(str(where), command[0])
    if trouble:
        raise UsageError(f"jobfsm init: error: {trouble}")
    planned = files(where, jobfsm=command, user=_user())
    existing = [rel for rel in planned if os.path.lexists(folder / rel)]
    if existing:
        for rel in existing:
            err.write(f"jobfsm init: {quote(str(folder / rel), PATH_QUOTE_CHARS)} exists; not written over\n")
        err.write(f"jobfsm init: nothing written in {shown} (move those files away, or choose another DIR)\n")
        return 1
    try:
        for rel, text in planned.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text.encode("utf-8"))
            out.write(f"wrote {rel}\n")
    except OSError as exc:
        raise UsageError(f"jobfsm init: error: cannot write in {shown}: {exc.strerror or exc}") from None
    out.write(
        f"\nNext, in {shown}:\n"
        "  jobfsm validate jobs/          check the job files (CI runs it too: .github/workflows/jobfsm.yml)\n"
        f"  jobfsm enable {EXAMPLE_NAME}          switch the example on (or write your own in jobs/)\n"
        "  jobfsm start                   run the daemon here (deploy/jobfsm.service runs it under systemd)\n"
        "  jobfsm import crontab FILE     bring an existing crontab over, one disabled job file a line\n"
        f"CI installs jobfsm=={__version__} from your package index; if your jobfsm comes from elsewhere "
        "(a wheel, a git URL), the comment above that step in the workflow says what to give pip.\n"
    )
    return 0
