"""The jobs section's events: Gradio values in, :class:`~jobfsm.admin.handlers.JobsHandlers`
calls, Gradio updates out.

:class:`SectionEvents` holds the adapters, one per event; :func:`wire` attaches them to the
components of a :class:`~jobfsm.admin.layout.JobsLayout`. Adapters take the caller as a
``gr.Request`` (Gradio fills it in) and only ever reach the service through the handlers, which
check the role; no business rule lives here (the masked secrets and the diff of an edit are the
service's). Each adapter's function name is its endpoint's API name. See docs/architecture.md
(the admin page).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

import gradio as gr

from jobfsm.admin import views
from jobfsm.admin.form import JobForm
from jobfsm.admin.handlers import ActionResult, JobsHandlers
from jobfsm.admin.layout import GENERAL, JobsLayout, diagram_markdown
from jobfsm.errors import JobNotFoundError
from jobfsm.model import JobState

NOT_SAVED = "Not saved: fix the fields marked below."

DELETE_JS = """
(name, confirmed, version) => {
  if (!name) { return [name, "", version]; }
  if (!window.confirm("Delete job " + name + "? Its file is removed; its history stays.")) {
    throw new Error("jobfsm: deletion cancelled by the user");
  }
  return [name, name, version];
}
"""
"""The delete button's browser step: a dismissed ``confirm()`` throws, so Gradio never sends the
request; a confirmed one repeats the name in the hidden field the server checks."""

Updates = dict[Any, Any]
"""Gradio updates by component: the components an event lists and this leaves out are skipped."""


class SectionEvents:
    """The adapters of one jobs section."""

    def __init__(self, handlers: JobsHandlers, form: JobForm, layout: JobsLayout) -> None:
        self.h = handlers
        self.form = form
        self.ui = layout

    # -- the page and the table --------------------------------------------------------------
    def setup(self, request: gr.Request) -> Updates:
        """On page load: who is signed in, and the parts only an admin uses."""
        self.h.list_jobs(request)  # the check: only signed-in users get here
        admin = self.h.is_admin(request)
        user = self.h.user_of(request) or ""
        out: Updates = {self.ui.who: f"Signed in as {user} ({'admin' if admin else 'viewer: read only'})"}
        out.update({part: gr.update(visible=admin) for part in self.ui.admin_only})
        out.update({note: gr.update(visible=not admin) for note in self.ui.readonly_notes})
        return out

    def dashboard(self, selected: str | None, request: gr.Request) -> Updates:
        jobs = self.h.list_jobs(request)
        names = [str(v.name) for v in jobs]
        state = next(
            (JobState(v.state) for v in jobs if v.name == selected and getattr(v, "state", None) is not None),
            None,
        )
        # Refresh the choices but leave the selection alone: this runs on a timer, and a tick
        # that started before the user (or a save) changed the selection must not revert it.
        # Only a job that is gone is unselected.
        keep = not selected or selected in names
        return {
            self.ui.counts: views.counts_markdown(views.state_counts(jobs)),
            self.ui.table: views.styled_jobs(views.jobs_frame(jobs)),
            self.ui.job: gr.update(choices=names) if keep else gr.update(choices=names, value=None),
            self.ui.diagram: diagram_markdown(state),
        }

    # -- the form ----------------------------------------------------------------------------
    def select(self, name: str | None, request: gr.Request) -> Updates:
        """Load a job into the form and the raw JSON editor."""
        if not name:
            return self.new_job(request)
        try:
            view = self.h.get_job(name, request)
        except JobNotFoundError as exc:
            return {self.ui.status: str(exc)}
        config = getattr(view, "config", None)
        if config is None:
            values = {**self.form.starting_values(), "name": name}
            problems = views.problems_by_field(getattr(view, "problems", []), self.form.keys)
            message, raw = f"Job {name!r} has an invalid file; fix it in the raw JSON editor.", ""
        else:
            values = self.form.values_of(config)
            problems, message = {}, ""
            raw = json.dumps(config.to_dict(full=False), indent=2)
        return {
            **self._form_values(values, name_editable=False),
            **self._errors(problems),
            self.ui.version: str(getattr(view, "version", "") or ""),
            self.ui.mode: "edit",
            self.ui.raw: raw,
            self.ui.status: message,
        }

    def new_job(self, request: gr.Request) -> Updates:
        self.h.list_jobs(request)
        return {
            **self._form_values(self.form.starting_values(), name_editable=True),
            **self._errors(None),
            self.ui.version: "",
            self.ui.mode: "create",
            self.ui.raw: json.dumps(self.form.skeleton(), indent=2),
            self.ui.status: "",
        }

    def cron_helper(self, expr: str, tz: str, request: gr.Request) -> tuple[Any, Any]:
        text, error = views.cron_help(expr, tz, self.h.now(request))
        return text, gr.update(value=error or "", visible=bool(error))

    def save_form(self, request: gr.Request, mode: str, version: str, *fields: Any) -> Updates:
        """Save: the form's values (the inputs, in the form's order) as one document; the
        service keeps masked secrets and writes only what changed. ``request`` comes first
        because the field values are variadic."""
        values = self.form.values_from(fields)
        document, local = self.form.document(values)
        name = str(values.get("name") or "")
        if local:
            result = ActionResult(False, NOT_SAVED, job=name)
        elif mode == "edit":
            result = self.h.edit(name, document, version, request)
        else:
            result = self.h.create(document, request)
        problems = views.problems_by_field(result.problems, self.form.keys)
        for key, message in local.items():
            problems.setdefault(key, []).insert(0, message)
        return self._after_save(result, problems, request)

    def save_raw(self, mode: str, name: str, version: str, text: str, request: gr.Request) -> Updates:
        """Save the raw JSON editor's document (masked secrets: as for the form)."""
        try:
            document = json.loads(text or "")
        except ValueError as exc:
            return self._after_save(ActionResult(False, f"Not saved: the JSON is not valid ({exc})."), {}, request)
        if not isinstance(document, dict):
            return self._after_save(ActionResult(False, "Not saved: a job file is a JSON object ({...})."), {}, request)
        if mode == "edit":
            result = self.h.replace(name, document, version, request)
        else:
            result = self.h.create(document, request)
        return self._after_save(result, views.problems_by_field(result.problems, ()), request)

    def _after_save(self, result: ActionResult, problems: dict[str, list[str]], request: gr.Request) -> Updates:
        if not result.ok:
            return {self.ui.status: result.message, **self._errors(problems or {GENERAL: [result.message]})}
        saved = str(getattr(result.view, "name", None) or result.job or "")
        names = [str(v.name) for v in self.h.list_jobs(request)]
        return {
            self.ui.status: result.message,
            **self._errors(None),
            self.ui.version: str(getattr(result.view, "version", "") or ""),
            self.ui.mode: "edit",
            self.ui.form.inputs["name"]: gr.update(interactive=False),
            self.ui.job: gr.update(choices=names, value=saved if saved in names else None),
        }

    def _form_values(self, values: dict[str, Any], *, name_editable: bool) -> Updates:
        out: Updates = {self.ui.form.inputs[key]: value for key, value in values.items()}
        out[self.ui.form.inputs["name"]] = gr.update(value=values["name"], interactive=name_editable)
        return out

    def _errors(self, problems: dict[str, list[str]] | None) -> Updates:
        """Every error box: the problems of its field, or hidden."""
        problems = problems or {}
        return {
            box: gr.update(value="\n".join(problems.get(key, [])), visible=bool(problems.get(key)))
            for key, box in self.ui.form.errors.items()
        }

    # -- actions -----------------------------------------------------------------------------
    def action(self, kind: str) -> Callable[..., str]:
        """The adapter of the enable, disable or trigger button (API name ``do_<kind>``)."""

        def run(name: str | None, request: gr.Request) -> str:
            result: ActionResult = getattr(self.h, kind)(name or "", request)
            return result.message if name else "Select a job first."

        run.__name__ = f"do_{kind}"
        return run

    def do_delete(self, name: str | None, confirmed: str | None, version: str | None, request: gr.Request) -> Updates:
        result = self.h.delete(name or "", confirmed, version, request)
        return {self.ui.status: result.message, **({self.ui.job: gr.update(value=None)} if result.ok else {})}

    # -- history, logs, audit ----------------------------------------------------------------
    def history(self, name: str | None, status: str, since: str, until: str, request: gr.Request) -> tuple[Any, Any, str]:
        if not name:
            self.h.list_jobs(request)
            return views.history_frame([]), views.history_chart_frame([]), "Select a job to see its runs."
        try:
            start, end = views.day_bounds(since, until)
        except ValueError as exc:
            self.h.list_jobs(request)
            return views.history_frame([]), views.history_chart_frame([]), str(exc)
        runs = self.h.history(name, status or None, start, end, request)
        note = f"{len(runs)} runs of {name!r}" + (f" with status {status}" if status else "")
        return views.history_frame(runs), views.history_chart_frame(runs), note

    def logs(self, name: str | None, search: str, status: str, request: gr.Request) -> tuple[str, Any]:
        if not name:
            self.h.list_jobs(request)
            return "Select a job to see its output.", gr.update(value=None, interactive=False)
        entries = self.h.logs(name, search, status or None, request)
        text = views.logs_text(entries, search=search)
        return text, gr.update(value=_logs_file(name, text), interactive=True)

    def audit(self, user: str, job: str, request: gr.Request) -> Any:
        return views.audit_frame(self.h.audit(user, job, request))


def _logs_file(name: str, text: str) -> str:
    folder = tempfile.mkdtemp(prefix="jobfsm-logs-")
    path = os.path.join(folder, f"{name or 'job'}-logs.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def wire(ui: JobsLayout, ev: SectionEvents) -> None:
    """Attach the events. The order of registration fixes the API names Gradio gives repeated
    functions (``dashboard``, ``dashboard_1``, …), which scripts and tests call."""
    quiet: dict[str, Any] = {"show_progress": "hidden"}
    dash = ([ui.job], [ui.counts, ui.table, ui.job, ui.diagram])
    root = gr.context.Context.root_block
    if root is not None:
        root.load(ev.setup, None, [ui.who, *ui.admin_only, *ui.readonly_notes], **quiet)
        root.load(ev.dashboard, *dash, **quiet)
    ui.timer.tick(ev.dashboard, *dash, **quiet)

    form, history, logs = ui.form, ui.history, ui.logs
    inputs = list(form.inputs.values())
    errors = list(form.errors.values())
    history_io = ([ui.job, history.status, history.since, history.until], [history.table, history.chart, history.note])
    logs_io = ([ui.job, logs.search, logs.status], [logs.text, logs.download])
    select_out = [*inputs, *errors, ui.version, ui.mode, ui.raw, ui.status]
    ui.job.input(ev.select, [ui.job], select_out).then(ev.history, *history_io, **quiet).then(
        ev.logs, *logs_io, **quiet
    )
    ui.actions["new"].click(ev.new_job, None, select_out)

    for kind in ("enable", "disable", "trigger"):
        ui.actions[kind].click(ev.action(kind), [ui.job], [ui.status]).then(ev.dashboard, *dash, **quiet)
    ui.actions["delete"].click(
        ev.do_delete, [ui.job, ui.confirm, ui.version], [ui.status, ui.job], js=DELETE_JS
    ).then(ev.dashboard, *dash, **quiet)

    schedule, zone = form.inputs["schedule"], form.inputs["timezone"]
    for changed in (schedule.change, zone.change):  # type: ignore[attr-defined]
        changed(ev.cron_helper, [schedule, zone], [form.cron_help, form.errors["schedule"]], **quiet)

    save_out = [ui.status, *errors, ui.version, ui.mode, form.inputs["name"], ui.job]
    form.save.click(ev.save_form, [ui.mode, ui.version, *inputs], save_out).then(ev.dashboard, *dash, **quiet)
    ui.save_raw.click(ev.save_raw, [ui.mode, form.inputs["name"], ui.version, ui.raw], save_out).then(
        ev.dashboard, *dash, **quiet
    )

    history.filter.click(ev.history, *history_io)
    logs.show.click(ev.logs, *logs_io)
    logs.search.submit(ev.logs, *logs_io)
    audit = ui.audit
    audit.filter.click(ev.audit, [audit.user, audit.job], [audit.table])
    audit.tab.select(ev.audit, [audit.user, audit.job], [audit.table])
