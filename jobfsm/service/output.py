"""Where a run's full output is, and what ``jobfsm logs`` can show of it from here.

A run's output files are written on the host of the node that ran it (``logs/runs/<job>/<id>.out``
and ``.err`` there); the store keeps their head and tail (``stdout_tail``, ``stderr_tail``) for
every other host. A file that can be read here (this node's host, or a logs folder shared between
hosts) is read whole; otherwise the stored head and tail are shown with a note naming the node,
its host and the path of the full output on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum

from jobfsm.model import RunStatus
from jobfsm.nodes import node_host, this_host
from jobfsm.store.abc import RunRecord


class OutputSource(Enum):
    """What the output shown of a run is."""

    FILE = "file"
    """The run's output files, read here."""
    STORED = "stored"
    """The head and tail the store keeps: the files are on another host, or gone."""


@dataclass(frozen=True)
class OutputPlace:
    """What can be read of a run's output here, and a note for people when it is not all."""

    source: OutputSource
    note: str = ""


def _readable(path: str | None) -> bool:
    return bool(path) and os.access(path, os.R_OK)  # type: ignore[arg-type]


def where_is(node: str) -> str:
    """``node 'b:42' (host b)``; a name chosen with ``--node`` says no host."""
    host = node_host(node)
    return f"node {node!r}" + (f" (host {host})" if host else "")


def output_place(run: RunRecord) -> OutputPlace:
    """Whether ``run``'s output files can be read here; if not, where they are."""
    if _readable(run.stdout_path) or _readable(run.stderr_path):
        return OutputPlace(OutputSource.FILE)
    here = node_host(run.node) == this_host()
    if not run.stdout_path and not run.stderr_path:
        if run.status is RunStatus.RUNNING and not here:
            return OutputPlace(
                OutputSource.STORED,
                f"running on {where_is(run.node)}; its output is written there (`jobfsm logs` on that "
                "host shows it as it is written) and kept here once the run ends",
            )
        return OutputPlace(OutputSource.FILE)  # nothing was written (skipped, or still running here)
    path = _paths(run)
    shown = "shown here: the head and tail the store keeps"
    if here:
        return OutputPlace(OutputSource.STORED, f"the output file {path} is gone; {shown}")
    return OutputPlace(
        OutputSource.STORED,
        f"the full output is on {where_is(run.node)} at {path} (`jobfsm logs` there reads it); {shown}",
    )


def _paths(run: RunRecord) -> str:
    out, err = run.stdout_path, run.stderr_path
    if out and err and err == out.removesuffix(".out") + ".err":
        return f"{out} (and .err)"
    return " and ".join(p for p in (out, err) if p)
