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

import functools
import html
import json
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from jobfsm.admin import views
from jobfsm.admin.diagram import diagram_html
from jobfsm.admin.downloads import output_url
from jobfsm.admin.form import JobForm
from jobfsm.admin.handlers import ActionResult, JobsHandlers
from jobfsm.admin.layout import (
    GENERAL,
    HISTORY_TAB,
    LIFECYCLE_TAB,
    LOGS_TAB,
    STATUS_CLASSES,
    JobsLayout,
)
from jobfsm.admin.refresh import Boards, Updates, digest_of
from jobfsm.errors import JobfsmError

log = logging.getLogger(__name__)

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



def result_box(message: str, ok: bool = True) -> Any:
    """The Result box: the message as text, marked ✓ and green-edged when it worked, ✗ and
    red-edged when not (the mark, so that it does not rest on colour alone)."""
    if not message:
        return gr.update(value="", elem_classes=STATUS_CLASSES[None])
    return gr.update(value=f"{'✓' if ok else '✗'} {message}", elem_classes=STATUS_CLASSES[ok])


def as_text(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every message the page shows is text: an unexpected error (not a refusal, whose message
    is already escaped) reaches Gradio's pop-up, which renders HTML, escaped. Every event of
    the section (its parts' too: run control, nodes) goes through here."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            log.warning("admin event %s failed", fn.__name__, exc_info=not isinstance(exc, JobfsmError))
            raise gr.Error(html.escape(str(exc) or type(exc).__name__), title="Error") from None

    wrapper.__jobfsm_as_text__ = True  # type: ignore[attr-defined]
    return wrapper


class SectionEvents:
    """The adapters of one jobs section."""

    def __init__(self, handlers: JobsHandlers, form: JobForm, layout: JobsLayout) -> None:
        self.h = handlers
        self.form = form
        self.ui = layout
        self.boards = Boards()
        """The jobs table, rendered once per job list."""

    # -- the page and the table --------------------------------------------------------------
    def setup(self, request: gr.Request) -> Updates:
        """On page load: who is signed in, and the parts only an admin uses. A viewer sees the
        job definitions read only (secrets masked, as for everybody) and no Audit tab."""
        self.h.list_jobs(request)  # the check: only signed-in users get here
        admin = self.h.is_admin(request)
        user = self.h.user_of(request) or ""
        out: Updates = {self.ui.who: f"Signed in as {user} ({'admin' if admin else 'viewer: read only'})"}
        out.update({part: gr.update(visible=admin) for part in self.ui.admin_only})
        out.update({note: gr.update(visible=not admin) for note in self.ui.readonly_notes})
        out[self.ui.raw] = gr.update(interactive=admin)
        out[self.ui.audit.tab] = gr.update(visible=admin)
        return out

    def dashboard(self, selected: str | None, tab: str | None, request: gr.Request) -> Updates:
        """The section's refresh (its timer's one event, also after every action): the counts,
        the table and the job choices, then what the other parts add (:mod:`jobfsm.admin.refresh`)."""
        listing = self.h.job_list(request)
        board = self.boards.board(listing)
        # Refresh the choices but leave the selection alone: this runs on a timer, and a tick
        # that started before the user (or a save) changed the selection must not revert it.
        # Only a job that is gone is unselected.
        keep = not selected or selected in board.names
        jobs: Updates = {
            self.ui.counts: board.counts,
            self.ui.table: board.table,
            self.ui.job: gr.update(choices=board.names) if keep else gr.update(choices=board.names, value=None),
        }
        refresh = self.ui.refresh
        return {
            **(refresh.if_changed(request, "jobs", jobs, [board.digest.hex()]) if keep else jobs),
            # drawn only while its tab shows (the tab's own select draws it when it opens)
            self.ui.diagram: diagram_html(listing.state_of(selected)) if tab == LIFECYCLE_TAB else gr.skip(),
            **refresh.updates(selected, request),
        }

    def refresh_mark(self, selected: str | None, tab: str | None, request: gr.Request) -> str:
        """The timer's look: a word that changes whenever the refresh would send something (the
        table, the selected job's state where the diagram shows, each other part's mark)."""
        listing = self.h.job_list(request)
        diagram = f"{selected}:{listing.state_of(selected)}" if tab == LIFECYCLE_TAB else ""
        parts = [self.boards.board(listing).digest.hex(), diagram, *self.ui.refresh.marks(selected, request)]
        return digest_of(parts).hex()

    def lifecycle(self, selected: str | None, request: gr.Request) -> str:
        """The diagram, when its tab opens: the selected job's state in the table's colour."""
        state = None
        if selected:
            view = next((v for v in self.h.list_jobs(request) if v.name == selected), None)
            state = getattr(view, "state", None)
        return diagram_html(state)

    # -- the form ----------------------------------------------------------------------------
    def select(self, name: str | None, request: gr.Request) -> Updates:
        """Load a job into the form and the raw JSON editor; an invalid file's text goes into the
        raw editor with its problems listed, for it to be fixed there."""
        if not name:
            return self.new_job(request)
        try:
            view = self.h.get_job(name, request)
        except JobfsmError as exc:  # gone, or a file name that is no job name
            return {self.ui.status: result_box(str(exc), ok=False)}
        config = getattr(view, "config", None)
        if config is None:
            values = {**self.form.starting_values(), "name": name}
            found = list(getattr(view, "problems", []))
            problems = views.problems_by_field(found, self.form.keys)
            listed = "\n".join(f"{p.json_path}: {p.message}" for p in found if p.is_error)
            message = (
                f"Job {name!r} has an invalid file ({len(found)} problem{'s' if len(found) != 1 else ''}); "
                "its text is in the Raw JSON tab: fix it there and click Save JSON."
            )
            raw, raw_note = self.h.get_source(name, request), f"Problems of this file:\n{listed}"
        else:
            values = self.form.values_of(config)
            problems, message, raw_note = {}, "", ""
            raw = json.dumps(config.to_dict(full=False), indent=2, ensure_ascii=False)
        return {
            **self._form_values(values, name_editable=False),
            **self._errors(problems),
            self.ui.version: str(getattr(view, "version", "") or ""),
            self.ui.mode: "edit",
            self.ui.raw: raw,
            self.ui.raw_note: gr.update(value=raw_note, visible=bool(raw_note)),
            self.ui.status: result_box(message, ok=not message),
        }

    def new_job(self, request: gr.Request) -> Updates:
        self.h.list_jobs(request)
        return {
            **self._form_values(self.form.starting_values(), name_editable=True),
            **self._errors(None),
            self.ui.version: "",
            self.ui.mode: "create",
            self.ui.raw: json.dumps(self.form.skeleton(), indent=2, ensure_ascii=False),
            self.ui.raw_note: gr.update(value="", visible=False),
            self.ui.status: result_box(""),
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
            return {self.ui.status: result_box(result.message, ok=False), **self._errors(problems or {GENERAL: [result.message]})}
        saved = str(getattr(result.view, "name", None) or result.job or "")
        names = [str(v.name) for v in self.h.list_jobs(request)]
        return {
            self.ui.status: result_box(result.message),
            **self._errors(None),
            self.ui.raw_note: gr.update(value="", visible=False),
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
    def action(self, kind: str) -> Callable[..., Updates]:
        """The adapter of the enable, disable or trigger button (API name ``do_<kind>``).

        When the job is the one open in the form, the form follows what the action wrote (its
        version, its Enabled box and the raw editor), so that a Save or Delete after it is not
        taken for someone else's change."""

        def run(name: str | None, mode: str | None, shown: str | None, request: gr.Request) -> Updates:
            result: ActionResult = getattr(self.h, kind)(name or "", request)
            if not name:
                return {self.ui.status: result_box("Select a job first.", ok=False)}
            out: Updates = {self.ui.status: result_box(result.message, ok=result.ok)}
            config = getattr(result.view, "config", None)
            if result.ok and config is not None and mode == "edit" and shown == name:
                out.update({
                    self.ui.version: str(result.view.version or ""),
                    self.ui.form.inputs["enabled"]: bool(config.enabled),
                    self.ui.raw: json.dumps(config.to_dict(full=False), indent=2, ensure_ascii=False),
                })
            return out

        run.__name__ = f"do_{kind}"
        return run

    def do_delete(self, name: str | None, confirmed: str | None, version: str | None, request: gr.Request) -> Updates:
        result = self.h.delete(name or "", confirmed, version, request)
        return {
            self.ui.status: result_box(result.message, ok=result.ok),
            **({self.ui.job: gr.update(value=None)} if result.ok else {}),
        }

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
        """The output view: what the store keeps of each run (its head and tail), or the lines
        that match a search, bounded either way; the link streams the full output."""
        if not name:
            self.h.list_jobs(request)
            return "Select a job to see its output.", gr.update(link=None, interactive=False)
        if search:
            entries = self.h.logs(name, search, status or None, request)
        else:
            entries = views.stored_output(self.h.history(name, status or None, None, None, request, limit=20))
        text = views.logs_text(entries, search=search, per_stream=views.LOG_VIEW_CHARS, total=views.LOG_VIEW_TOTAL)
        return text, gr.update(link=output_url(name, status or None), interactive=True)

    def shown_views(
        self, name: str | None, tab: str | None, status: str, since: str, until: str, search: str, log_status: str,
        request: gr.Request,
    ) -> Updates:
        """After a selection, the selected job's history or logs, whichever tab shows; the other
        is loaded when its tab opens, as the diagram is drawn. Both, one after the other behind
        the form, cost a selection two more events (each a look of Gradio's queue and the page
        applying its outputs) before the Logs tab showed anything."""
        history = (self.ui.history.table, self.ui.history.chart, self.ui.history.note)
        logs = (self.ui.logs.text, self.ui.logs.download)
        if tab == HISTORY_TAB:
            return dict(zip(history, self.history(name, status, since, until, request), strict=True))
        if tab == LOGS_TAB:
            return dict(zip(logs, self.logs(name, search, log_status, request), strict=True))
        self.h.list_jobs(request)  # the check: only signed-in users get here
        return dict.fromkeys((*history, *logs), gr.skip())

    def audit(self, user: str, job: str, request: gr.Request) -> Any:
        return views.audit_frame(self.h.audit(user, job, request))


def wire(ui: JobsLayout, ev: SectionEvents) -> None:
    """Attach the events (after every part added to ``ui.refresh``). The order of registration fixes the API names Gradio gives repeated
    functions (``dashboard``, ``dashboard_1``, …), which scripts and tests call. Every adapter
    goes through :func:`as_text`."""
    t = as_text
    quiet: dict[str, Any] = {"show_progress": "hidden"}
    dash = ([ui.job, ui.tab], [ui.counts, ui.table, ui.job, ui.diagram, *ui.refresh.outputs])
    # Every open page refreshes: many at once must not wait in line behind each other (Gradio
    # runs one call of an event at a time by default); the refresh is safe from any thread.
    refreshing: dict[str, Any] = {**quiet, "concurrency_limit": None}
    root = gr.context.Context.root_block
    setup_out = [ui.who, ui.raw, ui.audit.tab, *ui.admin_only, *ui.readonly_notes]
    if root is not None:
        root.load(t(ev.setup), None, setup_out, **quiet)
        root.load(t(ev.dashboard), *dash, **refreshing)
    ui.timer.tick(t(ev.refresh_mark), [ui.job, ui.tab], [ui.mark], **refreshing)
    ui.mark.change(t(ev.dashboard), *dash, **refreshing)

    # which tab shows, kept in the browser: the diagram is drawn only while its tab shows
    for key, tab in ui.tabs.items():
        tab.select(None, None, [ui.tab], js=f"() => {json.dumps(key)}", **quiet)
    ui.tabs[LIFECYCLE_TAB].select(t(ev.lifecycle), [ui.job], [ui.diagram], **quiet)
    form, history, logs = ui.form, ui.history, ui.logs
    history_io = ([ui.job, history.status, history.since, history.until], [history.table, history.chart, history.note])
    logs_io = ([ui.job, logs.search, logs.status], [logs.text, logs.download])
    # The selected job's history and logs: loaded when their tab opens, or after a selection
    # made while it shows (shown_views). Every event that fills them is answered in the order it
    # was sent (one queue for them all), or an opened tab's answer could land after, and over,
    # the answer to a filter or a search clicked right after it.
    views: dict[str, Any] = {"concurrency_id": "jobfsm-selected-job-views", "concurrency_limit": 1}
    quiet_views = {**quiet, **views}
    ui.tabs[HISTORY_TAB].select(t(ev.history), *history_io, **quiet_views)
    ui.tabs[LOGS_TAB].select(t(ev.logs), *logs_io, **quiet_views)

    inputs = list(form.inputs.values())
    errors = list(form.errors.values())
    select_out = [*inputs, *errors, ui.version, ui.mode, ui.raw, ui.raw_note, ui.status]
    views_io = ([ui.job, ui.tab, *history_io[0][1:], *logs_io[0][1:]], [*history_io[1], *logs_io[1]])
    ui.job.input(t(ev.select), [ui.job], select_out).then(t(ev.shown_views), *views_io, **quiet_views).then(
        t(ev.dashboard), *dash, **refreshing
    )
    ui.actions["new"].click(t(ev.new_job), None, select_out)

    action_out = [ui.status, ui.version, form.inputs["enabled"], ui.raw]
    for kind in ("enable", "disable", "trigger"):
        ui.actions[kind].click(
            t(ev.action(kind)), [ui.job, ui.mode, form.inputs["name"]], action_out
        ).then(t(ev.dashboard), *dash, **refreshing)
    ui.actions["delete"].click(
        t(ev.do_delete), [ui.job, ui.confirm, ui.version], [ui.status, ui.job], js=DELETE_JS
    ).then(t(ev.dashboard), *dash, **refreshing)

    schedule, zone = form.inputs["schedule"], form.inputs["timezone"]
    for changed in (schedule.change, zone.change):  # type: ignore[attr-defined]
        changed(t(ev.cron_helper), [schedule, zone], [form.cron_help, form.errors["schedule"]], **quiet)

    save_out = [ui.status, *errors, ui.raw_note, ui.version, ui.mode, form.inputs["name"], ui.job]
    form.save.click(t(ev.save_form), [ui.mode, ui.version, *inputs], save_out).then(t(ev.dashboard), *dash, **refreshing)
    ui.save_raw.click(t(ev.save_raw), [ui.mode, form.inputs["name"], ui.version, ui.raw], save_out).then(
        t(ev.dashboard), *dash, **refreshing
    )

    history.filter.click(t(ev.history), *history_io, **views)
    logs.show.click(t(ev.logs), *logs_io, **views)
    logs.search.submit(t(ev.logs), *logs_io, **views)
    audit = ui.audit
    audit.filter.click(t(ev.audit), [audit.user, audit.job], [audit.table])
    audit.tab.select(t(ev.audit), [audit.user, audit.job], [audit.table])
