"""The jobs section of the admin page: a collapsed ``gr.Accordion`` any Gradio app can embed.

Design decisions
----------------
**Embeddable first.** :func:`create_jobs_section` only adds components and events to the
``gr.Blocks`` being built (a host app calls it inside its own admin tab); the standalone app in
:mod:`jobfsm.admin.app` is a ``gr.Blocks`` around it. The section registers one page-load event on
the enclosing Blocks, which shows or hides the controls that change things according to the
user's role.

**Every event goes through** :class:`jobfsm.admin.handlers.JobsHandlers`, whose methods check the
role on the server. The adapters below only translate between Gradio values and handler calls;
each takes ``request: gr.Request`` so that Gradio hands it the caller. Hiding the action buttons
from a viewer is a convenience; a viewer who posts to the endpoint directly is refused and audited.

**Text, never markup, for data.** Job names, descriptions, commands, output and messages go into
Dataframe cells (``str`` datatype), Textboxes and the code editor, which Gradio shows as text.
The only Markdown holds fixed words, numbers and the lifecycle diagram from the transition table.

**Delete confirmation.** The delete button's ``js`` asks ``confirm()``; when the user dismisses
it the function throws, and Gradio's front end then never sends the request (it submits only
after the ``js`` step returned). When confirmed it copies the job name into a hidden field, and
the server deletes only when that field repeats the name: a direct call without it is refused.

**Live.** A ``gr.Timer`` (3 s) refreshes the counts, the table and the selected job's diagram, so
a triggered job shows ``running`` and then its outcome without a reload.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zoneinfo
from collections.abc import Callable
from typing import Any

import gradio as gr

from jobfsm.admin import views
from jobfsm.admin.handlers import ActionResult, JobsHandlers, RoleOf
from jobfsm.audit import MASK
from jobfsm.clock import Clock
from jobfsm.config.schema import property_schema
from jobfsm.errors import JobNotFoundError
from jobfsm.lifecycle import render_mermaid
from jobfsm.model import JobState, RunStatus

log = logging.getLogger(__name__)

REFRESH_SECONDS = 3.0
READ_ONLY_NOTE = "Read only: this part needs the admin role."

FORM_FIELDS: tuple[str, ...] = (
    "name",
    "description",
    "schedule",
    "timezone",
    "command",
    "working_directory",
    "enabled",
    "timeout_seconds",
    "env",
    "overlap",
    "catch_up",
    "retries",
    "retry_delay_seconds",
)
"""The form's fields, in the order of the job file."""

REQUIRED = ("name", "schedule", "command", "working_directory", "enabled")
STATUS_CHOICES = [("any", "")] + [(s.value, s.value) for s in RunStatus]

DELETE_JS = """
(name, confirmed, version) => {
  if (!name) { return [name, "", version]; }
  if (!window.confirm("Delete job " + name + "? Its file is removed; its history stays.")) {
    throw new Error("jobfsm: deletion cancelled by the user");
  }
  return [name, name, version];
}
"""

CSS = """
.jobfsm-field-error textarea, .jobfsm-field-error input { color: #b91c1c !important; font-weight: 600; }
.jobfsm-status textarea { font-weight: 600; }
"""


def _schema_default(name: str) -> Any:
    return property_schema(name).get("default")


def default_form_values() -> list[Any]:
    """The create form's starting values, from the schema's defaults."""
    out: list[Any] = []
    for name in FORM_FIELDS:
        value = _schema_default(name)
        if name == "env":
            value = json.dumps(value or {}, indent=2)
        elif name == "enabled":
            value = bool(value)
        out.append(value)
    return out


def form_values(config: Any) -> list[Any]:
    """The edit form's values for a job."""
    out: list[Any] = []
    for name in FORM_FIELDS:
        value = getattr(config, name)
        if name == "command":
            value = views.command_text(value)
        elif name == "env":
            value = json.dumps(dict(value), indent=2, sort_keys=True)
        elif hasattr(value, "value"):
            value = value.value
        out.append(value)
    return out


def document_from_form(values: list[Any], *, schema_ref: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(job document, errors the form itself found) from the form's values.

    Optional fields equal to their default are left out, as a person would write the file.
    """
    doc: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if schema_ref:
        doc["$schema"] = schema_ref
    for name, raw in zip(FORM_FIELDS, values, strict=True):
        value: Any = raw
        if name == "command":
            value = views.parse_command(raw or "")
        elif name == "env":
            try:
                value = views.parse_env(raw or "")
            except ValueError as exc:
                errors[name] = str(exc)
                continue
        elif name in ("timeout_seconds", "retries", "retry_delay_seconds"):
            if raw is None or raw == "":
                continue
            try:
                value = int(raw)
            except (TypeError, ValueError):
                errors[name] = f"{raw!r} is not a whole number"
                continue
        elif name == "enabled":
            value = bool(raw)
        elif isinstance(raw, str) and name != "command":
            value = raw.strip()
        if name not in REQUIRED and value == _schema_default(name):
            continue
        doc[name] = value
    return doc, errors


def _component(name: str) -> gr.components.Component:
    prop = property_schema(name)
    label = str(prop.get("title", name))
    info = str(prop.get("description", ""))
    if name in REQUIRED:
        label += " *"
    default = prop.get("default")
    if "enum" in prop:
        return gr.Dropdown(choices=list(prop["enum"]), value=default, label=label, info=info, interactive=True)
    if prop.get("type") == "boolean":
        return gr.Checkbox(value=bool(default), label=label, info=info, interactive=True)
    if prop.get("type") == "integer":
        return gr.Number(
            value=default, label=label, info=info, precision=0,
            minimum=prop.get("minimum"), maximum=prop.get("maximum"), interactive=True,
        )
    if name == "timezone":
        zones = sorted(zoneinfo.available_timezones())
        return gr.Dropdown(
            choices=zones, value=default, label=label, info=info, allow_custom_value=True,
            filterable=True, interactive=True,
        )
    if name == "env":
        return gr.Textbox(
            value=json.dumps(default or {}), label=label, lines=3,
            info=info + ' Write a JSON object, e.g. {"LANG": "C.UTF-8"}.', interactive=True,
        )
    if name == "command":
        info += ' Write a JSON array (["/usr/bin/rsync", "-a", "/src/", "/dst/"]) to run without a shell.'
    examples = prop.get("examples") or []
    placeholder = str(examples[0]) if examples and isinstance(examples[0], str) else None
    return gr.Textbox(value=default, label=label, info=info, placeholder=placeholder, interactive=True)


def _error_box() -> gr.Textbox:
    return gr.Textbox(
        value="", visible=False, show_label=False, interactive=False, container=False,
        elem_classes=["jobfsm-field-error"],
    )


def _error_updates(problems: dict[str, list[str]] | None) -> list[Any]:
    """One update per field error box, then the general one."""
    problems = problems or {}
    out = []
    for name in (*FORM_FIELDS, ""):
        messages = problems.get(name, [])
        out.append(gr.update(value="\n".join(messages), visible=bool(messages)))
    return out


def _masked_keys(document: dict[str, Any]) -> list[str]:
    """``env`` keys whose value is still the mask the page was shown instead of a secret."""
    env = document.get("env")
    if not isinstance(env, dict):
        return []
    return sorted(k for k, v in env.items() if v == MASK)


def _masked_message(keys: list[str]) -> str:
    return (
        f"the value of {', '.join(keys)} is shown masked ({MASK}); type the secret again, "
        "or leave the environment unchanged to keep it"
    )


def _logs_file(name: str, text: str) -> str:
    folder = tempfile.mkdtemp(prefix="jobfsm-logs-")
    path = os.path.join(folder, f"{name or 'job'}-logs.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


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
    h = JobsHandlers(service, role_of=role_of, clock=clock)

    # -- adapters: Gradio values in, handler calls, Gradio updates out -----------------------
    def dashboard(selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        jobs = h.list_jobs(request)
        names = [str(v.name) for v in jobs]
        state = None
        for view in jobs:
            if view.name == selected and getattr(view, "state", None) is not None:
                state = JobState(view.state)
        frame = views.jobs_frame(jobs)
        return (
            views.counts_markdown(views.state_counts(jobs)),
            views.styled_jobs(frame),
            # Refresh the choices but leave the selection alone: this runs on a timer, and a tick
            # that started before the user (or a save) changed the selection must not revert it.
            # Only a job that is gone is unselected.
            gr.update(choices=names) if not selected or selected in names else gr.update(choices=names, value=None),
            _diagram(state),
        )

    def _diagram(state: JobState | None) -> str:
        caption = f"Lifecycle — current state: **{state.value}**" if state else "Lifecycle"
        return f"{caption}\n\n```mermaid\n{render_mermaid(state)}```\n"

    def setup(request: gr.Request) -> tuple[Any, ...]:
        h.list_jobs(request)  # the check: only signed-in users get here
        admin = h.is_admin(request)
        user = h.user_of(request) or ""
        who = f"Signed in as {user} ({'admin' if admin else 'viewer: read only'})"
        updates = [gr.update(visible=admin) for _ in admin_only]
        notes = [gr.update(visible=not admin) for _ in readonly_notes]
        return (who, *updates, *notes)

    def select(name: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not name:
            return new_job(request)
        try:
            view = h.get_job(name, request)
        except JobNotFoundError as exc:
            return (*[gr.skip()] * (len(FORM_FIELDS) + len(FORM_FIELDS) + 4), str(exc))
        config = getattr(view, "config", None)
        if config is None:
            values = default_form_values()
            values[0] = name
            problems = views.problems_by_field(getattr(view, "problems", []), FORM_FIELDS)
            message = f"Job {name!r} has an invalid file; fix it in the raw JSON editor."
            raw = ""
        else:
            values = form_values(config)
            problems = {}
            message = ""
            raw = json.dumps(config.to_dict(full=False), indent=2)
        values[0] = gr.update(value=values[0], interactive=False)
        return (
            *values,
            *_error_updates(problems),
            str(getattr(view, "version", "") or ""),
            "edit",
            raw,
            message,
        )

    def new_job(request: gr.Request) -> tuple[Any, ...]:
        h.list_jobs(request)
        values = default_form_values()
        skeleton = {k: v for k, v in zip(FORM_FIELDS, values, strict=True) if k in REQUIRED}
        skeleton["command"] = "echo hello"
        values[0] = gr.update(value=values[0], interactive=True)
        return (
            *values,
            *_error_updates(None),
            "",
            "create",
            json.dumps(skeleton, indent=2),
            "",
        )

    def cron_helper(expr: str, tz: str, request: gr.Request) -> tuple[Any, Any]:
        now = h.now(request)
        text, error = views.cron_help(expr, tz, now)
        return text, gr.update(value=error or "", visible=bool(error))

    def save_form(
        mode: str, version: str, name: str, description: str, schedule: str, timezone: str,
        command: str, working_directory: str, enabled: bool, timeout_seconds: float | None,
        env: str, overlap: str, catch_up: str, retries: float | None,
        retry_delay_seconds: float | None, request: gr.Request,
    ) -> tuple[Any, ...]:
        values = [
            name, description, schedule, timezone, command, working_directory, enabled,
            timeout_seconds, env, overlap, catch_up, retries, retry_delay_seconds,
        ]
        name = str(name or "").strip()
        document, local = document_from_form(values)
        masked = _masked_keys(document)
        if mode == "edit":
            try:
                current = h.get_job(name, request)
            except JobNotFoundError as exc:
                return _after_save(ActionResult(False, str(exc), job=name), {}, request)
            if current.config is not None:
                before, _ = document_from_form(form_values(current.config))
            else:
                before = {}
            changes: dict[str, Any] = {
                k: v for k, v in document.items() if k != "name" and before.get(k) != v
            }
            changes.update({k: None for k in before if k not in document and k != "name"})
            if "env" in changes and masked:
                local["env"] = _masked_message(masked)
            if local:
                result = ActionResult(False, "Not saved: fix the fields marked below.", job=name)
            else:
                result = h.update(name, changes, version, request)
        elif local or masked:
            if masked:
                local["env"] = _masked_message(masked)
            result = ActionResult(False, "Not saved: fix the fields marked below.", job=name)
        else:
            result = h.create(document, request)
        problems = views.problems_by_field(result.problems, FORM_FIELDS)
        for field_name, message in local.items():
            problems.setdefault(field_name, []).insert(0, message)
        return _after_save(result, problems, request)

    def save_raw(mode: str, name: str, version: str, text: str, request: gr.Request) -> tuple[Any, ...]:
        try:
            document = json.loads(text or "")
        except ValueError as exc:
            result = ActionResult(False, f"Not saved: the JSON is not valid ({exc}).")
            return _after_save(result, {"": [result.message]}, request)
        if not isinstance(document, dict):
            result = ActionResult(False, "Not saved: a job file is a JSON object ({...}).")
            return _after_save(result, {"": [result.message]}, request)
        masked = _masked_keys(document)
        if masked:
            result = ActionResult(False, "Not saved: " + _masked_message(masked))
            return _after_save(result, {"": [result.message]}, request)
        if mode == "edit":
            result = h.replace(name, document, version, request)
        else:
            result = h.create(document, request)
        problems = views.problems_by_field(result.problems, ())
        return _after_save(result, problems, request)

    def _after_save(
        result: ActionResult, problems: dict[str, list[str]], request: gr.Request
    ) -> tuple[Any, ...]:
        if result.ok:
            view = result.view
            saved = str(getattr(view, "name", None) or result.job or "")
            names = [str(v.name) for v in h.list_jobs(request)]
            return (
                result.message,
                *_error_updates(None),
                str(getattr(view, "version", "") or ""),
                "edit",
                gr.update(interactive=False),
                gr.update(choices=names, value=saved if saved in names else None),
            )
        if not problems and not result.ok:
            problems = {"": [result.message]}
        return (
            result.message,
            *_error_updates(problems),
            gr.skip(),
            gr.skip(),
            gr.skip(),
            gr.skip(),
        )

    def action(kind: str) -> Callable[..., str]:
        def run(name: str | None, request: gr.Request) -> str:
            name = name or ""
            method = getattr(h, kind)
            result: ActionResult = method(name, request)
            return result.message if name else "Select a job first."

        run.__name__ = f"do_{kind}"
        return run

    def do_delete(name: str | None, confirmed: str | None, version: str | None, request: gr.Request) -> tuple[Any, Any]:
        result = h.delete(name or "", confirmed, version, request)
        return result.message, gr.update(value=None) if result.ok else gr.skip()

    def history(name: str | None, status: str, since: str, until: str, request: gr.Request) -> tuple[Any, Any, str]:
        if not name:
            h.list_jobs(request)
            return views.history_frame([]), views.history_chart_frame([]), "Select a job to see its runs."
        try:
            start, end = views.day_bounds(since, until)
        except ValueError as exc:
            h.list_jobs(request)
            return views.history_frame([]), views.history_chart_frame([]), str(exc)
        runs = h.history(name, status or None, start, end, request)
        note = f"{len(runs)} runs of {name!r}" + (f" with status {status}" if status else "")
        return views.history_frame(runs), views.history_chart_frame(runs), note

    def logs(name: str | None, search: str, status: str, request: gr.Request) -> tuple[str, Any]:
        if not name:
            h.list_jobs(request)
            return "Select a job to see its output.", gr.update(value=None, interactive=False)
        entries = h.logs(name, search, status or None, request)
        text = views.logs_text(entries, search=search)
        return text, gr.update(value=_logs_file(name, text), interactive=True)

    def audit(user: str, job: str, request: gr.Request) -> Any:
        return views.audit_frame(h.audit(user, job, request))

    # -- layout ------------------------------------------------------------------------------
    admin_only: list[gr.components.Component | gr.blocks.BlockContext] = []
    readonly_notes: list[gr.Markdown] = []
    with gr.Accordion(label, open=open, elem_id="jobfsm-section") as accordion:
        who = gr.Markdown("", elem_id="jobfsm-who")
        counts = gr.Markdown("", elem_id="jobfsm-counts")
        table = gr.Dataframe(
            value=views.jobs_frame([]), interactive=False, wrap=True, elem_id="jobfsm-jobs",
            label="Jobs (refreshes every few seconds)", datatype="str",
        )
        with gr.Row():
            job = gr.Dropdown(
                choices=[], value=None, label="Selected job", elem_id="jobfsm-job", scale=3,
                allow_custom_value=True, filterable=True,
            )
            enable_btn = gr.Button("Enable", elem_id="jobfsm-enable", scale=1)
            disable_btn = gr.Button("Disable", elem_id="jobfsm-disable", scale=1)
            trigger_btn = gr.Button("Trigger now", variant="primary", elem_id="jobfsm-trigger", scale=1)
            delete_btn = gr.Button("Delete", variant="stop", elem_id="jobfsm-delete", scale=1)
            new_btn = gr.Button("New job", elem_id="jobfsm-new", scale=1)
        admin_only += [enable_btn, disable_btn, trigger_btn, delete_btn, new_btn]
        status = gr.Textbox(label="Result", interactive=False, elem_id="jobfsm-status", elem_classes=["jobfsm-status"])
        confirm = gr.Textbox(value="", visible=False, elem_id="jobfsm-confirm")
        version = gr.Textbox(value="", visible=False, elem_id="jobfsm-version")
        mode = gr.Textbox(value="create", visible=False, elem_id="jobfsm-mode")

        with gr.Tabs():
            with gr.Tab("Lifecycle", elem_id="jobfsm-tab-lifecycle"):
                diagram = gr.Markdown(_diagram(None), elem_id="jobfsm-diagram")
            with gr.Tab("Edit", elem_id="jobfsm-tab-edit"):
                readonly_notes.append(gr.Markdown(READ_ONLY_NOTE, visible=False))
                with gr.Column(visible=False) as edit_body:
                    fields: list[gr.components.Component] = []
                    errors: list[gr.Textbox] = []
                    helper = None
                    for name in FORM_FIELDS:
                        component = _component(name)
                        component.elem_id = f"jobfsm-field-{name}"
                        fields.append(component)
                        errors.append(_error_box())
                        errors[-1].elem_id = f"jobfsm-error-{name}"
                        if name == "schedule":
                            helper = gr.Textbox(
                                label="Schedule in words, next fire times", interactive=False, lines=7,
                                elem_id="jobfsm-cron-help",
                            )
                    general_error = _error_box()
                    general_error.elem_id = "jobfsm-error-general"
                    errors.append(general_error)
                    save_btn = gr.Button("Save", variant="primary", elem_id="jobfsm-save")
            with gr.Tab("Raw JSON", elem_id="jobfsm-tab-raw"):
                readonly_notes.append(gr.Markdown(READ_ONLY_NOTE, visible=False))
                with gr.Column(visible=False) as raw_body:
                    raw = gr.Code(language="json", label="Job file", interactive=True, elem_id="jobfsm-raw")
                    save_raw_btn = gr.Button("Save JSON", variant="primary", elem_id="jobfsm-save-raw")
            with gr.Tab("History", elem_id="jobfsm-tab-history"):
                with gr.Row():
                    h_status = gr.Dropdown(choices=STATUS_CHOICES, value="", label="Status", elem_id="jobfsm-history-status")
                    h_since = gr.Textbox(label="Since (YYYY-MM-DD)", elem_id="jobfsm-history-since")
                    h_until = gr.Textbox(label="Until (YYYY-MM-DD)", elem_id="jobfsm-history-until")
                    h_btn = gr.Button("Filter", elem_id="jobfsm-history-filter")
                h_note = gr.Textbox(show_label=False, interactive=False, container=False, elem_id="jobfsm-history-note")
                h_table = gr.Dataframe(
                    value=views.history_frame([]), interactive=False, wrap=True, datatype="str",
                    label="Runs, newest first", elem_id="jobfsm-history",
                )
                h_plot = gr.ScatterPlot(
                    value=views.history_chart_frame([]), x="started", y="duration_seconds",
                    color="status", color_map=views.STATUS_COLOURS, label="Run durations (seconds)",
                    elem_id="jobfsm-history-chart",
                )
            with gr.Tab("Logs", elem_id="jobfsm-tab-logs"):
                with gr.Row():
                    l_search = gr.Textbox(label="Search output", elem_id="jobfsm-logs-search")
                    l_status = gr.Dropdown(choices=STATUS_CHOICES, value="", label="Status", elem_id="jobfsm-logs-status")
                    l_btn = gr.Button("Show", elem_id="jobfsm-logs-show")
                l_text = gr.Textbox(
                    label="Output of the selected runs", lines=16, max_lines=40, interactive=False,
                    autoscroll=False, elem_id="jobfsm-logs",
                )
                l_download = gr.DownloadButton("Download these logs", value=None, interactive=False, elem_id="jobfsm-logs-download")
            with gr.Tab("Audit", elem_id="jobfsm-tab-audit") as audit_tab:
                readonly_notes.append(gr.Markdown(READ_ONLY_NOTE, visible=False))
                with gr.Column(visible=False) as audit_body:
                    with gr.Row():
                        a_user = gr.Textbox(label="User", elem_id="jobfsm-audit-user")
                        a_job = gr.Textbox(label="Job", elem_id="jobfsm-audit-job")
                        a_btn = gr.Button("Filter", elem_id="jobfsm-audit-filter")
                    a_table = gr.Dataframe(
                        value=views.audit_frame([]), interactive=False, wrap=True, datatype="str",
                        label="Who did what, newest first", elem_id="jobfsm-audit",
                    )
        admin_only += [edit_body, raw_body, audit_body]
        timer = gr.Timer(REFRESH_SECONDS)

    # -- events --------------------------------------------------------------------------------
    assert helper is not None
    name_field, schedule_field, tz_field = fields[0], fields[2], fields[3]
    dash_out = [counts, table, job, diagram]
    quiet: dict[str, Any] = {"show_progress": "hidden"}

    root = gr.context.Context.root_block
    if root is not None:
        root.load(setup, None, [who, *admin_only, *readonly_notes], **quiet)
        root.load(dashboard, [job], dash_out, **quiet)
    timer.tick(dashboard, [job], dash_out, **quiet)

    select_out = [*fields, *errors, version, mode, raw, status]
    job.input(select, [job], select_out).then(
        history, [job, h_status, h_since, h_until], [h_table, h_plot, h_note], **quiet
    ).then(logs, [job, l_search, l_status], [l_text, l_download], **quiet)
    new_btn.click(new_job, None, select_out)

    for kind, button in (("enable", enable_btn), ("disable", disable_btn), ("trigger", trigger_btn)):
        button.click(action(kind), [job], [status]).then(dashboard, [job], dash_out, **quiet)
    delete_btn.click(
        do_delete, [job, confirm, version], [status, job], js=DELETE_JS
    ).then(dashboard, [job], dash_out, **quiet)

    for trigger in (schedule_field.change, tz_field.change):  # type: ignore[attr-defined]
        trigger(cron_helper, [schedule_field, tz_field], [helper, errors[2]], **quiet)

    save_out = [status, *errors, version, mode, name_field, job]
    save_btn.click(save_form, [mode, version, *fields], save_out).then(dashboard, [job], dash_out, **quiet)
    save_raw_btn.click(save_raw, [mode, name_field, version, raw], save_out).then(
        dashboard, [job], dash_out, **quiet
    )

    h_btn.click(history, [job, h_status, h_since, h_until], [h_table, h_plot, h_note])
    l_btn.click(logs, [job, l_search, l_status], [l_text, l_download])
    l_search.submit(logs, [job, l_search, l_status], [l_text, l_download])
    a_btn.click(audit, [a_user, a_job], [a_table])
    audit_tab.select(audit, [a_user, a_job], [a_table])
    return accordion
