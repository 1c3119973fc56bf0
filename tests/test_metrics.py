"""Metrics: known runs under the injected clock, then /metrics scraped over real HTTP and read
with prometheus_client's own text parser."""

from __future__ import annotations

import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobfsm.daemon.operations import OperationsOptions
from jobfsm.metrics import parse_address
from jobfsm.model import Outcome
from jobfsm.notify.settings import NotifySettings
from tests.conftest import wait_for
from tests.notify_support import hooks
from tests.scheduler_support import MINUTE, Rig


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert types["jobfsm_notifications"] == "counter", types  # exposed as jobfsm_notifications_total
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_after_known_runs(tmp_path: Path) -> None:
    with hooks(plan=[500]) as server:  # one of the two notices is refused (no retry), one taken
        _metrics_after_known_runs(tmp_path, server.url)


def _metrics_after_known_runs(tmp_path: Path, webhook: str) -> None:
    notify = NotifySettings(webhook=webhook, attempts=1, timeout_seconds=5.0)
    rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 2,
              operations=OperationsOptions(metrics=("127.0.0.1", 0), notify=notify))
    try:
        assert rig.ops is not None and rig.ops.metrics_port
        rig.clock.set(MINUTE + timedelta(seconds=2))  # two seconds late
        rig.scheduler.dispatch_due()
        ok, bad = rig.runner.tickets
        rig.runner.finish([ok], rig.clock.now())
        rig.runner.finish([bad], rig.clock.now(), outcome=Outcome.TIMED_OUT)
        rig.scheduler.apply_results()
        rig.at(MINUTE + timedelta(minutes=1))  # both run again; job-001's is held
        rig.runner.finish([rig.runner.tickets[2]], rig.clock.now())
        rig.scheduler.apply_results()
        rig.at(MINUTE + timedelta(minutes=2))  # job-000 runs, job-001's fire is skipped (overlap)
        rig.scheduler.heartbeat()
        # job-001 told two things: its failure (a timeout), then its skipped fire (missed)
        wait_for(lambda: rig.ops is not None and rig.ops.dispatcher.idle(), 10, "the two notices")
        m = scrape(rig.ops.metrics_port)

        def job(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
            return tuple(sorted({"job": name, **labels}.items()))

        assert m["jobfsm_runs_total", job("job-000", status="succeeded")] == 2
        assert m["jobfsm_runs_total", job("job-001", status="failed")] == 1
        assert m["jobfsm_runs_total", job("job-001", status="skipped")] == 1
        assert m["jobfsm_missed_fires_total", job("job-001")] == 1
        assert ("jobfsm_missed_fires_total", job("job-000")) not in m
        assert m["jobfsm_run_duration_seconds_count", job("job-000")] == 2
        assert m["jobfsm_run_duration_seconds_sum", job("job-000")] == 1.0  # 0.5 s each
        assert m["jobfsm_fire_lateness_seconds_count", ()] == 5
        assert m["jobfsm_fire_lateness_seconds_bucket", (("le", "1.0"),)] == 3  # the first two were 2 s late
        assert m["jobfsm_last_success_timestamp_seconds", job("job-000")] == (MINUTE + timedelta(minutes=1)).timestamp()
        assert ("jobfsm_last_success_timestamp_seconds", job("job-001")) not in m
        assert m["jobfsm_last_failure_timestamp_seconds", job("job-001")] == (MINUTE + timedelta(seconds=2)).timestamp()
        assert ("jobfsm_last_failure_timestamp_seconds", job("job-000")) not in m
        assert m["jobfsm_notifications_total", (("result", "delivered"),)] == 1
        assert m["jobfsm_notifications_total", (("result", "failed"),)] == 1
        assert m["jobfsm_notifications_total", (("result", "dropped"),)] == 0
        assert m["jobfsm_jobs", (("state", "running"),)] == 2
        assert m["jobfsm_jobs", (("state", "failed"),)] == 0
        assert m["jobfsm_nodes_live", ()] == 1
        assert m["jobfsm_node_last_heartbeat_timestamp_seconds", (("node", "here:1"),)] == rig.clock.now().timestamp()
    finally:
        rig.close()


@pytest.mark.parametrize(("text", "address"), [
    ("127.0.0.1:9108", ("127.0.0.1", 9108)), (":9108", ("0.0.0.0", 9108)), ("[::1]:9108", ("::1", 9108)),
], ids=["ipv4", "every-address", "ipv6"])
def test_metrics_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


def test_a_daemon_without_metrics_or_notifications_loads_neither() -> None:
    """prometheus_client, and the mail and HTTP clients of notifications, cost a daemon a few
    MB it does not need unless it is asked for ``--metrics`` or has someone to notify."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from jobfsm.cli.parser import build_parser\n"
        "from jobfsm.cli.daemon import _operations\n"
        "_operations(build_parser().parse_args(['start']))\n"
        "import jobfsm.daemon.process, jobfsm.daemon.operations, jobfsm.notify.notifier\n"
        "print(sorted(m for m in ('prometheus_client', 'smtplib', 'urllib.request') if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd="/")
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr


def test_the_per_job_series_read_as_prometheus_clients_own_metrics_would() -> None:
    """The per-job series are kept as plain numbers and built into families at a scrape; the
    page must say what prometheus_client's labelled Counter, Histogram and Gauge, fed the same
    events, say (durations on a bucket's bound, above every bound, lost runs, missed fires)."""
    from datetime import UTC, datetime

    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    from jobfsm.clock import SystemClock
    from jobfsm.lifecycle.events import RunFinished, RunLost, RunSkipped
    from jobfsm.metrics import DURATION_BUCKETS, Metrics
    from jobfsm.model import RunStatus, Trigger
    from jobfsm.runs.executor import JobResult
    from jobfsm.store.abc import RunRecord

    end = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    runs = [("a", Outcome.SUCCEEDED, 1.0), ("a", Outcome.FAILED, 10.0), ("a", Outcome.TIMED_OUT, 90000.0),
            ("b", Outcome.SUCCEEDED, 0.0), ("b", Outcome.SUCCEEDED, 59.5), ("c", Outcome.KILLED, 3600.0)]
    metrics = Metrics(clock=SystemClock())
    reference = CollectorRegistry()
    counted = Counter("jobfsm_runs", "", ["job", "status"], registry=reference)
    duration = Histogram("jobfsm_run_duration_seconds", "", ["job"], buckets=DURATION_BUCKETS, registry=reference)
    missed = Counter("jobfsm_missed_fires", "", ["job"], registry=reference)
    success = Gauge("jobfsm_last_success_timestamp_seconds", "", ["job"], registry=reference)
    failure = Gauge("jobfsm_last_failure_timestamp_seconds", "", ["job"], registry=reference)
    for i, (job, outcome, seconds) in enumerate(runs):
        result = JobResult(job, i, end, end + timedelta(seconds=i), 0, "", "", seconds, outcome, None, "", None, None)
        metrics.on_event(RunFinished(result, Trigger.SCHEDULE))
        counted.labels(job, outcome.run_status.value).inc()
        duration.labels(job).observe(seconds)
        (success if outcome is Outcome.SUCCEEDED else failure).labels(job).set(result.end_time.timestamp())
    metrics.on_event(RunSkipped("d", 9, "missed while the daemon was down: 3 fire(s) from "
                                "2026-01-01T00:01:00+00:00 to 2026-01-01T00:03:00+00:00", Trigger.SCHEDULE))
    counted.labels("d", "skipped").inc()
    missed.labels("d").inc(3)
    metrics.on_event(RunLost(RunRecord(10, "c", RunStatus.LOST, Trigger.SCHEDULE, "gone:1"), "gone:1"))
    counted.labels("c", "lost").inc()

    def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text.decode()) if family.name != "jobfsm_fire_lateness_seconds"
                for s in family.samples}

    ours, theirs = samples(generate_latest(metrics.registry)), samples(generate_latest(reference))
    assert ours == theirs
    assert ours["jobfsm_missed_fires_total", (("job", "d"),)] == 3
    assert ours["jobfsm_run_duration_seconds_bucket", (("job", "a"), ("le", "1.0"))] == 1  # a bound counts its equal
