"""``jobfsm start``: the daemon in the foreground."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from jobfsm.cli.parser import UsageError

if TYPE_CHECKING:
    from jobfsm.daemon.operations import OperationsOptions


def cmd_start(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The option values were bounded by the parser (:mod:`jobfsm.cli.parser`)."""
    from jobfsm.daemon.process import run_daemon

    return run_daemon(
        args.jobs, args.logs, args.store, max_workers=args.max_workers,
        grace_seconds=args.grace_seconds, node=args.node, keep_runs=args.keep_runs,
        keep_days=args.keep_days, stderr=err, dead_after=args.dead_after, operations=_operations(args),
    )


def _operations(args: argparse.Namespace) -> OperationsOptions:
    """Notifications and metrics from the options and the environment; a bad value is a usage error."""
    from jobfsm.daemon.operations import OperationsOptions
    from jobfsm.notify.settings import NotifySettings, SettingsError

    try:
        notify = NotifySettings.build(webhook=args.notify_webhook, email=args.notify_email, smtp=args.smtp)
    except SettingsError as exc:
        raise UsageError(f"jobfsm start: error: {exc}") from None
    if not args.metrics:  # prometheus_client is loaded only for --metrics
        return OperationsOptions(notify=notify)
    from jobfsm.metrics import MetricsAddressError, parse_address

    try:
        return OperationsOptions(notify=notify, metrics=parse_address(args.metrics))
    except MetricsAddressError as exc:
        raise UsageError(f"jobfsm start: error: {exc}") from None
