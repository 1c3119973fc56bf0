"""``jobfsm start``: the daemon in the foreground."""

from __future__ import annotations

import argparse
from typing import TextIO


def cmd_start(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The option values were bounded by the parser (:mod:`jobfsm.cli.parser`)."""
    from jobfsm.daemon.process import run_daemon

    return run_daemon(
        args.jobs, args.logs, args.store, max_workers=args.max_workers,
        grace_seconds=args.grace_seconds, node=args.node, keep_runs=args.keep_runs,
        keep_days=args.keep_days, stderr=err, dead_after=args.dead_after,
    )
