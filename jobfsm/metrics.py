"""Prometheus metrics: a listener of the lifecycle's events, served at
``/metrics`` by ``jobfsm start --metrics HOST:PORT`` through the official ``prometheus_client``.

Counters and histograms are fed by the events as they happen; what is a state rather than an
event (jobs per state, live nodes, notifications delivered) is read when Prometheus scrapes,
so it is right however the daemon started. Each daemon has its own registry (no globals).
Metric names and example alerts: docs/operations.md.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobfsm.clock import Clock
from jobfsm.lifecycle.events import Event, RunFinished, RunLost, RunSkipped, RunStarted
from jobfsm.model import JobState, RunStatus, Trigger
from jobfsm.notify.misses import miss_of
from jobfsm.store.abc import Heartbeat

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
        self.runs = Counter("jobfsm_runs", "Runs that ended or fires skipped, by job and status",
                            ["job", "status"], registry=r)
        self.duration = Histogram("jobfsm_run_duration_seconds", "How long runs took, by job", ["job"],
                                  buckets=DURATION_BUCKETS, registry=r)
        self.lateness = Histogram("jobfsm_fire_lateness_seconds",
                                  "From a scheduled fire's time to its run's start",
                                  buckets=LATENESS_BUCKETS, registry=r)
        self.missed = Counter("jobfsm_missed_fires", "Fires that should have run and did not, by job",
                              ["job"], registry=r)
        self.last_success = Gauge("jobfsm_last_success_timestamp_seconds",
                                  "When the job's last successful run ended (since this daemon started)",
                                  ["job"], registry=r)
        self.last_failure = Gauge("jobfsm_last_failure_timestamp_seconds",
                                  "When the job's last failed run ended (since this daemon started)",
                                  ["job"], registry=r)
        r.register(_Live(states, nodes, notifications, clock))

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            result = event.result
            self.runs.labels(result.job_name, result.status.run_status.value).inc()
            self.duration.labels(result.job_name).observe(max(result.duration_seconds, 0.0))
            stamp = result.end_time.timestamp()
            (self.last_success if result.success else self.last_failure).labels(result.job_name).set(stamp)
        elif isinstance(event, RunStarted):
            if event.trigger is Trigger.SCHEDULE and event.scheduled_for is not None:
                self.lateness.observe(max((self.clock.now() - event.scheduled_for).total_seconds(), 0.0))
        elif isinstance(event, RunSkipped):
            miss = miss_of(event.reason, event.trigger)
            if miss is not None:  # waiting starts (overlap: queue) and pauses are not counted
                self.runs.labels(event.job, RunStatus.SKIPPED.value).inc()
                self.missed.labels(event.job).inc(miss.count or 1)
        elif isinstance(event, RunLost):
            self.runs.labels(event.run.job, RunStatus.LOST.value).inc()

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` on a thread; returns the server (``shutdown()`` stops it)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


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
