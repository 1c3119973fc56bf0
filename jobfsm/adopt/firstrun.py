"""What a first run says: what was loaded, what fires next, and what to do when nothing will.

``jobfsm start`` prints it on stderr once its jobs are loaded (from the scheduler's own job
table, so it says what the daemon will do), and ``jobfsm status`` prints it under its table when
no daemon is alive (from the service's views: what a daemon started now would load). One
renderer for both, so the two never tell a newcomer different things.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jobfsm.places import DEFAULT_JOBS

if TYPE_CHECKING:
    from jobfsm.service import JobView


@dataclass(frozen=True)
class LoadSummary:
    """The jobs of a folder as loaded: counts, the invalid files, the next fire and its job."""

    jobs: int
    enabled: int
    invalid: tuple[str, ...]
    """Paths of the files that did not load."""
    next_fire: datetime | None
    next_job: str | None
    first_disabled: str | None
    """A disabled job's name, for the "how to enable one" hint."""


def summarize(jobs: Iterable[tuple[str, bool, datetime | None]], invalid: Iterable[str]) -> LoadSummary:
    """From (name, enabled, next fire) of every loaded job and the paths of invalid files."""
    count = enabled = 0
    best: tuple[float, str, datetime] | None = None
    disabled: list[str] = []
    for name, is_enabled, fire in jobs:
        count += 1
        if not is_enabled:
            disabled.append(name)
            continue
        enabled += 1
        if fire is not None and (best is None or (fire.timestamp(), name) < best[:2]):
            best = (fire.timestamp(), name, fire)
    return LoadSummary(
        count, enabled, tuple(sorted(invalid)), best[2] if best else None, best[1] if best else None,
        min(disabled) if disabled else None,
    )


def _in(seconds: float) -> str:
    minutes = max(int(seconds // 60), 0)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


def render(summary: LoadSummary, jobs_dir: Path | str, now: datetime, *, lead: str = "loaded") -> list[str]:
    """The lines to print (no newlines); ``lead`` says who loaded the jobs."""
    folder = str(jobs_dir)
    jobs_option = "" if Path(folder) == Path(DEFAULT_JOBS) else f"--jobs {shlex.quote(folder)} "
    lines = []
    if summary.jobs == 0 and not summary.invalid:
        lines.append(f"no job files in {folder!r}: write one ('jobfsm init' makes an example), or bring "
                     "a crontab over with 'jobfsm import crontab FILE'")
        return lines
    invalid = f", {len(summary.invalid)} invalid" if summary.invalid else ", 0 invalid"
    lines.append(f"{lead} {summary.jobs} job(s) from {folder!r}: {summary.enabled} enabled, "
                 f"{summary.jobs - summary.enabled} disabled{invalid}")
    for path in summary.invalid:
        lines.append(f"  invalid, not loaded: {path} (see 'jobfsm validate {shlex.quote(path)}')")
    if summary.next_fire is not None:
        wait = _in((summary.next_fire - now).total_seconds())
        lines.append(f"next fire: {summary.next_fire.isoformat(sep=' ', timespec='seconds')} "
                     f"(in {wait}), job {summary.next_job!r}")
    elif summary.enabled:
        lines.append("no fire is scheduled for the enabled jobs")
    if summary.enabled == 0:
        example = summary.first_disabled or "NAME"
        lines.append(f"no job is enabled, so nothing will run: enable one with 'jobfsm {jobs_option}enable "
                     f"{example}' (or set \"enabled\": true in its file); a running daemon picks it up by itself")
    return lines


def status_note(views: Iterable[JobView], jobs_dir: Path | str) -> str:
    """``jobfsm status`` with no daemon alive: what ``jobfsm start`` would load (stderr text)."""
    from jobfsm.clock import SystemClock

    views = list(views)
    summary = summarize(
        ((v.name, bool(v.enabled), v.next_run) for v in views if v.config is not None),
        (v.file for v in views if v.config is None),
    )
    lead = "no daemon is running; 'jobfsm start' would load"
    lines = render(summary, jobs_dir, SystemClock().now(), lead=lead)
    if summary.jobs == 0 and not summary.invalid:
        lines.insert(0, "no daemon is running ('jobfsm start' runs one)")
    return "\n".join(lines) + "\n"
