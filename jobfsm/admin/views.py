"""Pure functions that turn the service's records into what the admin page shows.

Nothing here imports Gradio, and nothing renders HTML or Markdown from data: tables are
pandas frames of plain strings (Gradio shows ``str`` cells as text), logs are plain text. The
only Markdown built here is made of fixed words and numbers (the per-state counts) and of the
lifecycle diagram, which comes from the transition table, never from a job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import pandas as pd

from jobfsm.clock import duration_text
from jobfsm.model import JobState, RunStatus
from jobfsm.problems import Problem
from jobfsm.service.output import OutputSource, output_place
from jobfsm.service.views import INVALID_STATE, LogEntry, shown_state
from jobfsm.store.abc import AuditEntry, RunRecord

STATE_COLOURS: dict[str, str] = {
    JobState.DISABLED.value: "#e5e7eb",
    JobState.IDLE.value: "#dbeafe",
    JobState.RUNNING.value: "#fef08a",
    JobState.SUCCEEDED.value: "#bbf7d0",
    JobState.FAILED.value: "#fecaca",
    INVALID_STATE: "#fed7aa",
}
"""Background colour of a state cell (the text stays the state's name, for colour-blind users)."""

STATUS_COLOURS: dict[str, str] = {
    RunStatus.RUNNING.value: "#eab308",
    RunStatus.SUCCEEDED.value: "#16a34a",
    RunStatus.FAILED.value: "#dc2626",
    RunStatus.SKIPPED.value: "#6b7280",
    RunStatus.LOST.value: "#7c3aed",
}

JOB_COLUMNS = [
    "Name", "State", "Schedule", "Last run (UTC)", "Outcome", "Why (last run)", "Duration", "Next run (UTC)",
    "Enabled",
]
JOB_COLUMN_WIDTHS: list[str | int] = ["13%", "9%", "16%", "10%", "9%", "18%", "7%", "11%", "7%"]
"""Share of the table's width per column: all of it fits at 1,400 px, a duration on one line."""
STATE_ORDER = {JobState.FAILED.value: 0, INVALID_STATE: 1, JobState.RUNNING.value: 2}
"""The table lists failed jobs first, then invalid files, then running jobs, then the rest (by name)."""

HISTORY_COLUMNS = ["Run", "Started", "Trigger", "Status", "Duration", "Exit code", "Node", "Message"]
AUDIT_COLUMNS = ["Time", "User", "Action", "Job", "Outcome", "Details"]


def fmt_time(dt: datetime | None, tz: tzinfo = UTC) -> str:
    if dt is None:
        return ""
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def fmt_table_time(dt: datetime | None) -> str:
    """A time in the jobs table, whose column headers name the zone (UTC)."""
    return "" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    return "" if seconds is None else duration_text(seconds)


def schedule_words(expr: str | None, tz: str | None = None) -> str:
    """The schedule in words, its expression and the zone it is read in."""
    if not expr:
        return ""
    from jobfsm import cron

    zone = f", {tz or 'UTC'}"
    try:
        return f"{cron.describe(expr)} ({expr}{zone})"
    except Exception:  # an invalid file: show the text as it is
        return f"{expr}{zone}"


def job_state_text(view: Any) -> str:
    """The state cell (:func:`jobfsm.service.views.shown_state`); ``view`` is any object with a
    job view's ``state`` and ``config``."""
    state = getattr(view, "state", None)
    loaded = getattr(view, "config", None) is not None
    return shown_state(JobState(state) if state is not None else None, loaded=loaded)


def jobs_frame(views: Sequence[Any]) -> pd.DataFrame:
    """The dashboard table: one row per job, all cells text, failed jobs first."""
    rows = []
    for view in sorted(views, key=lambda v: (STATE_ORDER.get(job_state_text(v), 9), str(v.name))):
        config = getattr(view, "config", None)
        last: RunRecord | None = getattr(view, "last_run", None)
        state = job_state_text(view)
        outcome, why = last_outcome(state, last)
        if config is None:
            why = first_problem(view)
        rows.append(
            [
                str(view.name),
                state,
                schedule_words(config.schedule if config else None, config.timezone if config else None),
                fmt_table_time((last.started_at or last.scheduled_for) if last else None),
                outcome,
                why,
                fmt_duration(last.duration_seconds if last and last.status is not RunStatus.SKIPPED else None),
                fmt_table_time(getattr(view, "next_run", None)),
                "yes" if getattr(view, "enabled", False) else "no",
            ]
        )
    return pd.DataFrame(rows, columns=JOB_COLUMNS, dtype=str)


def last_outcome(state: str, last: RunRecord | None) -> tuple[str, str]:
    """(Outcome, Why) of the table: how the last run ended and the reason, one glance away.

    A running job whose newest record is a skipped fire (the fire came while it ran) shows
    ``running``, with the skip as the reason, never ``running`` beside ``skipped``."""
    if last is None:
        return "", ""
    if state == JobState.RUNNING.value and last.status is RunStatus.SKIPPED:
        return RunStatus.RUNNING.value, f"a fire was skipped: {last.message}" if last.message else "a fire was skipped"
    why = last.message
    if last.status in (RunStatus.FAILED, RunStatus.LOST):
        parts = []
        if last.exit_code is not None:
            parts.append(f"exit {last.exit_code}")
        if last.signal:
            parts.append(f"signal {last.signal}")
        if last.message and not last.message.startswith(f"exit {last.exit_code}"):
            parts.append(last.message)
        why = " · ".join(parts)
    return last.status.value, why


def first_problem(view: Any) -> str:
    """An invalid file's first error, for the table's reason column."""
    problems = [p for p in getattr(view, "problems", []) if p.is_error]
    if not problems:
        return ""
    first = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{first.json_path}: {first.message}{more}"


def styled_jobs(frame: pd.DataFrame) -> Any:
    """The table with each state cell coloured (a pandas Styler, which Gradio renders)."""

    def colour(value: object) -> str:
        bg = STATE_COLOURS.get(str(value))
        return f"background-color: {bg}; color: #111827; font-weight: 600" if bg else ""

    return frame.style.map(colour, subset=["State", "Outcome"])


def state_counts(views: Sequence[Any]) -> dict[str, int]:
    counts = {state.value: 0 for state in JobState}
    for view in views:
        key = job_state_text(view)
        counts[key] = counts.get(key, 0) + 1
    return counts


def counts_markdown(counts: Mapping[str, int]) -> str:
    """Fixed words and numbers only (safe as Markdown)."""
    parts = [f"**{state}** {n}" for state, n in counts.items() if state in STATE_COLOURS]
    total = sum(counts.values())
    return f"**{total} jobs** — " + " · ".join(parts)


def history_frame(runs: Iterable[RunRecord]) -> pd.DataFrame:
    rows = [
        [
            str(run.id),
            fmt_time(run.started_at or run.scheduled_for),
            run.trigger.value,
            run.status.value,
            fmt_duration(run.duration_seconds),
            "" if run.exit_code is None else str(run.exit_code),
            run.node,
            run.message,
        ]
        for run in runs
    ]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS, dtype=str)


def history_chart_frame(runs: Iterable[RunRecord]) -> pd.DataFrame:
    """Duration over time, one point per finished or running run, for a scatter plot."""
    rows = []
    for run in runs:
        when = run.started_at or run.scheduled_for
        if when is None:
            continue
        rows.append(
            {
                "started": when.astimezone(UTC).replace(tzinfo=None),
                "duration_seconds": float(run.duration_seconds or 0.0),
                "status": run.status.value,
            }
        )
    frame = pd.DataFrame(rows, columns=["started", "duration_seconds", "status"])
    frame["started"] = pd.to_datetime(frame["started"])
    return frame.sort_values("started") if len(frame) else frame


def audit_frame(entries: Iterable[AuditEntry]) -> pd.DataFrame:
    rows = [
        [
            fmt_time(e.time),
            e.user,
            e.action,
            e.job or "",
            e.outcome,
            json.dumps(e.details, sort_keys=True, default=str) if e.details else "",
        ]
        for e in entries
    ]
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS, dtype=str)


def run_heading(run: RunRecord) -> str:
    """The line before a run's output, in the log view and the download."""
    return (
        f"=== run {run.id} · {run.status.value} · {run.trigger.value} · "
        f"started {fmt_time(run.started_at) or '-'} · exit {run.exit_code}"
        f" · {fmt_duration(run.duration_seconds) or '-'} · node {run.node}"
    )


LOG_VIEW_CHARS = 16_000
"""At most this many characters of one stream of one run in the log view (its head and tail)."""
LOG_VIEW_TOTAL = 200_000
"""At most this many characters in the log view in all; the download has everything."""


def clipped(text: str, limit: int, what: str = "characters") -> str:
    """``text`` when short enough, else its head and tail around a line saying what was left out."""
    if len(text) <= limit:
        return text
    half = limit // 2
    left_out = len(text) - 2 * half
    return f"{text[:half]}\n[… {left_out:,} {what} not shown here: download the full output …]\n{text[-half:]}"


def stored_output(runs: Iterable[RunRecord]) -> list[LogEntry]:
    """Log entries from what the store keeps of each run (the head and tail of its output),
    without reading the output files: what the log view shows when nothing is searched."""
    return [LogEntry(run, run.stdout_tail, run.stderr_tail, OutputSource.STORED, output_place(run).note)
            for run in runs]


def logs_text(entries: Iterable[Any], *, search: str | None = None, per_stream: int | None = None,
              total: int | None = None) -> str:
    """The output of the selected runs as one plain-text document; with ``per_stream`` and
    ``total``, bounded for the page (the download link streams it whole)."""
    chunks = []
    for entry in entries:
        run: RunRecord = entry.run
        parts = [run_heading(run)]
        if entry.note:  # the full output is on another host
            parts.append(f"--- {entry.note}")
        for label, text in (("stdout", entry.stdout), ("stderr", entry.stderr)):
            if text:
                parts.append(f"--- {label}")
                parts.append(clipped(text.rstrip("\n"), per_stream) if per_stream else text.rstrip("\n"))
        if run.message:
            parts.append(f"--- note: {run.message}")
        chunks.append("\n".join(parts))
    if not chunks:
        return "(no runs match)" if search else "(no runs yet)"
    text = "\n\n".join(chunks) + "\n"
    return clipped(text, total) if total else text


def cron_help(expr: str, tz: str, now: datetime, *, count: int = 5) -> tuple[str, str | None]:
    """(words and next fire times, error or None) for the cron field, as the user types."""
    from jobfsm import cron
    from jobfsm.errors import CronError

    expr = (expr or "").strip()
    if not expr:
        return "", "a schedule is required, e.g. '30 2 * * *' (every day at 02:30)"
    try:
        cron.validate_expression(expr)
        words = cron.describe(expr)
    except CronError as exc:
        return "", str(exc)
    zone_name = (tz or "UTC").strip() or "UTC"
    try:
        fires = cron.iter_fires(expr, zone_name, now)
        lines = [f"{words}  (in {zone_name})", "Next fire times:"]
        for _, fire in zip(range(count), fires, strict=False):
            line = "  " + fire.at.strftime("%a %Y-%m-%d %H:%M %Z (UTC%z)")
            if fire.note:
                line += f"  ⚠ {fire.note}"
            lines.append(line)
    except (CronError, LookupError, ValueError) as exc:
        return words, f"time zone {zone_name!r}: {exc}"
    return "\n".join(lines), None


def problems_by_field(problems: Iterable[Problem], fields: Sequence[str]) -> dict[str, list[str]]:
    """Group problems by the form field they belong to; ``""`` holds the rest."""
    out: dict[str, list[str]] = {}
    for problem in problems:
        path = problem.json_path
        key = ""
        if path.startswith("$."):
            head = path[2:].split(".", 1)[0].split("[", 1)[0]
            key = head if head in fields else ""
        prefix = "warning: " if not problem.is_error else ""
        out.setdefault(key, []).append(prefix + problem.message)
    return out


def day_bounds(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """Parse the history date filters (``YYYY-MM-DD`` or ISO time; ``until`` a date = end of day)."""

    def parse(text: str | None, end: bool) -> datetime | None:
        text = (text or "").strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"cannot read {text!r} as a date; write YYYY-MM-DD or an ISO time") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if end and len(text) <= 10:
            value += timedelta(days=1) - timedelta(microseconds=1)
        return value.astimezone(UTC)

    return parse(since, False), parse(until, True)
