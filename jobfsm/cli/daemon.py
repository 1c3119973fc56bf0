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
    if args.keep_runs < 0:
        raise UsageError("jobfsm start: error: --keep-runs cannot be negative (see 'jobfsm start --help')")
    if not args.keep_days >= 0:  # also refuses nan
        raise UsageError("jobfsm start: error: --keep-days cannot be negative (see 'jobfsm start --help')")
    return run_daemon(
        args.jobs, args.logs, args.store, max_workers=args.max_workers,
        grace_seconds=args.grace_seconds, node=args.node, keep_runs=args.keep_runs,
        keep_days=args.keep_days, stderr=err,
    )
