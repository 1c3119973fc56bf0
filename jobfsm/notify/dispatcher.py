"""Delivery on threads of its own, so a slow or dead endpoint never delays a fire.

- **A bounded queue**: at most ``max_pending`` deliveries wait (retries included); one more is
  dropped and the drop is logged, once per overflow; the overflow ends when a waiting delivery
  leaves the queue, delivered or given up, and how many were dropped is logged then.
- **A timeout per attempt, retries with back-off**: a failed attempt is tried again after
  ``backoff``, twice that, ... up to ``attempts`` attempts. Retries wait in a time-ordered heap,
  not in a sleep: other deliveries go on meanwhile.
- **Every failed delivery is logged once**, after its last attempt, with the reason.
- **Timers** (:meth:`Dispatcher.after`) run a call on the same thread when due: the
  ``long_running`` check of a run waits here, not in the scheduler's loop.
- **A few delivery threads** (``workers``, 4 by default) take from one queue, so one endpoint
  that answers after seconds slows the others' notices only when it holds every thread.
The threads start with the first delivery or timer and sleep on a condition until the next
thing is due; nothing polls.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 1000
DEFAULT_WORKERS = 4
CLOSE_SECONDS = 5.0
"""At shutdown, deliveries still waiting get this long before they are given up (and logged)."""


class DeliveryError(Exception):
    """A delivery failed; the message is the reason, for the log."""


@dataclass(slots=True)
class Delivery:
    what: str
    """What and where, for the log: ``failure of job 'x' to https://hooks.example/x``."""
    send: Callable[[], None]
    """One attempt; raises :class:`DeliveryError` (or any exception) when it fails."""
    attempt: int = 0


class Dispatcher:
    def __init__(
        self,
        report: Callable[[str], None],
        *,
        attempts: int = 4,
        backoff_seconds: float = 2.0,
        max_pending: int = DEFAULT_MAX_PENDING,
        monotonic: Callable[[], float] = time.monotonic,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self._report = report
        """Where a failed delivery is told (the daemon's main log)."""
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds
        self.max_pending = max_pending
        self._monotonic = monotonic
        self._heap: list[tuple[float, int, Delivery | Callable[[], None]]] = []
        self._seq = itertools.count()
        self._pending = 0
        self._dropping = 0
        """Dropped since the queue last had room (the overflow going on)."""
        self._cond = threading.Condition()
        self._closing = False
        self._busy = 0
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        """Totals since start (``jobfsm_notifications_total``)."""
        self._workers = max(1, workers)
        self._threads: list[threading.Thread] = []
        """Started with the first delivery or timer: a daemon that notifies nobody runs none."""

    # -- any thread ---------------------------------------------------------------------------
    def submit(self, delivery: Delivery) -> bool:
        """Queue a delivery now; False (and logged) when the queue is full or closed."""
        with self._cond:
            if self._closing or self._pending >= self.max_pending:
                self._dropping += 1
                self.dropped += 1
                first = self._dropping == 1
            else:
                self._pending += 1
                self._push(self._monotonic(), delivery)
                return True
        if first:
            self._report(f"notification queue full ({self.max_pending} waiting): dropped {delivery.what}; "
                         "further drops are counted until it drains")
        return False

    def after(self, seconds: float, call: Callable[[], None]) -> None:
        """Run ``call`` on the delivery thread in ``seconds`` (skipped once closing)."""
        with self._cond:
            if not self._closing:
                self._push(self._monotonic() + seconds, call)

    def idle(self) -> bool:
        """Nothing waiting to be delivered and nothing being delivered (timers aside)."""
        with self._cond:
            return self._pending == 0 and self._busy == 0

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Stop taking work, deliver what waits for up to ``timeout`` seconds, give up the rest."""
        deadline = self._monotonic() + timeout
        with self._cond:
            self._closing = True
            self._heap = [item for item in self._heap if isinstance(item[2], Delivery)]
            heapq.heapify(self._heap)
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._monotonic()))
        with self._cond:
            left = self._pending
            self._heap.clear()
            self._pending = 0
            self._cond.notify_all()
        if left:
            self._report(f"stopping: {left} notification(s) not delivered")

    # -- the delivery thread ------------------------------------------------------------------
    def _push(self, due: float, item: Delivery | Callable[[], None]) -> None:
        """Under ``self._cond``."""
        if not self._threads:
            self._threads = [threading.Thread(target=self._loop, name=f"jobfsm-notify-{i}", daemon=True)
                             for i in range(self._workers)]
            for thread in self._threads:
                thread.start()
        heapq.heappush(self._heap, (due, next(self._seq), item))
        self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closing and not self._heap:
                        return
                    if self._heap:
                        wait = self._heap[0][0] - self._monotonic()
                        if wait <= 0 or (self._closing and self._pending == 0):
                            break
                    else:
                        wait = None
                    self._cond.wait(wait)
                if self._closing and self._pending == 0:
                    return
                _, _, item = heapq.heappop(self._heap)
                self._busy += 1
            try:
                if isinstance(item, Delivery):
                    self._attempt(item)
                else:
                    try:
                        item()
                    except Exception:  # a timer's bug must not end the thread
                        log.exception("notification timer failed")
            finally:
                with self._cond:
                    self._busy -= 1

    def _attempt(self, delivery: Delivery) -> None:
        try:
            delivery.send()
        except Exception as exc:
            reason = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            delivery.attempt += 1
            with self._cond:
                if delivery.attempt < self.attempts and not self._closing:
                    delay = self.backoff_seconds * 2 ** (delivery.attempt - 1)
                    self._push(self._monotonic() + delay, delivery)
                    return
                self.failed += 1
                dropped = self._left()
            self._report(f"notification failed: {delivery.what}, after {delivery.attempt} attempt(s): {reason}")
            self._drained(dropped)
            return
        with self._cond:
            self.delivered += 1
            dropped = self._left()
        self._drained(dropped)

    def _left(self) -> int:
        """Under ``self._cond``: a delivery left the queue (delivered or given up), so there is
        room again; the drops of the overflow that ends here."""
        self._pending -= 1
        dropped, self._dropping = self._dropping, 0
        return dropped

    def _drained(self, dropped: int) -> None:
        if dropped:
            self._report(f"notification queue drained; {dropped} notification(s) were dropped while it was full")
