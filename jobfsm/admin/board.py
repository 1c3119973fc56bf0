"""What the dashboard timer sends each page: the counts, the jobs table and the job choices,
rendered once per job list for all pages, and nothing to a page that already shows them.

Every open page asks every few seconds. The job list itself is shared
(:mod:`jobfsm.service.listing`); here the table made of it is rendered once per list, and a
page (by its Gradio session) is sent it only when it differs from what that page was sent last.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from jobfsm.admin import views
from jobfsm.service.listing import JobList

SESSIONS_KEPT = 1000
"""Pages remembered (the least recently seen forgotten first: a forgotten page is sent all again)."""


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
    """The last rendered board and what each page was sent; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._board: Board | None = None
        self._sent: OrderedDict[str, bytes] = OrderedDict()

    def board(self, listing: JobList) -> Board:
        with self._lock:
            if self._board is None or self._board.generation != listing.generation:
                self._board = _render(listing)
            return self._board

    def news_for(self, session: str | None, board: Board) -> bool:
        """Whether the page of ``session`` was not sent ``board`` yet (it counts as sent now);
        always True for a caller without a session."""
        if not session:
            return True
        with self._lock:
            if self._sent.get(session) == board.digest:
                self._sent.move_to_end(session)
                return False
            self._sent[session] = board.digest
            self._sent.move_to_end(session)
            while len(self._sent) > SESSIONS_KEPT:
                self._sent.popitem(last=False)
            return True


def _render(listing: JobList) -> Board:
    jobs = listing.views
    frame = views.jobs_frame(jobs)
    counts = views.counts_markdown(views.state_counts(jobs))
    names = [str(v.name) for v in jobs]
    digest = hashlib.blake2b(digest_size=16)
    for part in (counts, *names, *(cell for row in frame.itertuples(index=False) for cell in row)):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return Board(listing.generation, names, counts, views.styled_jobs(frame), digest.digest())
