"""What the admin page shows, as pure functions: the jobs table, the lifecycle diagram, the log
view's bounds, the download stream, and the new-job defaults (issue 13)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobfsm.admin import views
from jobfsm.admin.diagram import PLACES, diagram_html, main_transitions
from jobfsm.admin.downloads import output_url, stream_output
from jobfsm.admin.form import job_form
from jobfsm.model import JobConfig, JobState, RunStatus, Trigger
from jobfsm.problems import Problem
from jobfsm.store.abc import RunRecord

AT = datetime(2026, 12, 3, 8, 10, 19, tzinfo=UTC)


@dataclass
class View:
    name: str
    state: JobState | None
    config: Any = None
    enabled: bool | None = True
    last_run: RunRecord | None = None
    next_run: datetime | None = None
    problems: list[Problem] = field(default_factory=list)


def config(name: str, **extra: Any) -> JobConfig:
    return JobConfig(name=name, schedule="30 2 * * *", command="true", working_directory="/tmp", enabled=True, **extra)


def run(status: RunStatus, **extra: Any) -> RunRecord:
    return RunRecord(id=1, job="x", status=status, trigger=Trigger.SCHEDULE, node="n", started_at=AT,
                     scheduled_for=AT, **extra)


def test_failed_jobs_come_first_with_the_reason_one_glance_away() -> None:
    frame = views.jobs_frame([
        View("alpha", JobState.SUCCEEDED, config("alpha"), last_run=run(RunStatus.SUCCEEDED, duration_seconds=1.0)),
        View("zulu", JobState.FAILED, config("zulu"),
             last_run=run(RunStatus.FAILED, exit_code=124, message="timed out after 10 s", duration_seconds=10.0)),
        View("broken", None, None, enabled=None, problems=[Problem("f", "$.schedule", "not a cron expression")]),
    ])
    assert list(frame["Name"]) == ["zulu", "broken", "alpha"]
    assert frame.iloc[0]["Why (last run)"] == "exit 124 · timed out after 10 s"
    assert frame.iloc[1]["Why (last run)"] == "$.schedule: not a cron expression"


def test_times_and_schedules_say_their_zone() -> None:
    frame = views.jobs_frame([View("b", JobState.IDLE, config("b", timezone="Europe/Berlin"), next_run=AT)])
    assert [c for c in frame.columns if "(UTC)" in c] == ["Last run (UTC)", "Next run (UTC)"]
    assert frame.iloc[0]["Schedule"].endswith("(30 2 * * *, Europe/Berlin)")
    assert frame.iloc[0]["Next run (UTC)"] == "2026-12-03 08:10:19"


def test_a_running_job_whose_last_fire_was_skipped_shows_running_only() -> None:
    skipped = run(RunStatus.SKIPPED, message="already running (overlap: skip)")
    frame = views.jobs_frame([View("busy", JobState.RUNNING, config("busy"), last_run=skipped)])
    row = frame.iloc[0]
    assert (row["State"], row["Outcome"]) == ("running", "running")
    assert row["Why (last run)"] == "a fire was skipped: already running (overlap: skip)"
    assert row["Duration"] == ""


def test_the_columns_share_the_whole_width() -> None:
    assert len(views.JOB_COLUMN_WIDTHS) == len(views.JOB_COLUMNS)
    assert sum(int(str(w).rstrip("%")) for w in views.JOB_COLUMN_WIDTHS) == 100


@pytest.mark.parametrize("state", [*JobState, None], ids=lambda s: getattr(s, "value", "none"))
def test_the_diagram_colours_the_current_state_as_the_table_does(state: JobState | None) -> None:
    svg = diagram_html(state)
    current = re.findall(r'<rect class="jobfsm-state jobfsm-current" data-state="(\w+)"[^>]*fill="(#\w+)"', svg)
    if state is None:
        assert current == []
    else:
        assert current == [(state.value, views.STATE_COLOURS[state.value])]
    assert len(re.findall(r'<rect class="jobfsm-state', svg)) == len(PLACES) == len(JobState)


def test_the_diagram_draws_every_state_change_of_the_table() -> None:
    edges = main_transitions()
    assert edges[("disabled", "idle")] == "enable"
    assert edges[("running", "failed")] == "fail"
    assert edges[("failed", "running")] == "start"
    assert edges[("running", "disabled")] == "run ends, disable pending"
    assert {s for pair in edges for s in pair} == {s.value for s in JobState}
    svg = diagram_html(JobState.FAILED)
    assert svg.count("marker-end=") == len(edges)


def test_the_log_view_clips_each_stream_and_the_whole() -> None:
    big = "first\n" + "x" * 100_000 + "\nlast\n"
    runs = [run(RunStatus.SUCCEEDED, stdout_tail=big) for _ in range(30)]
    text = views.logs_text(views.stored_output(runs), per_stream=1000, total=20_000)
    assert len(text) < 20_200
    assert text.startswith("=== run 1") and text.rstrip().endswith("last")
    assert "not shown here: download the full output" in text


def test_the_download_streams_every_byte_of_the_output_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_bytes(b"A" * 300_000 + b"\nend")
    gone = str(tmp_path / "gone")
    records = [
        run(RunStatus.SUCCEEDED, stdout_path=str(out), stdout_tail="tail only"),
        run(RunStatus.FAILED, stdout_path=gone, stdout_tail="kept tail", message="exit 1"),
    ]
    chunks = list(stream_output(records))
    body = b"".join(chunks)
    assert body.count(b"A") == 300_000 and b"\nend\n" in body
    assert b"kept tail" in body and b"the file is gone" in body and b"--- note: exit 1" in body
    assert max(len(c) for c in chunks) <= 64 * 1024


def test_the_download_link_quotes_the_name() -> None:
    assert output_url("a b", "failed") == "/jobfsm/output/a%20b.txt?status=failed"
    assert output_url("<img src=x>") == "/jobfsm/output/%3Cimg%20src%3Dx%3E.txt"


def test_a_new_job_starts_enabled() -> None:
    form = job_form()
    assert form.starting_values()["enabled"] is True
    assert form.skeleton()["enabled"] is True
    document, _ = form.document(form.starting_values())
    assert document["enabled"] is True
