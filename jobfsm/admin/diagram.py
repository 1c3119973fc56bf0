"""The lifecycle diagram of the admin page: an SVG drawn from the transition table.

Drawn here rather than by Mermaid in the browser: Mermaid laid the labels over each other,
could only colour the current state one way, and failed ("Syntax error in text") when it drew
into a tab that was hidden. The states sit at fixed places; the arrows are the transitions of
:data:`jobfsm.lifecycle.TRANSITIONS` that change the state (internal ones, such as a second run
of an ``overlap: allow`` job, are left out), and the current state has the table's colour
(:data:`jobfsm.admin.views.STATE_COLOURS`). Nothing in it comes from a job's data: only state
names and the table's events, escaped all the same. Imports no Gradio.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

from jobfsm.admin.views import STATE_COLOURS
from jobfsm.lifecycle import TRANSITIONS
from jobfsm.model import JobState

__all__ = ["PLACES", "diagram_html", "main_transitions"]

WIDTH, HEIGHT = 820, 340
BOX_W, BOX_H = 116, 40
PLACES: dict[str, tuple[float, float]] = {
    JobState.DISABLED.value: (410, 40),
    JobState.IDLE.value: (130, 160),
    JobState.SUCCEEDED.value: (410, 160),
    JobState.FAILED.value: (690, 160),
    JobState.RUNNING.value: (410, 290),
}
"""Where each state's box is centred: disabled on top, the resting states in the middle,
running below them."""

AROUND = (JobState.RUNNING.value, JobState.DISABLED.value)
"""The one arrow drawn around the others (running to disabled, when a disable waited for the run)."""


def main_transitions() -> dict[tuple[str, str], str]:
    """``(source, dest)`` → label, for every transition of the table that changes the state.

    Transitions with a guard are named by it ("run ends, disable pending")."""
    events: dict[tuple[str, str], list[str]] = {}
    for t in TRANSITIONS:
        dest = t["dest"]
        if dest is None:
            continue
        sources = [t["source"]] if isinstance(t["source"], str) else list(t["source"])
        for source in sources:
            events.setdefault((source, dest), []).append(str(t["trigger"]))
    labels = {}
    for (source, dest), names in events.items():
        if (source, dest) == AROUND:
            labels[(source, dest)] = "run ends, disable pending"
        else:
            labels[(source, dest)] = " / ".join(dict.fromkeys(names))
    return labels


def diagram_html(state: JobState | str | None) -> str:
    """The diagram with ``state`` (None: no job selected) filled in its table colour."""
    current = JobState(state).value if state is not None else None
    caption = "Lifecycle of every job" if current is None else f"Current state: {current}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'style="max-width:{WIDTH}px;font-family:sans-serif" role="img" aria-label="{html.escape(caption)}">',
        '<defs><marker id="jobfsm-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#4b5563"/></marker></defs>',
    ]
    edges = main_transitions()
    for (source, dest), label in edges.items():
        parts.extend(_edge(source, dest, label, two_way=(dest, source) in edges))
    for name, (x, y) in PLACES.items():
        parts.extend(_box(name, x, y, name == current))
    parts.append("</svg>")
    note = (
        '<p class="jobfsm-diagram-caption" style="margin:0.25em 0"><b>'
        + html.escape(caption)
        + "</b> — coloured as in the table; a disable while running waits for the run to end.</p>"
    )
    return f'<div id="jobfsm-diagram-svg" data-state="{html.escape(current or "")}">{note}{"".join(parts)}</div>'


def _box(name: str, x: float, y: float, current: bool) -> Iterable[str]:
    fill = STATE_COLOURS.get(name, "#ffffff") if current else "#f9fafb"
    stroke, width, weight = ("#111827", 3, 700) if current else ("#9ca3af", 1.5, 400)
    yield (
        f'<rect class="jobfsm-state{" jobfsm-current" if current else ""}" data-state="{html.escape(name)}" '
        f'x="{x - BOX_W / 2:.0f}" y="{y - BOX_H / 2:.0f}" width="{BOX_W}" height="{BOX_H}" rx="8" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>'
    )
    yield (
        f'<text x="{x:.0f}" y="{y + 5:.0f}" text-anchor="middle" font-size="15" font-weight="{weight}" '
        f'fill="#111827">{html.escape(name)}</text>'
    )


def _edge(source: str, dest: str, label: str, *, two_way: bool) -> Iterable[str]:
    (x1, y1), (x2, y2) = PLACES[source], PLACES[dest]
    text = html.escape(label)
    if (source, dest) == AROUND:  # out to the right, around failed, into disabled's side
        path = f"M{x1 + BOX_W / 2:.0f},{y1:.0f} C{WIDTH + 90},{y1:.0f} {WIDTH + 90},{y2:.0f} {x2 + BOX_W / 2:.0f},{y2:.0f}"
        yield f'<path d="{path}" fill="none" stroke="#4b5563" stroke-width="1.5" stroke-dasharray="5 4" marker-end="url(#jobfsm-arrow)"/>'
        yield f'<text x="{x1 + BOX_W / 2 + 20:.0f}" y="{y1 + 34:.0f}" font-size="12" fill="#374151">{text}</text>'
        return
    dx, dy = x2 - x1, y2 - y1
    length = math.hypot(dx, dy)
    ux, uy = dx / length, dy / length
    nx, ny = -uy, ux  # to the left of the direction of travel
    offset = 7 if two_way else 0
    sx, sy = _border(x1, y1, ux, uy)
    ex, ey = _border(x2, y2, -ux, -uy)
    sx, sy, ex, ey = sx + nx * offset, sy + ny * offset, ex + nx * offset, ey + ny * offset
    yield (
        f'<line x1="{sx:.1f}" y1="{sy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="#4b5563" '
        'stroke-width="1.5" marker-end="url(#jobfsm-arrow)"/>'
    )
    mx, my = (sx + ex) / 2 + nx * 14, (sy + ey) / 2 + ny * 14
    anchor = "middle" if abs(nx) < 0.3 else ("start" if nx > 0 else "end")
    yield (
        f'<text x="{mx:.0f}" y="{my + 4:.0f}" text-anchor="{anchor}" font-size="12" '
        f'fill="#374151">{text}</text>'
    )


def _border(x: float, y: float, ux: float, uy: float) -> tuple[float, float]:
    """Where a ray from a box's centre along (ux, uy) leaves the box."""
    t = min((BOX_W / 2) / abs(ux) if ux else math.inf, (BOX_H / 2) / abs(uy) if uy else math.inf)
    return x + ux * t, y + uy * t
