"""What the section's refresh sends each open page: the parts that change (the counts, the
jobs table and the job choices; the paused jobs; the nodes), each sent to a page only when it
differs from what that page was sent last, and the jobs table rendered once per job list for
all pages.

Every open page's timer asks every few seconds for a mark only (:class:`Refresh`), and the
refresh runs when the mark changed; the job list itself is shared (:mod:`jobfsm.service.listing`),
and a part that did not change costs a page nothing.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from jobfsm.admin import views
from jobfsm.service.listing import JobList

SESSIONS_KEPT = 1000
"""Pages remembered (the least recently seen forgotten first: a forgotten page is sent all again)."""

Updates = dict[Any, Any]
"""Gradio updates by component: the components an event lists and this leaves out are skipped."""
Shown = Callable[[str | None, gr.Request], tuple[Updates, list[str]]]
"""A part of the refresh: (the selected job, the caller) to its updates by component and the
texts they show (the part's mark is made of those, and a page is sent it when they changed)."""


def digest_of(parts: Iterable[str]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.digest()


def frame_texts(frame: Any) -> list[str]:
    """Every cell of a pandas frame, row by row, as text."""
    return [str(cell) for row in frame.itertuples(index=False) for cell in row]


class Sent:
    """What each page (by its Gradio session) was sent last, part by part; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pages: OrderedDict[str, dict[str, bytes]] = OrderedDict()

    def news(self, request: gr.Request | None, part: str, digest: bytes) -> bool:
        """Whether the caller's page was not sent ``part`` as ``digest`` yet (it counts as sent
        now); always True for a caller without a page (a script)."""
        session = getattr(request, "session_hash", None)
        if not session:
            return True
        with self._lock:
            sent = self._pages.setdefault(session, {})
            self._pages.move_to_end(session)
            while len(self._pages) > SESSIONS_KEPT:
                self._pages.popitem(last=False)
            if sent.get(part) == digest:
                return False
            sent[part] = digest
            return True


class Refresh:
    """The section's refresh, in two steps: the timer's look computes the page's mark (cheap:
    one small answer), and only a changed mark runs the refresh, which merges what each part
    contributes. Gradio's cost of an event grows with its outputs, skipped or not."""

    def __init__(self) -> None:
        self.outputs: list[Any] = []
        self.sent = Sent()
        self._parts: list[tuple[str, Shown]] = []

    def add(self, part: str, outputs: Sequence[Any], shown: Shown) -> None:
        """Add a part (before the section is wired: the event's outputs are fixed then)."""
        self.outputs.extend(outputs)
        self._parts.append((part, shown))

    def updates(self, selected: str | None, request: gr.Request) -> Updates:
        """What each part sends the caller's page: its updates, or skips where it has them."""
        merged: Updates = {}
        for part, shown in self._parts:
            merged.update(self.if_changed(request, part, *shown(selected, request)))
        return merged

    def marks(self, selected: str | None, request: gr.Request) -> list[str]:
        return [digest_of(shown(selected, request)[1]).hex() for _, shown in self._parts]

    def if_changed(self, request: gr.Request, part: str, updates: Updates, texts: Iterable[str]) -> Updates:
        """``updates`` when ``texts`` (what they show) differ from what the caller's page was
        sent last as ``part``; else a skip for each of their components."""
        if self.sent.news(request, part, digest_of(texts)):
            return updates
        return dict.fromkeys(updates, gr.skip())


@dataclass(frozen=True, slots=True)
class Board:
    generation: int
    names: list[str]
    counts: str
    table: Any
    """The styled table (a pandas Styler)."""
    digest: bytes
    """Of everything above that a page shows."""


class Boards:
    """The jobs table rendered once per job list; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._board: Board | None = None

    def board(self, listing: JobList) -> Board:
        with self._lock:
            if self._board is None or self._board.generation != listing.generation:
                self._board = _render(listing)
            return self._board


def _render(listing: JobList) -> Board:
    jobs = listing.views
    frame = views.jobs_frame(jobs)
    counts = views.counts_markdown(views.state_counts(jobs))
    names = [str(v.name) for v in jobs]
    return Board(listing.generation, names, counts, views.styled_jobs(frame),
                 digest_of((counts, *names, *frame_texts(frame))))
