# ruff: noqa: F811 - start_daemon is a fixture imported from tests.test_daemon
"""Notifications end to end: a real local HTTP server receives the webhooks, a real local SMTP
server the mail; the daemon runs in-process (real clock, real processes, a real SQLite file),
or the scheduler under an injected clock (tests/scheduler_support.py) for downtime and overlap."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest

from jobfsm.cli import run as cli
from jobfsm.clock import SystemClock
from jobfsm.daemon.operations import OperationsOptions
from jobfsm.model import JobState, Outcome, RunStatus, Trigger
from jobfsm.notify.notice import SIGNATURE_HEADER
from jobfsm.notify.settings import NotifySettings, SmtpServer
from jobfsm.store import Claim
from jobfsm.store.sql import SqlStore
from tests.conftest import wait_for
from tests.notify_support import hooks, refusing_url, self_signed, silent_url, smtp_server
from tests.scheduler_support import MINUTE, Rig
from tests.test_daemon import start_daemon, trigger, write  # noqa: F401 - the fixture

FAST = {"backoff_seconds": 0.05, "timeout_seconds": 2.0}


def options(**kwargs: object) -> OperationsOptions:
    return OperationsOptions(notify=NotifySettings(**{**FAST, **kwargs}))  # type: ignore[arg-type]


def history_json(tmp_path: Path, jobs_dir: Path, name: str) -> list[dict]:
    out, err = StringIO(), StringIO()
    code = cli(["history", name, "--format", "json", "--jobs", str(jobs_dir), "--logs", str(tmp_path / "logs"),
                "--store", f"sqlite:///{tmp_path / 'store.db'}"], out, err)
    assert code == 0, err.getvalue()
    result: list[dict] = json.loads(out.getvalue())
    return result


def test_a_failing_streak_posts_one_signed_failure_then_one_recovery(start_daemon, jobs_dir: Path, tmp_path: Path) -> None:
    with hooks() as server:
        secret = b"s3cret"
        running = start_daemon(operations=options(webhook=server.url, secret=secret))
        write(jobs_dir, "flaky", schedule="0 0 1 1 *", command="echo doing; echo broke >&2; exit 3")
        wait_for(lambda: "flaky" in running.daemon.scheduler.jobs, 5, "the job to load")
        first = trigger(running.store, "flaky")
        wait_for(lambda: server.received, 10, "the failure webhook")
        second = trigger(running.store, "flaky")
        wait_for(lambda: running.store.get_run(second).status is RunStatus.FAILED, 10, "the second failure")
        write(jobs_dir, "flaky", schedule="0 0 1 1 *", command="true")
        wait_for(lambda: running.daemon.scheduler.jobs["flaky"].config.command == "true", 5, "the fix to load")
        fixed = trigger(running.store, "flaky")
        wait_for(lambda: len(server.received) >= 2, 10, "the recovery webhook")
        time.sleep(0.3)
        assert server.events() == [("failure", "flaky"), ("recovery", "flaky")]  # not one per failure
        hook = server.received[0]
        body = hook.json
        assert set(body) == {"event", "job", "at", "message", "node", "run"}
        assert body["node"] == running.daemon.node
        assert "exit 3" in body["message"] and "broke" in body["message"] and str(first) in body["message"]
        history = {r["id"]: r for r in history_json(tmp_path, jobs_dir, "flaky")}
        assert body["run"] == history[first]  # the run exactly as `history --format json` prints it
        assert server.received[1].json["run"] == history[fixed]
        expected = "sha256=" + hmac.new(secret, hook.body, hashlib.sha256).hexdigest()
        assert hook.headers[SIGNATURE_HEADER] == expected
        running.stop()


def test_a_lost_run_is_told_once_naming_it_and_joins_the_failing_streak(start_daemon, jobs_dir: Path,
                                                                        tmp_path: Path) -> None:
    """A daemon of this host killed mid-run leaves its run ``running``; the next daemon's start-up
    finds its process gone, marks the run lost and tells ``lost`` once; the job's next success
    ends that streak with ``recovery`` (and no ``failure`` is told in between)."""
    write(jobs_dir, "victim", schedule="0 0 1 1 *", command="true")
    now = SystemClock().now()
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    killed = f"{socket.gethostname()}:999999999"  # above any pid_max: a process that is gone
    orphan = store.claim_run(Claim("victim", trigger=Trigger.SCHEDULE, node=killed, started_at=now, scheduled_for=now))
    assert orphan is not None
    store.set_state("victim", JobState.RUNNING, now)
    store.close()
    with hooks() as server:
        running = start_daemon(operations=options(webhook=server.url))
        wait_for(lambda: server.received, 10, "the lost notice", lambda: f"got {server.events()}")
        assert running.store.get_run(orphan.id).status is RunStatus.LOST
        fixed = trigger(running.store, "victim")
        wait_for(lambda: len(server.received) >= 2, 10, "the recovery notice", lambda: f"got {server.events()}")
        assert running.stop() == 0  # delivers whatever still waits: nothing more may come
    assert server.events() == [("lost", "victim"), ("recovery", "victim")]
    lost = server.received[0].json
    assert f"run {orphan.id} was lost" in lost["message"] and killed in lost["message"], lost["message"]
    assert lost["run"]["id"] == orphan.id and lost["run"]["status"] == "lost"
    assert lost["node"] == running.daemon.node
    recovery = server.received[1].json
    assert recovery["run"]["id"] == fixed and recovery["run"]["status"] == "succeeded"


def test_a_500_is_retried_with_back_off_until_it_is_taken(start_daemon, jobs_dir: Path) -> None:
    with hooks(plan=[500, 503]) as server:
        running = start_daemon(operations=options(webhook=server.url))
        write(jobs_dir, "bad", schedule="0 0 1 1 *", command="exit 1")
        wait_for(lambda: "bad" in running.daemon.scheduler.jobs, 5, "the job to load")
        trigger(running.store, "bad")
        wait_for(lambda: server.received, 10, "the webhook after two refusals")
        assert server.attempts == 3 and server.events() == [("failure", "bad")]
        assert SIGNATURE_HEADER not in server.received[0].headers  # no secret, no signature
        running.stop()
        assert "notification failed" not in (running.daemon.logs_dir / "scheduler_main.log").read_text()


def test_a_delivery_that_never_succeeds_is_logged_once_with_the_reason(start_daemon, jobs_dir: Path) -> None:
    url = refusing_url()
    running = start_daemon(operations=options(webhook=url, attempts=3))
    write(jobs_dir, "bad", schedule="0 0 1 1 *", command="exit 1")
    wait_for(lambda: "bad" in running.daemon.scheduler.jobs, 5, "the job to load")
    trigger(running.store, "bad")
    log = running.daemon.logs_dir / "scheduler_main.log"
    wait_for(lambda: "notification failed" in log.read_text(), 10, "the failed delivery to be logged")
    running.stop()
    lines = [line for line in log.read_text().splitlines() if "notification failed" in line]
    assert len(lines) == 1, lines
    assert "failure of job 'bad'" in lines[0] and url in lines[0] and "after 3 attempt(s)" in lines[0]
    assert "refused" in lines[0].lower()


@pytest.mark.parametrize("endpoint", ["refusing", "silent"])
def test_a_dead_endpoint_never_delays_the_next_fire(tmp_path: Path, endpoint: str) -> None:
    with silent_url() as silent:
        url = refusing_url() if endpoint == "refusing" else silent
        rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 20,
                  operations=options(webhook=url, timeout_seconds=5.0))
        try:
            rig.at(MINUTE)
            rig.runner.finish(rig.runner.tickets, rig.clock.now(), outcome=Outcome.FAILED)
            started = time.monotonic()
            rig.scheduler.apply_results()  # records 20 failures: 20 notices to the dead endpoint
            rig.at(MINUTE + timedelta(minutes=1))  # and the next fires start
            took = time.monotonic() - started
            assert len(rig.runner.tickets) == 40
            assert rig.ops is not None and not rig.ops.dispatcher.idle()  # still trying to deliver
            assert took < 1.0, f"the fire waited {took:.2f} s for notifications"
        finally:
            rig.ops.dispatcher.close(0) if rig.ops else None
            rig.close()


def test_mail_names_job_and_event_and_carries_the_output_tail(start_daemon, jobs_dir: Path) -> None:
    with smtp_server() as (url, mailbox):
        running = start_daemon(operations=options(email=("ops@example.com", "dev@example.com"),
                                                  smtp=SmtpServer.parse(url)))
        write(jobs_dir, "noisy", schedule="0 0 1 1 *", command="for i in $(seq 1 30); do echo line$i; done; exit 2")
        wait_for(lambda: "noisy" in running.daemon.scheduler.jobs, 5, "the job to load")
        run_id = trigger(running.store, "noisy")
        wait_for(lambda: mailbox.messages, 15, "the mail")
        running.stop()
        to, message = mailbox.messages[0]
        assert sorted(to) == ["dev@example.com", "ops@example.com"]
        assert message["Subject"] == "[jobfsm] noisy: failure"
        text = message.get_payload(decode=True).decode()
        assert "exit 2" in text and f"run id: {run_id}" in text
        assert "line30" in text and "line11" in text and "line10\n" not in text  # the last 20 lines


def test_mail_goes_over_starttls_with_the_urls_login(start_daemon, jobs_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client verifies the server: trust this one
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with smtp_server(tls_context=context, login=("jobs", "p@ss word")) as (url, mailbox):
        smtp = SmtpServer.parse(url.replace("smtp://", "smtp://jobs:p%40ss%20word@"))
        running = start_daemon(operations=options(email=("ops@example.com",), smtp=smtp))
        write(jobs_dir, "bad", schedule="0 0 1 1 *", command="exit 1")
        wait_for(lambda: "bad" in running.daemon.scheduler.jobs, 5, "the job to load")
        trigger(running.store, "bad")
        wait_for(lambda: mailbox.messages, 15, "the mail")
        running.stop()
    assert mailbox.tls == [True] and mailbox.logins == ["jobs"]
    assert mailbox.messages[0][1]["Subject"] == "[jobfsm] bad: failure"


def test_after_downtime_each_job_is_told_once_how_many_fires_it_missed_and_when(tmp_path: Path) -> None:
    with hooks() as default, hooks() as own:
        rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 3, operations=options(webhook=default.url))
        try:
            rig.at(MINUTE)
            rig.runner.finish(rig.runner.tickets, rig.clock.now())
            rig.scheduler.apply_results()
            doc = json.loads((rig.jobs_dir / "job-001.json").read_text())
            (rig.jobs_dir / "job-001.json").write_text(json.dumps({**doc, "notify": {"on": []}}))
            (rig.jobs_dir / "job-002.json").write_text(json.dumps({**doc, "name": "job-002",
                                                                   "notify": {"webhook": own.url}}))
            rig.clock.set(MINUTE + timedelta(minutes=10, seconds=30))  # down for ten minutes
            rig.restart()
            wait_for(lambda: default.received and own.received, 10, "the missed notices")
            for minute in (11, 12):  # the next fires run: nothing more to tell
                held = len(rig.runner.tickets)
                rig.at(MINUTE + timedelta(minutes=minute))
                rig.runner.finish(rig.runner.tickets[held:], rig.clock.now())
                rig.scheduler.apply_results()
            assert rig.ops is not None
            wait_for(rig.ops.dispatcher.idle, 10, "the deliveries to end")
            assert default.events() == [("missed", "job-000")]  # job-001 is silenced
            assert own.events() == [("missed", "job-002")]  # its own webhook overrides the daemon's
            body = default.received[0].json
            assert "10 fire(s) from 2026-01-01T00:02:00+00:00 to 2026-01-01T00:11:00+00:00" in body["message"]
            assert body["run"]["status"] == "skipped" and body["run"]["job"] == "job-000"
        finally:
            rig.close()


def test_overlap_skips_are_told_once_per_streak(tmp_path: Path) -> None:
    with hooks() as server:
        rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 1, operations=options(webhook=server.url))
        try:
            rig.at(MINUTE)  # held: still running at the next fires
            for minute in (1, 2, 3):
                rig.at(MINUTE + timedelta(minutes=minute))
            rig.runner.finish(rig.runner.tickets, rig.clock.now())
            rig.scheduler.apply_results()
            rig.at(MINUTE + timedelta(minutes=4))  # runs: the streak ends
            rig.at(MINUTE + timedelta(minutes=5))  # held again: a new streak
            assert rig.ops is not None
            wait_for(lambda: len(server.received) >= 2, 10, "two missed notices")
            wait_for(rig.ops.dispatcher.idle, 10, "the deliveries to end")
            assert server.events() == [("missed", "job-000"), ("missed", "job-000")]
            assert "overlap: skip" in server.received[0].json["message"]
        finally:
            rig.close()


def test_a_run_past_long_running_seconds_is_told_once_while_it_runs(start_daemon, jobs_dir: Path) -> None:
    with hooks() as server:
        running = start_daemon(operations=options(webhook=server.url))
        notify = {"on": ["long_running", "failure"], "long_running_seconds": 1}
        write(jobs_dir, "slow", schedule="0 0 1 1 *", command="sleep 2.5", notify=notify)
        write(jobs_dir, "quick", schedule="0 0 1 1 *", command="true", notify=notify)
        wait_for(lambda: {"slow", "quick"} <= set(running.daemon.scheduler.jobs), 5, "the jobs to load")
        slow = trigger(running.store, "slow")
        trigger(running.store, "quick")
        wait_for(lambda: server.received, 5, "the long_running notice")
        assert running.store.get_run(slow).status is RunStatus.RUNNING  # told while it runs
        wait_for(lambda: running.store.get_state("slow") is JobState.SUCCEEDED, 10, "the slow run to end")
        running.stop()
        assert server.events() == [("long_running", "slow")]
        assert "after 1 s" in server.received[0].json["message"]


@pytest.mark.parametrize(("args", "said"), [
    (["--smtp", "ftp://mail"], "--smtp 'ftp://mail' is not an SMTP URL"),
    (["--notify-webhook", "hooks.example"], "--notify-webhook 'hooks.example' is not an http(s) URL"),
    (["--notify-email", "ops"], "--notify-email 'ops' is not an e-mail address"),
    (["--metrics", "localhost"], "--metrics 'localhost' is not HOST:PORT"),
], ids=["smtp", "webhook", "email", "metrics"])
def test_a_bad_option_is_one_line_and_exit_2(tmp_path: Path, args: list[str], said: str) -> None:
    out, err = StringIO(), StringIO()
    code = cli(["start", "--jobs", str(tmp_path), "--logs", str(tmp_path / "logs"), *args], out, err)
    assert code == 2
    assert err.getvalue().count("\n") == 1 and said in err.getvalue(), err.getvalue()


def test_a_slow_endpoint_does_not_hold_up_another_ones_notices() -> None:
    from datetime import UTC, datetime

    from jobfsm.model import NotifyEvent
    from jobfsm.notify import webhook
    from jobfsm.notify.dispatcher import Delivery, Dispatcher
    from jobfsm.notify.notice import Notice

    reports: list[str] = []
    dispatcher = Dispatcher(reports.append, attempts=1)
    notice = Notice(NotifyEvent.FAILURE, "a", datetime.now(UTC), "job 'a' failed", "here:1")
    try:
        with hooks(delay=3.0) as slow, hooks() as fast:
            for _ in range(3):
                dispatcher.submit(Delivery("to slow", lambda: webhook.post(slow.url, notice, secret=None, timeout=10)))
            started = time.monotonic()
            dispatcher.submit(Delivery("to fast", lambda: webhook.post(fast.url, notice, secret=None, timeout=10)))
            wait_for(lambda: fast.received, 10, "the fast endpoint's notice")
            assert fast.received[0].at - started < 2.0  # not behind the three slow ones (9 s in a row)
            wait_for(dispatcher.idle, 15, "the slow deliveries")
            assert len(slow.received) == 3 and reports == []
    finally:
        dispatcher.close()


@pytest.mark.parametrize("status", [200, 500], ids=["taken", "refused"])
def test_a_full_queue_logs_its_drops_once_and_how_many_once_there_is_room(status: int) -> None:
    """At most ``max_pending`` deliveries wait; the first one dropped beyond that is logged, the
    others only counted, and when a waiting delivery leaves the queue (taken, or refused and given
    up) the count is logged; the next overflow is logged again. The endpoint is real and as slow
    as the test needs: it answers once the gate opens."""
    from datetime import UTC, datetime

    from jobfsm.model import NotifyEvent
    from jobfsm.notify import webhook
    from jobfsm.notify.dispatcher import Delivery, Dispatcher
    from jobfsm.notify.notice import Notice

    reports: list[str] = []
    dispatcher = Dispatcher(reports.append, attempts=1, max_pending=2, workers=1)
    notice = Notice(NotifyEvent.FAILURE, "a", datetime.now(UTC), "job 'a' failed", "here:1")
    gate = threading.Event()

    def queue_lines() -> list[str]:
        return [r for r in reports if "notification queue" in r]

    try:
        with hooks(plan=[status] * 10, gate=gate) as slow:
            def submit(i: int) -> bool:
                return dispatcher.submit(Delivery(f"notice {i} to slow",
                                                  lambda: webhook.post(slow.url, notice, secret=None, timeout=10)))

            assert [submit(i) for i in range(5)] == [True, True, False, False, False]
            full = ("notification queue full (2 waiting): dropped notice {}; "
                    "further drops are counted until it drains")
            assert queue_lines() == [full.format("2 to slow")]  # once, not once per drop
            gate.set()
            wait_for(dispatcher.idle, 10, "the two waiting deliveries", lambda: f"reports {reports}")
            drained = "notification queue drained; {} notification(s) were dropped while it was full"
            assert queue_lines() == [full.format("2 to slow"), drained.format(3)]

            gate.clear()  # a second overflow
            assert [submit(i) for i in range(5, 8)] == [True, True, False]
            gate.set()
            wait_for(dispatcher.idle, 10, "the next two deliveries", lambda: f"reports {reports}")
            assert queue_lines() == [full.format("2 to slow"), drained.format(3),
                                     full.format("7 to slow"), drained.format(1)]
            assert slow.attempts == 4
            given_up = [r for r in reports if r.startswith("notification failed")]
            assert len(given_up) == (4 if status == 500 else 0)
            assert (dispatcher.delivered, dispatcher.failed, dispatcher.dropped) == (
                (4, 0, 4) if status == 200 else (0, 4, 4))
    finally:
        dispatcher.close()
