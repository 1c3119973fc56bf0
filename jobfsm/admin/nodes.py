"""The admin page's Nodes view: every node seen recently, alive or not, and what it runs.

A table of plain-text cells (node names and job names are data: never rendered as markup) and a
summary of fixed words and numbers, refreshed by the section's timer. It reaches the service only
through :class:`NodesHandlers`, whose one method passes the same role check as every handler of
:class:`~jobfsm.admin.handlers.JobsHandlers` (any signed-in user may look), and its event goes
through :func:`~jobfsm.admin.events.as_text` like every other. The node of every run is in the
History tab's ``Node`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr
import pandas as pd

from jobfsm.admin.events import as_text
from jobfsm.admin.handlers import JobsHandlers, guarded
from jobfsm.admin.refresh import Refresh, frame_texts
from jobfsm.admin.views import fmt_time
from jobfsm.service.nodes import NodeView

NODE_COLUMNS = ["Node", "Host", "PID", "Started", "Last heartbeat", "Alive", "Running"]


class NodesHandlers:
    """The Nodes view's query, behind the jobs section's role check."""

    def __init__(self, jobs: JobsHandlers) -> None:
        self.jobs = jobs

    def authorize(self, request: gr.Request | None, action: str, job: str | None, *, changes: bool) -> str:
        return self.jobs.authorize(request, action, job, changes=changes)

    @guarded("nodes", changes=False, job_arg=None)
    def nodes(self, request: gr.Request) -> list[NodeView]:
        return list(self.jobs.service.nodes())


def _running(view: NodeView) -> str:
    return "; ".join(
        f"run {run.id} {run.job}" + (f" since {fmt_time(run.started_at)}" if run.started_at else "")
        for run in view.running
    )


def nodes_frame(views: Sequence[NodeView]) -> pd.DataFrame:
    rows = [
        [
            v.node,
            v.host or "",
            "" if v.pid is None else str(v.pid),
            fmt_time(v.started_at),
            fmt_time(v.last_heartbeat),
            v.alive_text,
            _running(v),
        ]
        for v in views
    ]
    return pd.DataFrame(rows, columns=NODE_COLUMNS, dtype=str)


def nodes_summary(views: Sequence[NodeView]) -> str:
    """Fixed words and numbers only (safe as Markdown)."""
    alive = sum(v.alive for v in views)
    runs = sum(len(v.running) for v in views)
    return f"**Nodes**: {len(views)} seen · {alive} alive · {runs} run{'' if runs == 1 else 's'} going"


def add_nodes_view(jobs: JobsHandlers, refresh: Refresh) -> gr.Dataframe:
    """Add the view to the ``gr.Blocks`` being built (inside the section); returns its table."""
    handlers = NodesHandlers(jobs)
    summary = gr.Markdown(nodes_summary([]), elem_id="jobfsm-nodes-summary")
    table = gr.Dataframe(
        value=nodes_frame([]), interactive=False, wrap=True, datatype="str", elem_id="jobfsm-nodes",
        label="Nodes: every jobfsm process seen in the last hour, and the runs each has going",
    )

    def nodes_table(request: gr.Request) -> tuple[str, Any]:
        views = handlers.nodes(request)
        return nodes_summary(views), nodes_frame(views)

    def shown(selected: str | None, request: gr.Request) -> tuple[dict[Any, Any], list[str]]:
        text, frame = nodes_table(request)
        return {summary: text, table: frame}, [text, *frame_texts(frame)]

    quiet: dict[str, Any] = {"show_progress": "hidden"}
    root = gr.context.Context.root_block
    if root is not None:  # its own endpoint (``nodes_table``), for scripts; the page's refresh adds it
        root.load(as_text(nodes_table), None, [summary, table], **quiet)
    refresh.add("nodes", [summary, table], shown)
    return table
