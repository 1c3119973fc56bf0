"""The jobs section of the admin page: a collapsed ``gr.Accordion`` any Gradio app can embed.

:func:`create_jobs_section` composes the parts: the form (:mod:`jobfsm.admin.form`, derived from
the job schema), the components (:mod:`jobfsm.admin.layout`) and the events
(:mod:`jobfsm.admin.events`) over role-checking handlers (:mod:`jobfsm.admin.handlers`). It only
adds components and events to the ``gr.Blocks`` being built, so a host app calls it inside its
own admin tab; :mod:`jobfsm.admin.app` is a standalone ``gr.Blocks`` around it. See
docs/architecture.md (the admin page).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from jobfsm.admin.control import add_controls
from jobfsm.admin.events import SectionEvents, wire
from jobfsm.admin.form import job_form
from jobfsm.admin.handlers import JobsHandlers, RoleOf
from jobfsm.admin.layout import CSS, build_layout
from jobfsm.admin.nodes import add_nodes_view
from jobfsm.clock import Clock

__all__ = ["CSS", "MAX_UPLOAD_BYTES", "REFRESH_SECONDS", "create_jobs_section"]

REFRESH_SECONDS = 3.0
"""How often the table, the counts and the diagram refresh by themselves."""
MAX_UPLOAD_BYTES = 64 * 1024
"""The largest upload Gradio accepts (its ``max_file_size``), for every signed-in user: the
section has no upload field, and Gradio's upload route would otherwise take files of any size."""


def create_jobs_section(
    service: Any,
    *,
    role_of: RoleOf | None = None,
    open: bool = False,
    clock: Clock | None = None,
    label: str = "Scheduled jobs",
) -> gr.Accordion:
    """Add the jobs section to the ``gr.Blocks`` being built and return its accordion.

    ``role_of(request)`` returns ``"admin"``, ``"viewer"`` or None (not allowed in); by default
    any user the host app signed in is an admin and nobody else sees anything.
    """
    handlers = JobsHandlers(service, role_of=role_of, clock=clock)
    form = job_form()
    layout = build_layout(form, label=label, open=open, refresh_seconds=REFRESH_SECONDS)
    add_controls(layout, handlers)  # kill, pause/resume, live output (jobfsm.admin.control)
    with layout.accordion:  # the Nodes view, below the tabs (jobfsm.admin.nodes)
        add_nodes_view(handlers, layout.refresh)
    wire(layout, SectionEvents(handlers, form, layout))  # last: the refresh has all its parts now
    return layout.accordion
