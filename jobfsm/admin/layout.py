"""The Gradio components of the jobs section: the accordion, the table and actions, the tabs.

:func:`build_layout` only makes components, inside the ``gr.Blocks`` being built, and returns
them by name in a :class:`JobsLayout`; :mod:`jobfsm.admin.events` wires them. The edit form's
components come from :class:`jobfsm.admin.form.JobForm`, one per field, keyed like the form.
Every component that shows data from a job is a Textbox, a Dataframe of ``str`` cells or the code
editor, which Gradio shows as text. See docs/architecture.md (the admin page).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from jobfsm.admin import views
from jobfsm.admin.diagram import diagram_html
from jobfsm.admin.form import FieldKind, FormField, JobForm
from jobfsm.admin.refresh import Refresh
from jobfsm.model import RunStatus

READ_ONLY_NOTE = "Read only: this part needs the admin role."
EDIT_READ_ONLY_NOTE = (
    "Read only: editing needs the admin role. The selected job's definition (secrets masked) "
    "is in the Raw JSON tab."
)
LIFECYCLE_TAB, HISTORY_TAB, LOGS_TAB = "lifecycle", "history", "logs"
TABS = {LIFECYCLE_TAB: "Lifecycle", "edit": "Edit", "raw": "Raw JSON", HISTORY_TAB: "History", LOGS_TAB: "Logs", "audit": "Audit"}
"""The tabs, by the key the page keeps of the one that shows."""
STATUS_CLASSES: dict[bool | None, list[str]] = {
    True: ["jobfsm-status", "jobfsm-ok"], False: ["jobfsm-status", "jobfsm-failed"], None: ["jobfsm-status"],
}
"""The Result box's look: done, or not (with a ✗ mark and a red edge, not only a colour)."""
CHART_TIME_FORMAT = "%m-%d %H:%M"
"""The history chart's time axis: 24-hour, like the tables (d3 time format)."""
STATUS_CHOICES = [("any", "")] + [(s.value, s.value) for s in RunStatus]
GENERAL = ""
"""The key of the form's error box for problems that belong to no field."""

CSS = """
.jobfsm-field-error textarea, .jobfsm-field-error input { color: #b91c1c !important; font-weight: 600; }
.jobfsm-status textarea { font-weight: 600; }
.jobfsm-ok textarea { color: #166534 !important; border-left: 6px solid #16a34a !important; background: #f0fdf4 !important; }
.jobfsm-failed textarea { color: #991b1b !important; border-left: 6px solid #dc2626 !important; background: #fef2f2 !important; }
.jobfsm-mono textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace !important; font-size: 13px; }
#jobfsm-jobs td, #jobfsm-jobs th { font-size: 13px; }
"""

Gated = gr.components.Component | gr.blocks.BlockContext


@dataclass
class FormParts:
    """The edit form: an input and an error box per field key (``GENERAL`` for the rest)."""

    inputs: dict[str, gr.components.Component]
    errors: dict[str, gr.Textbox]
    cron_help: gr.Textbox
    save: gr.Button


@dataclass
class HistoryParts:
    status: gr.Dropdown
    since: gr.Textbox
    until: gr.Textbox
    filter: gr.Button
    note: gr.Textbox
    table: gr.Dataframe
    chart: gr.ScatterPlot


@dataclass
class LogParts:
    search: gr.Textbox
    status: gr.Dropdown
    show: gr.Button
    text: gr.Textbox
    download: gr.Button
    """A link to :mod:`jobfsm.admin.downloads`' route, which streams the output files."""


@dataclass
class AuditParts:
    tab: gr.Tab
    user: gr.Textbox
    job: gr.Textbox
    filter: gr.Button
    table: gr.Dataframe


@dataclass
class JobsLayout:
    """Every component the events use, by name."""

    accordion: gr.Accordion
    who: gr.Markdown
    counts: gr.Markdown
    table: gr.Dataframe
    job: gr.Dropdown
    actions: dict[str, gr.Button]
    """``enable``, ``disable``, ``trigger``, ``delete``, ``new``."""
    status: gr.Textbox
    confirm: gr.Textbox
    version: gr.Textbox
    """The selected job's version, sent back with Save and Delete; every action that writes the
    job's file moves it on."""
    tab: gr.Textbox
    """The key (:data:`TABS`) of the tab that shows, kept in the browser."""
    tabs: dict[str, gr.Tab]
    mode: gr.Textbox
    """``create`` or ``edit``: what Save does."""
    diagram: gr.HTML
    form: FormParts
    raw: gr.Code
    raw_note: gr.Textbox
    """An invalid file's problems, above its text in the raw editor."""
    save_raw: gr.Button
    history: HistoryParts
    logs: LogParts
    audit: AuditParts
    timer: gr.Timer
    mark: gr.Textbox
    """What the page shows, in one word, set by the timer's look: the refresh runs when it changes."""
    refresh: Refresh = field(default_factory=Refresh)
    """What the timer's one event sends, part by part (:mod:`jobfsm.admin.refresh`)."""
    admin_only: list[Gated] = field(default_factory=list)
    """Shown to admins only (a convenience: the handlers check the role)."""
    readonly_notes: list[gr.Markdown] = field(default_factory=list)
    """Shown to everybody else instead."""


def build_layout(form: JobForm, *, label: str, open: bool, refresh_seconds: float) -> JobsLayout:
    """Make the section's components inside the ``gr.Blocks`` being built."""
    gated: list[Gated] = []
    notes: list[gr.Markdown] = []
    with gr.Accordion(label, open=open, elem_id="jobfsm-section") as accordion:
        who = gr.Markdown("", elem_id="jobfsm-who")
        counts = gr.Markdown("", elem_id="jobfsm-counts")
        table = gr.Dataframe(
            value=views.jobs_frame([]), interactive=False, wrap=True, elem_id="jobfsm-jobs",
            label="Jobs, failed first (refreshes every few seconds; times in UTC)", datatype="str",
            column_widths=views.JOB_COLUMN_WIDTHS, max_height=760,
        )
        job, actions = _action_row()
        gated += actions.values()
        status = gr.Textbox(label="Result", interactive=False, elem_id="jobfsm-status", elem_classes=STATUS_CLASSES[None])
        confirm = gr.Textbox(value="", visible=False, elem_id="jobfsm-confirm")
        version = gr.Textbox(value="", visible=False, elem_id="jobfsm-version")
        mode = gr.Textbox(value="create", visible=False, elem_id="jobfsm-mode")
        shown_tab = gr.Textbox(value=LIFECYCLE_TAB, visible=False, elem_id="jobfsm-shown-tab")
        # in the page (its change event fires) but not shown: what the page shows, in one word
        mark = gr.Textbox(value="", visible="hidden", interactive=False, elem_id="jobfsm-refresh-mark")
        tabs: dict[str, gr.Tab] = {}
        with gr.Tabs():
            with _tab(tabs, LIFECYCLE_TAB):
                diagram = gr.HTML(diagram_html(None), elem_id="jobfsm-diagram")
            with _tab(tabs, "edit"), _gated(gated, notes, EDIT_READ_ONLY_NOTE):
                parts = _form_parts(form)
            with _tab(tabs, "raw"):
                raw_note = gr.Textbox(
                    value="", visible=False, show_label=False, interactive=False, lines=3, max_lines=12,
                    elem_classes=["jobfsm-field-error"], elem_id="jobfsm-raw-problems",
                )
                raw = gr.Code(language="json", label="Job file", interactive=True, elem_id="jobfsm-raw")
                with _gated(gated, notes, READ_ONLY_NOTE):
                    save_raw = gr.Button("Save JSON", variant="primary", elem_id="jobfsm-save-raw")
            with _tab(tabs, HISTORY_TAB):
                history = _history_parts()
            with _tab(tabs, LOGS_TAB):
                logs = _log_parts()
            with _tab(tabs, "audit") as audit_tab:
                audit = _audit_parts(audit_tab)
        timer = gr.Timer(refresh_seconds)
    return JobsLayout(
        accordion=accordion, who=who, counts=counts, table=table, job=job, actions=actions,
        status=status, confirm=confirm, version=version, tab=shown_tab, tabs=tabs, mode=mode,
        diagram=diagram, form=parts, raw=raw, raw_note=raw_note, save_raw=save_raw, history=history,
        logs=logs, audit=audit, timer=timer, mark=mark, admin_only=gated, readonly_notes=notes,
    )


def _tab(tabs: dict[str, gr.Tab], key: str) -> gr.Tab:
    tab = gr.Tab(TABS[key], elem_id=f"jobfsm-tab-{key}", visible=key != "audit")
    tabs[key] = tab
    return tab


@contextlib.contextmanager
def _gated(gated: list[Gated], notes: list[gr.Markdown], note: str) -> Iterator[gr.Column]:
    """A column shown to admins only, after a read-only note shown to everybody else."""
    notes.append(gr.Markdown(note, visible=False))
    with gr.Column(visible=False) as column:
        gated.append(column)
        yield column


def _action_row() -> tuple[gr.Dropdown, dict[str, gr.Button]]:
    with gr.Row():
        job = gr.Dropdown(
            choices=[], value=None, label="Selected job", elem_id="jobfsm-job", scale=3,
            allow_custom_value=True, filterable=True,
        )
        actions = {
            "enable": gr.Button("Enable", elem_id="jobfsm-enable", scale=1),
            "disable": gr.Button("Disable", elem_id="jobfsm-disable", scale=1),
            "trigger": gr.Button("Trigger now", variant="primary", elem_id="jobfsm-trigger", scale=1),
            "delete": gr.Button("Delete", variant="stop", elem_id="jobfsm-delete", scale=1),
            "new": gr.Button("New job", elem_id="jobfsm-new", scale=1),
        }
    return job, actions


def _form_parts(form: JobForm) -> FormParts:
    inputs: dict[str, gr.components.Component] = {}
    errors: dict[str, gr.Textbox] = {}
    cron_help = None
    starting = form.starting_values()
    for f in form.fields:
        inputs[f.key] = field_component(f, starting[f.key])
        errors[f.key] = _error_box(f.attribute)
        if f.key == "schedule":
            cron_help = gr.Textbox(
                label="Schedule in words, next fire times", interactive=False, lines=7,
                elem_id="jobfsm-cron-help",
            )
    assert cron_help is not None, "the job schema has no schedule"
    errors[GENERAL] = _error_box("general")
    save = gr.Button("Save", variant="primary", elem_id="jobfsm-save")
    return FormParts(inputs, errors, cron_help, save)


def field_component(f: FormField, value: Any = None) -> gr.components.Component:
    """The input of one form field, from its kind, showing ``value`` (default: the field's
    starting value)."""
    common: dict[str, Any] = {
        "label": f.label, "info": f.hint, "interactive": True, "elem_id": f"jobfsm-field-{f.attribute}",
    }
    value = f.starting_value if value is None else value
    if f.kind is FieldKind.CHOICE:
        if f.open_choices:
            common.update(allow_custom_value=True, filterable=True)
        return gr.Dropdown(choices=list(f.choices), value=value, **common)
    if f.kind is FieldKind.FLAG:
        return gr.Checkbox(value=value, **common)
    if f.kind is FieldKind.NUMBER:
        return gr.Number(value=value, precision=0, minimum=f.minimum, maximum=f.maximum, **common)
    if f.kind is FieldKind.OBJECT:
        return gr.Textbox(value=value, lines=3, **common)
    return gr.Textbox(value=value, placeholder=f.placeholder, **common)


def _error_box(suffix: str) -> gr.Textbox:
    return gr.Textbox(
        value="", visible=False, show_label=False, interactive=False, container=False,
        elem_classes=["jobfsm-field-error"], elem_id=f"jobfsm-error-{suffix}",
    )


def _history_parts() -> HistoryParts:
    with gr.Row():
        status = gr.Dropdown(choices=STATUS_CHOICES, value="", label="Status", elem_id="jobfsm-history-status")
        since = gr.Textbox(label="Since (YYYY-MM-DD)", elem_id="jobfsm-history-since")
        until = gr.Textbox(label="Until (YYYY-MM-DD)", elem_id="jobfsm-history-until")
        button = gr.Button("Filter", elem_id="jobfsm-history-filter")
    note = gr.Textbox(show_label=False, interactive=False, container=False, elem_id="jobfsm-history-note")
    table = gr.Dataframe(
        value=views.history_frame([]), interactive=False, wrap=True, datatype="str",
        label="Runs, newest first", elem_id="jobfsm-history",
    )
    chart = gr.ScatterPlot(
        value=views.history_chart_frame([]), x="started", y="duration_seconds",
        color="status", color_map=views.STATUS_COLOURS, label="Run durations (seconds; started, UTC)",
        x_axis_format=CHART_TIME_FORMAT, elem_id="jobfsm-history-chart",
    )
    return HistoryParts(status, since, until, button, note, table, chart)


def _log_parts() -> LogParts:
    with gr.Row():
        search = gr.Textbox(label="Search output", elem_id="jobfsm-logs-search")
        status = gr.Dropdown(choices=STATUS_CHOICES, value="", label="Status", elem_id="jobfsm-logs-status")
        show = gr.Button("Show", elem_id="jobfsm-logs-show")
    text = gr.Textbox(
        label="Output of the last runs (head and tail of each; the download has all of it)", lines=16,
        max_lines=40, interactive=False, autoscroll=False, elem_id="jobfsm-logs", elem_classes=["jobfsm-mono"],
    )
    download = gr.Button(
        "Download the full output of these runs", link=None, interactive=False, elem_id="jobfsm-logs-download",
    )
    return LogParts(search, status, show, text, download)


def _audit_parts(tab: gr.Tab) -> AuditParts:
    with gr.Row():
        user = gr.Textbox(label="User", elem_id="jobfsm-audit-user")
        job = gr.Textbox(label="Job", elem_id="jobfsm-audit-job")
        button = gr.Button("Filter", elem_id="jobfsm-audit-filter")
    table = gr.Dataframe(
        value=views.audit_frame([]), interactive=False, wrap=True, datatype="str",
        label="Who did what, newest first", elem_id="jobfsm-audit",
    )
    return AuditParts(tab, user, job, button, table)
