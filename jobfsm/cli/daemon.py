"""``jobfsm start``: the daemon in the foreground."""

from __future__ import annotations

import argparse
from typing import TextIO

from jobfsm.cli.parser import UsageError


def cmd_start(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jobfsm.daemon import run_daemon

    if args.max_workers is not None and args.max_workers < 1:
        raise UsageError("jobfsm start: error: --max-workers must be at least 1 (see 'jobfsm start --help')")
    if args.grace_seconds < 0:
        raise UsageError("jobfsm start: error: --grace-seconds cannot be negative (see 'jobfsm start --help')")
    return run_daemon(
        args.jobs, args.logs, args.store, max_workers=args.max_workers,
        grace_seconds=args.grace_seconds, node=args.node, stderr=err,
    )
