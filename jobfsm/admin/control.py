"""The admin page's run control: "Stop run", "Pause…"/"Resume", the paused jobs (with their
reason and end), and the selected job's running output as it is written.

Added to the jobs section by :func:`add_controls` (one call, after the section's own layout and
events), so the rest of the page knows nothing of it. The same rules as the rest of the page:
every entry point is a :func:`~jobfsm.admin.handlers.guarded` method (the role is checked on the
server, a refused change is audited), the service does the work and audits it, everything that
shows a job's data (a pause's reason, a run's output) is a Textbox or a Dataframe of ``str``
cells, which Gradio shows as text, every event goes through
:func:`~jobfsm.admin.events.as_text` (an unexpected error reaches the pop-up as text too), and
the "Run control" box looks like the Result box (:func:`~jobfsm.admin.events.result_box`). See
docs/operations-control.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import gradio as gr
import pandas as pd

from jobfsm.admin.events import as_text, result_box
from jobfsm.admin.handlers import ANONYMOUS, ActionResult, JobsHandlers, guarded
from jobfsm.admin.layout import STATUS_CLASSES, JobsLayout
from jobfsm.admin.refresh import Refresh
from jobfsm.model import JobState, RunStatus
from jobfsm.store.control import Pause

LIVE_SECONDS = 1.0
"""How often the live output refreshes while the selected job runs (its timer is off otherwise:
the section's refresh turns it on when the job starts)."""
PAUSED_COLUMNS = ["Job", "Paused until", "Reason", "By", "Since"]

KILL_JS = """
(name) => {
  if (!name) { return [name]; }
  if (!window.confirm("Stop the running run of " + name + "? Its process group is terminated.")) {
    throw new Error("jobfsm: stop cancelled by the user");
  }
  return [name];
}
"""
"""The browser's confirmation (a convenience: the server checks the role)."""


class ControlHandlers:
    """Kill, pause, resume and the live views over the service, behind the page's role check."""

    def __init__(self, handlers: JobsHandlers) -> None:
        self.jobs = handlers
        self.service = handlers.service

    def authorize(self, request: gr.Request | None, action: str, job: str | None, *, changes: bool) -> str:
        return self.jobs.authorize(request, action, job, changes=changes)

    @guarded("kill", changes=True)
    def kill(self, name: str, request: gr.Request) -> ActionResult:
        user = self.jobs.user_of(request) or ANONYMOUS
        if not name:
            return ActionResult(False, "Select a job first.")
        result = self.jobs._act(name, lambda: self.service.kill_run(name, user, how="admin page"), "")
        if result.ok:
            runs = result.view
            result.message = "; ".join(
                f"Run {r.id} of {name!r}: {r.status.value} ({r.outcome.value if r.outcome else '-'}): {r.message}"
                for r in runs
            )
            result.view = None
        return result

    @guarded("pause", changes=True)
    def pause(self, name: str, until: str | None, reason: str | None, request: gr.Request) -> ActionResult:
        user = self.jobs.user_of(request) or ANONYMOUS
        if not name:
            return ActionResult(False, "Select a job first.")
        text = (until or "").strip()
        end: datetime | None = None
        if text:
            try:
                end = datetime.fromisoformat(text)
            except ValueError:
                return ActionResult(False, f"Not paused: {text[:60]!r} is not an ISO 8601 time "
                                           "(e.g. 2026-03-29T14:00 or 2026-03-29T14:00+02:00; no offset = UTC).", job=name)
            end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
        why = " ".join((reason or "").split())[:1000]
        result = self.jobs._act(name, lambda: self.service.pause_job(name, user, until=end, reason=why), "")
        if result.ok:
            result.message = f"Paused {name!r} {_until(result.view)}; its fires are recorded as skipped."
            result.view = None
        return result

    @guarded("resume", changes=True)
    def resume(self, name: str, request: gr.Request) -> ActionResult:
        user = self.jobs.user_of(request) or ANONYMOUS
        if not name:
            return ActionResult(False, "Select a job first.")
        result = self.jobs._act(name, lambda: self.service.resume_job(name, user), "")
        if result.ok:
            result.message = f"Resumed {name!r}." if result.view is not None else f"{name!r} was not paused."
            result.view = None
        return result

    @guarded("view", changes=False, job_arg=None)
    def paused(self, request: gr.Request) -> list[Pause]:
        from jobfsm.service.control import active_pauses

        return sorted(active_pauses(self.service).values(), key=lambda p: p.job)

    @guarded("logs", changes=False)
    def live(self, name: str, request: gr.Request) -> tuple[str, str, bool]:
        """What the live output box shows for job ``name``: a heading, the text, and whether
        the run is still going (more is coming)."""
        from jobfsm.service.control import live_output

        if not name:
            return "Select a job to see its output as it is written.", "", False
        run, out, err = live_output(self.service, name)
        if run is None:
            return f"Job {name!r} has not run yet.", "", False
        running = run.status is RunStatus.RUNNING
        head = f"Run {run.id} of {name!r} ({'running' if running else f'ended: {run.status.value}'}, node {run.node})"
        return head, out + (f"\n--- stderr ---\n{err}" if err else ""), running


def paused_frame(pauses: list[Pause]) -> pd.DataFrame:
    rows = [[p.job, _until(p), p.reason, p.user, p.since.isoformat(sep=" ", timespec="seconds")] for p in pauses]
    return pd.DataFrame(rows, columns=PAUSED_COLUMNS)


def _until(pause: Pause) -> str:
    return pause.until.isoformat(sep=" ", timespec="seconds") if pause.until else "until resumed"


@dataclass
class ControlParts:
    admin: gr.Column
    kill: gr.Button
    open_pause: gr.Button
    pause_row: gr.Row
    until: gr.Textbox
    reason: gr.Textbox
    pause: gr.Button
    resume: gr.Button
    status: gr.Textbox
    paused: gr.Dataframe
    live_head: gr.Textbox
    live: gr.Textbox
    timer: gr.Timer


def _parts() -> ControlParts:
    with gr.Group(elem_id="jobfsm-control"):
        paused = gr.Dataframe(
            value=paused_frame([]), interactive=False, wrap=True, datatype="str",
            label="Paused jobs (their fires are recorded as skipped)", elem_id="jobfsm-paused",
        )
        with gr.Column(visible=False) as admin:
            with gr.Row():
                kill = gr.Button("Stop run", variant="stop", elem_id="jobfsm-kill")
                open_pause = gr.Button("Pause…", elem_id="jobfsm-pause-open")
                resume = gr.Button("Resume", elem_id="jobfsm-resume")
            with gr.Row(visible=False) as pause_row:
                until = gr.Textbox(label="Paused until (ISO time, no offset = UTC; empty: until resumed)",
                                   elem_id="jobfsm-pause-until")
                reason = gr.Textbox(label="Reason", elem_id="jobfsm-pause-reason")
                pause = gr.Button("Pause", variant="primary", elem_id="jobfsm-pause")
            # the Result box's look: ✓ and a green edge, ✗ and a red one (events.result_box)
            status = gr.Textbox(label="Run control", interactive=False, elem_id="jobfsm-control-status",
                                elem_classes=STATUS_CLASSES[None])
        live_head = gr.Textbox(label="Live output", interactive=False, elem_id="jobfsm-live-run")
        live = gr.Textbox(show_label=False, lines=12, max_lines=30, autoscroll=True, interactive=False,
                          elem_id="jobfsm-live-output", elem_classes=["jobfsm-mono"])  # like the Logs tab
        timer = gr.Timer(LIVE_SECONDS, active=False)
    return ControlParts(admin, kill, open_pause, pause_row, until, reason, pause, resume, status, paused,
                        live_head, live, timer)


class ControlEvents:
    """The adapters; each function name is its endpoint's API name."""

    def __init__(self, handlers: ControlHandlers, parts: ControlParts, refresh: Refresh) -> None:
        self.h = handlers
        self.parts = parts
        self.refresh = refresh

    def control_setup(self, request: gr.Request) -> Any:
        self.h.paused(request)  # the check: only signed-in users get here
        return gr.update(visible=self.h.jobs.is_admin(request))

    def pause_form(self, request: gr.Request) -> Any:
        self.h.paused(request)
        return gr.update(visible=self.h.jobs.is_admin(request))

    def do_kill(self, name: str | None, request: gr.Request) -> Any:
        result = self.h.kill(name or "", request)
        return result_box(result.message, ok=result.ok)

    def do_pause(self, name: str | None, until: str | None, reason: str | None, request: gr.Request) -> Any:
        result = self.h.pause(name or "", until, reason, request)
        return result_box(result.message, ok=result.ok), gr.update(visible=not result.ok)

    def do_resume(self, name: str | None, request: gr.Request) -> Any:
        result = self.h.resume(name or "", request)
        return result_box(result.message, ok=result.ok)

    def paused_jobs(self, request: gr.Request) -> pd.DataFrame:
        return paused_frame(self.h.paused(request))

    def live_output(self, name: str | None, request: gr.Request) -> Any:
        head, text, running = self.h.live(name or "", request)
        return {self.parts.live_head: head, self.parts.live: text, **self._live_timer(running, request)}

    def paused_shown(self, selected: str | None, request: gr.Request) -> tuple[Any, list[str]]:
        """The section's refresh: the paused jobs."""
        pauses = self.h.paused(request)
        texts = [str(cell) for p in pauses for cell in (p.job, p.until, p.reason, p.user, p.since)]
        return {self.parts.paused: paused_frame(pauses)}, texts

    def live_shown(self, selected: str | None, request: gr.Request) -> tuple[Any, list[str]]:
        """The section's refresh: the live output's timer, on while the selected job runs."""
        running = bool(selected) and self.h.jobs.job_list(request).state_of(selected) is JobState.RUNNING
        return {self.parts.timer: gr.Timer(active=running)}, [str(running)]

    def _live_timer(self, on: bool, request: gr.Request) -> Any:
        """The timer turns itself off once the run ended (told to the refresh, which turns it on)."""
        return self.refresh.if_changed(request, "live", {self.parts.timer: gr.Timer(active=on)}, [str(on)])


def add_controls(layout: JobsLayout, handlers: JobsHandlers) -> ControlParts:
    """Add run control to the jobs section being built (call inside the ``gr.Blocks``)."""
    with layout.accordion:
        parts = _parts()
    ev = ControlEvents(ControlHandlers(handlers), parts, layout.refresh)
    t = as_text  # every event, as in the rest of the section (the refresh parts run inside its own)
    quiet: dict[str, Any] = {"show_progress": "hidden"}
    root = gr.context.Context.root_block
    if root is not None:
        root.load(t(ev.control_setup), None, [parts.admin], **quiet)
        root.load(t(ev.paused_jobs), None, [parts.paused], **quiet)
    layout.refresh.add("paused", [parts.paused], ev.paused_shown)
    layout.refresh.add("live", [parts.timer], ev.live_shown)
    live = [parts.live_head, parts.live, parts.timer]
    parts.timer.tick(t(ev.live_output), [layout.job], live, **quiet)
    layout.job.change(t(ev.live_output), [layout.job], live, **quiet)
    parts.kill.click(t(ev.do_kill), [layout.job], [parts.status], js=KILL_JS).then(
        t(ev.paused_jobs), None, [parts.paused], **quiet)
    parts.open_pause.click(t(ev.pause_form), None, [parts.pause_row], **quiet)
    parts.pause.click(t(ev.do_pause), [layout.job, parts.until, parts.reason], [parts.status, parts.pause_row]).then(
        t(ev.paused_jobs), None, [parts.paused], **quiet)
    parts.resume.click(t(ev.do_resume), [layout.job], [parts.status]).then(
        t(ev.paused_jobs), None, [parts.paused], **quiet)
    return parts


__all__ = ["ControlHandlers", "ControlParts", "add_controls"]
