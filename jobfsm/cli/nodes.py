"""``jobfsm nodes``: every node seen recently, alive or not, and what it runs (DESIGN.md §4, §5)."""

from __future__ import annotations

import argparse
from typing import TextIO

from jobfsm.cli.jobs import _json, _service, _table, _when
from jobfsm.problems import one_line
from jobfsm.service.nodes import NodeView


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0:  # the node's clock is ahead of the store's
        return " (ahead)"
    if seconds < 120:
        return f" ({seconds:.0f}s ago)"
    minutes = int(seconds // 60)
    return f" ({minutes}m ago)" if minutes < 120 else f" ({minutes // 60}h ago)"


def _running(view: NodeView) -> str:
    return ", ".join(f"{run.id} {one_line(run.job)}" for run in view.running) or "-"


def cmd_nodes(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _service(args) as service:
        views = service.nodes(seen_within=args.seen_within, dead_after=args.dead_after)
    if args.format == "json":
        _json(out, [v.to_dict() for v in views])
        return 0
    if not views:
        out.write(f"no node seen in the last {args.seen_within:g} s and none running anything\n")
        return 0
    rows = [
        [
            one_line(v.node),
            one_line(v.host or "-"),
            "-" if v.pid is None else str(v.pid),
            _when(v.started_at),
            _when(v.last_heartbeat) + _age(v.seconds_since_heartbeat),
            v.alive_text,
            _running(v),
        ]
        for v in views
    ]
    _table(out, ["NODE", "HOST", "PID", "STARTED", "LAST HEARTBEAT", "ALIVE", "RUNNING (run job)"], rows)
    return 0
