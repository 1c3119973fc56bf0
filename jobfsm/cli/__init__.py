"""The ``jobfsm`` command line: a thin adapter over the library (the README's "Command line").

``main()`` → ``sys.exit(run(argv, stdout, stderr))``, so tests call :func:`run` in-process with
``StringIO`` streams. Parsing imports nothing heavy; each command's module is imported only when
that command runs (``jobfsm --help`` and ``jobfsm validate`` never import Gradio or SQLAlchemy).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import redirect_stdout
from importlib import import_module
from typing import TextIO

from jobfsm.cli.parser import UsageError, build_parser, resolve_globals
from jobfsm.errors import JobfsmError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def run(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run one command; returns the exit code. Never raises for a user's mistake."""
    parser = build_parser()
    try:
        with redirect_stdout(stdout):
            try:
                args = parser.parse_args(list(argv))
            except SystemExit as exc:  # --help, --version
                raise _Exit(int(exc.code or 0)) from None
        resolve_globals(args)
    except _Exit as done:
        return done.code
    except UsageError as exc:
        stderr.write(f"{exc}\n")
        return EXIT_USAGE
    if getattr(args, "command", None) is None:
        stderr.write("jobfsm: error: a command is required (see 'jobfsm --help')\n")
        return EXIT_USAGE
    module_name, function_name = args.handler.split(":")
    handler = getattr(import_module(module_name), function_name)
    try:
        code: int = handler(args, stdout, stderr)
        return code
    except UsageError as exc:
        stderr.write(f"{exc}\n")
        return EXIT_USAGE
    except JobfsmError as exc:
        stderr.write(f"jobfsm: error: {exc}\n")
        return EXIT_INVALID
    except KeyboardInterrupt:
        stderr.write("jobfsm: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK


def main() -> None:
    try:
        code = run(sys.argv[1:], sys.stdout, sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:  # `jobfsm history x | head`
        code = EXIT_OK
    sys.exit(code)
