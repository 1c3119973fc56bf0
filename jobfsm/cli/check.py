"""``jobfsm check``: one line per problem (no live daemon, missed fires, failing jobs), exit 1
if there is any, else one ``ok`` line and exit 0. ``--format json``: ``{"ok", "problems"}``."""

from __future__ import annotations

import argparse
from typing import TextIO

from jobfsm.cli.jobs import _json, _service
from jobfsm.problems import one_line


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jobfsm.service.check import health_check

    with _service(args) as service:
        findings = health_check(service)
    if args.format == "json":
        _json(out, {"ok": not findings, "problems": [f.to_dict() for f in findings]})
    elif findings:
        for finding in findings:
            out.write(f"{finding.kind.value}: {one_line(finding.message)}\n")
    else:
        out.write("ok: a daemon is alive; no job missed fires or is failing\n")
    return 1 if findings else 0
