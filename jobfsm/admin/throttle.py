"""How long a sign-in must wait after failures: per (user, address), a growing delay, no lockout.

Design decisions
----------------
**The key is the pair.** Failures count per (user name, client address). A wrong password for
``alice`` from one address delays only ``alice`` from that address: ``bob`` behind the same SSH
tunnel or proxy signs in at once, and ``alice`` from her own desk is not held up by someone
guessing elsewhere. Nobody can lock another user out.

**A growing delay rather than a lockout.** The first :data:`FREE_FAILURES` failures cost nothing
(typos happen); after that each failure doubles the wait before the pair may try again
(1 s, 2 s, 4 s, … at most :data:`MAX_DELAY_SECONDS`). While the wait runs the server answers 429
with ``Retry-After`` without checking the password. A success clears the pair; a pair with no
failure for :data:`FORGET_AFTER_SECONDS` (after its wait) is forgotten.

**Bounded memory.** At most :data:`MAX_ENTRIES` pairs are kept; past that, forgotten pairs are
pruned, then the oldest are dropped (a spray of made-up names cannot grow the table forever).
State is in memory, per server process: a restart forgets it (the password hash's cost still
bounds the guessing rate).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 3
BASE_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 300.0
FORGET_AFTER_SECONDS = 900.0
MAX_ENTRIES = 10_000


@dataclass
class _Pair:
    failures: int
    last: float
    retry_at: float


class SignInThrottle:
    """Failed sign-ins per (user, address) and the wait they impose. Thread-safe."""

    def __init__(
        self,
        *,
        free_failures: int = FREE_FAILURES,
        base_delay: float = BASE_DELAY_SECONDS,
        max_delay: float = MAX_DELAY_SECONDS,
        forget_after: float = FORGET_AFTER_SECONDS,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._pairs: OrderedDict[tuple[str, str], _Pair] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(user: str, address: str) -> tuple[str, str]:
        return (user.casefold(), address)

    def delay_after(self, failures: int) -> float:
        """The wait imposed after ``failures`` failures in a row."""
        extra = failures - self.free_failures
        if extra <= 0:
            return 0.0
        return min(self.max_delay, self.base_delay * 2.0 ** min(extra - 1, 62))

    def wait(self, user: str, address: str) -> float:
        """Seconds until this pair may try again (0 when it may try now)."""
        now = self._monotonic()
        with self._lock:
            pair = self._pairs.get(self._key(user, address))
            return 0.0 if pair is None else max(0.0, pair.retry_at - now)

    def failed(self, user: str, address: str) -> float:
        """Count a failure; returns the wait it imposes."""
        now = self._monotonic()
        key = self._key(user, address)
        with self._lock:
            pair = self._pairs.pop(key, None)
            if pair is None or self._forgotten(pair, now):
                pair = _Pair(0, now, now)
            pair.failures += 1
            pair.last = now
            pair.retry_at = now + self.delay_after(pair.failures)
            self._pairs[key] = pair  # newest last: the oldest go first when the table is full
            if len(self._pairs) > self.max_entries:
                self._prune(now)
            return pair.retry_at - now

    def succeeded(self, user: str, address: str) -> None:
        with self._lock:
            self._pairs.pop(self._key(user, address), None)

    def clear(self) -> None:
        """Forget every failure (an operator's reset; tests)."""
        with self._lock:
            self._pairs.clear()

    def __len__(self) -> int:
        return len(self._pairs)

    def _forgotten(self, pair: _Pair, now: float) -> bool:
        return now - max(pair.last, pair.retry_at) >= self.forget_after

    def _prune(self, now: float) -> None:
        for key in [k for k, p in self._pairs.items() if self._forgotten(p, now)]:
            del self._pairs[key]
        while len(self._pairs) > self.max_entries:
            self._pairs.popitem(last=False)
