"""Several nodes on one store (DESIGN.md §4, docs/cluster.md): who claims a fire first, and
whether this node's clock agrees with the database's.

Mechanisms of their own, no store calls: the scheduler gives them what the store said.

- **Work spreads by rendezvous hashing.** Every node ranks the live nodes for each fire by a
  hash of (node, job, fire time); the first claims at the fire time, the second
  ``CLAIM_STEP_SECONDS`` later, and so on. All nodes agree on the order without talking to
  each other, each node gets about ``1/n`` of the fires, and a node that is dead but not yet
  declared so costs its fires ``CLAIM_STEP_SECONDS`` of lateness, not the ten seconds of
  ``--dead-after``. The claim itself stays the store's unique key: the order only decides who
  usually wins, never whether a fire runs once.
- **The clock check** compares the database's time of each heartbeat with this node's clock
  around it, and warns at start-up and then at most hourly while they differ by more than
  ``CLOCK_SKEW_WARN_SECONDS``: fires are due by this node's clock (a node 30 s fast runs its
  share of the fires 30 s early), liveness by the database's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime

CLAIM_STEP_SECONDS = 0.25
"""How much later the next node in a fire's order tries to claim it."""
CLOCK_SKEW_WARN_SECONDS = 2.0
CLOCK_WARN_EVERY_SECONDS = 3600.0


def claim_delay(node: str, live: Sequence[str], job: str, fire: datetime) -> float:
    """Seconds after ``fire`` at which ``node`` tries to claim it: its rank among ``live``
    (this node included or not) times :data:`CLAIM_STEP_SECONDS`; 0 when it is alone."""
    if not live or (len(live) == 1 and live[0] == node):
        return 0.0
    key = f"|{job}|{fire.timestamp():.0f}".encode()
    mine = _score(node, key)
    rank = sum(1 for other in live if other != node and _score(other, key) > mine)
    return rank * CLAIM_STEP_SECONDS


def _score(node: str, key: bytes) -> bytes:
    # A real hash, not a CRC: a CRC is linear, so node names that differ in one character
    # would rank alike for every fire and the shares come out uneven.
    return hashlib.blake2b(node.encode() + key, digest_size=8).digest()


class ClockWatch:
    """Warns (through ``warn``) when this node's clock is off the database's."""

    def __init__(self, warn: Callable[[str], None], *, every: float = CLOCK_WARN_EVERY_SECONDS) -> None:
        self._warn = warn
        self._every = every
        self._last_warned: float | None = None
        self.offset: float | None = None
        """This node's clock minus the database's, in seconds, at the last check."""

    def check(self, database: datetime, before: datetime, after: datetime, *, monotonic: float) -> None:
        """``database``: the database's time of a call made between ``before`` and ``after``
        by this node's clock; ``monotonic``: now, on this node's monotonic clock."""
        mine = before + (after - before) / 2
        self.offset = (mine - database).total_seconds()
        if abs(self.offset) <= CLOCK_SKEW_WARN_SECONDS:
            return
        if self._last_warned is not None and monotonic - self._last_warned < self._every:
            return
        self._last_warned = monotonic
        way = "ahead of" if self.offset > 0 else "behind"
        self._warn(
            f"this node's clock is {abs(self.offset):.1f} s {way} the database's (more than "
            f"{CLOCK_SKEW_WARN_SECONDS:g} s): fires run by this node's clock, so its share of them runs "
            f"{abs(self.offset):.0f} s {'early' if self.offset > 0 else 'late'}; liveness is decided by the "
            "database's clock and is not affected; synchronize the clock (NTP, chrony)"
        )
