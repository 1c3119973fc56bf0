"""Prometheus metrics: a listener of the lifecycle's events, served at
``/metrics`` by ``jobfsm start --metrics HOST:PORT`` through the official ``prometheus_client``.

Counters and histograms are fed by the events as they happen; what is a state rather than an
event (jobs per state, live nodes, notifications delivered) is read when Prometheus scrapes,
so it is right however the daemon started. Each daemon has its own registry (no globals).
Metric names and example alerts: docs/operations.md.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from jobfsm.clock import Clock
from jobfsm.lifecycle.events import Event, RunFinished, RunLost, RunSkipped, RunStarted
from jobfsm.model import JobState, RunStatus, Trigger
from jobfsm.notify.misses import miss_of
from jobfsm.store.abc import Heartbeat

if TYPE_CHECKING:
    from jobfsm.runs.executor import JobResult

DURATION_BUCKETS = (1, 10, 60, 300, 1800, 3600, 14400, 86400)
"""Few buckets: the histogram is per job, and with 10,000 jobs each bucket is 10,000 lines a scrape."""
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class MetricsAddressError(ValueError):
    """``--metrics`` is not ``HOST:PORT``."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9108`` for IPv6; ``:9108`` for every address)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise MetricsAddressError(f"--metrics {text!r} is not HOST:PORT; use e.g. 127.0.0.1:9108")
    host = host.strip("[]") or "0.0.0.0"  # ":PORT": every address
    return host, int(port)


class Metrics:
    def __init__(
        self,
        *,
        clock: Clock,
        registry: CollectorRegistry | None = None,
        states: Callable[[], Iterable[JobState]] | None = None,
        nodes: Callable[[], list[Heartbeat]] | None = None,
        notifications: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        # No ``*_created`` series: a third more lines per job, and nothing in docs/operations.md uses
        # them (a process-wide switch of prometheus_client; the daemon has one registry).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.clock = clock
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.jobs = _PerJob(DURATION_BUCKETS)
        r.register(self.jobs)
        self.lateness = Histogram("jobfsm_fire_lateness_seconds",
                                  "From a scheduled fire's time to its run's start",
                                  buckets=LATENESS_BUCKETS, registry=r)
        r.register(_Live(states, nodes, notifications, clock))

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.jobs.finished(event.result)
        elif isinstance(event, RunStarted):
            if event.trigger is Trigger.SCHEDULE and event.scheduled_for is not None:
                self.lateness.observe(max((self.clock.now() - event.scheduled_for).total_seconds(), 0.0))
        elif isinstance(event, RunSkipped):
            miss = miss_of(event.reason, event.trigger)
            if miss is not None:  # waiting starts (overlap: queue) and pauses are not counted
                self.jobs.missed(event.job, miss.count or 1)
        elif isinstance(event, RunLost):
            self.jobs.counted(event.run.job, RunStatus.LOST.value)

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` on a thread; returns the server (``shutdown()`` stops it)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


class _Series:
    """One job's numbers; no series of a kind until the job has one (as with labelled metrics)."""

    __slots__ = ("buckets", "duration_sum", "last_failure", "last_success", "missed", "runs")

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}
        """Runs that ended, and missed fires, by status."""
        self.buckets: list[int] | None = None
        """Durations per bucket, not cumulative (the last one above every bound)."""
        self.duration_sum = 0.0
        self.missed = 0
        self.last_success: float | None = None
        self.last_failure: float | None = None


class _PerJob(Collector):
    """The per-job series (``jobfsm_runs_total``, ``jobfsm_run_duration_seconds``,
    ``jobfsm_missed_fires_total``, ``jobfsm_last_{success,failure}_timestamp_seconds``): plain
    numbers in one small record per job, turned into metric families in one pass at a scrape.

    What it buys: prometheus_client's labelled metrics keep an object per series with a lock per
    value, and at a scrape read each back and copy its labels sample by sample; with thousands of
    jobs that is a large share of a scrape (docs/benchmarks.md). Events come from the loop's thread alone;
    the lock guards adding a job against the scrape's copy of the list. A scrape that reads a
    record while an event updates it may see that event half applied (a run counted, its
    duration not yet), as prometheus_client's separate values allow too; never a torn number.
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(bounds)
        self._les = [floatToGoString(b) for b in (*self._bounds, float("inf"))]  # type: ignore[no-untyped-call]
        self._jobs: dict[str, _Series] = {}
        self._lock = threading.Lock()

    def _of(self, job: str) -> _Series:
        series = self._jobs.get(job)
        if series is None:
            with self._lock:
                series = self._jobs.setdefault(job, _Series())
        return series

    def finished(self, result: JobResult) -> None:
        series = self.counted(result.job_name, result.status.run_status.value)
        duration = max(result.duration_seconds, 0.0)
        if series.buckets is None:
            series.buckets = [0] * (len(self._bounds) + 1)
        series.buckets[bisect.bisect_left(self._bounds, duration)] += 1  # le: a bound counts its equal
        series.duration_sum += duration
        if result.success:
            series.last_success = result.end_time.timestamp()
        else:
            series.last_failure = result.end_time.timestamp()

    def missed(self, job: str, fires: int) -> None:
        self.counted(job, RunStatus.SKIPPED.value).missed += fires

    def counted(self, job: str, status: str) -> _Series:
        """One more run of ``job`` with ``status``; the job's record."""
        series = self._of(job)
        series.runs[status] = series.runs.get(status, 0) + 1
        return series

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            jobs = list(self._jobs.items())
        runs = CounterMetricFamily("jobfsm_runs", "Runs that ended or fires skipped, by job and status",
                                   labels=["job", "status"])
        duration = HistogramMetricFamily("jobfsm_run_duration_seconds", "How long runs took, by job",
                                         labels=["job"])
        missed = CounterMetricFamily("jobfsm_missed_fires", "Fires that should have run and did not, by job",
                                     labels=["job"])
        success = GaugeMetricFamily("jobfsm_last_success_timestamp_seconds",
                                    "When the job's last successful run ended (since this daemon started)",
                                    labels=["job"])
        failure = GaugeMetricFamily("jobfsm_last_failure_timestamp_seconds",
                                    "When the job's last failed run ended (since this daemon started)",
                                    labels=["job"])
        les = self._les
        for job, series in jobs:
            for status, count in list(series.runs.items()):
                runs.add_metric([job, status], count)
            buckets = series.buckets
            if buckets is not None:
                cumulative = list(itertools.accumulate(buckets))
                duration.add_metric([job], list(zip(les, cumulative, strict=True)), series.duration_sum)
            if series.missed:
                missed.add_metric([job], series.missed)
            if series.last_success is not None:
                success.add_metric([job], series.last_success)
            if series.last_failure is not None:
                failure.add_metric([job], series.last_failure)
        yield from (runs, duration, missed, success, failure)


class _Live(Collector):
    """What is read at scrape time: jobs per state, live nodes, notifications."""

    def __init__(self, states: Callable[[], Iterable[JobState]] | None,
                 nodes: Callable[[], list[Heartbeat]] | None,
                 notifications: Callable[[], Mapping[str, int]] | None, clock: Clock) -> None:
        self._states, self._nodes, self._notifications, self._clock = states, nodes, notifications, clock

    def collect(self) -> Iterator[Metric]:
        if self._states is not None:
            jobs = GaugeMetricFamily("jobfsm_jobs", "Jobs by lifecycle state", labels=["state"])
            tally = Tally(state.value for state in _snapshot(self._states))
            for state in JobState:
                jobs.add_metric([state.value], tally.get(state.value, 0))
            yield jobs
        if self._nodes is not None:
            up = GaugeMetricFamily("jobfsm_nodes_live", "Daemons whose heartbeat is recent (this one included)")
            seen = GaugeMetricFamily("jobfsm_node_last_heartbeat_timestamp_seconds",
                                     "When each live daemon last heartbeated", labels=["node"])
            try:
                nodes = self._nodes()
            except Exception:  # the store is failing: say nothing rather than zero
                nodes = None
            if nodes is not None:
                up.add_metric([], len(nodes))
                for beat in nodes:
                    seen.add_metric([beat.node], _stamp(beat.last_seen))
                yield up
                yield seen
        if self._notifications is not None:
            # A counter (``jobfsm_notifications_total``): the dispatcher's totals only grow.
            sent = CounterMetricFamily("jobfsm_notifications", "Notifications since start, by result",
                                       labels=["result"])
            for result, count in self._notifications().items():
                sent.add_metric([result], count)
            yield sent


def _snapshot(states: Callable[[], Iterable[JobState]]) -> list[JobState]:
    for _ in range(3):  # the loop may add or remove a job while we look
        try:
            return list(states())
        except RuntimeError:
            continue
    return []


def _stamp(dt: datetime) -> float:
    return dt.timestamp()
