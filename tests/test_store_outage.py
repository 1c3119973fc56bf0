"""The daemon rides out a failing store: a real SQLite file locked by another process, a real
PostgreSQL whose connections are killed mid-burst, a real full disk (a small tmpfs). Nothing is
lost: every fire either runs once or is recorded as skipped with the reason; every result of a
run that ended meanwhile is recorded when the store is back.

The scheduler runs in-process here with a fake clock and a runner that keeps runs going until
the test ends them (the faults are real, only time and the processes are not); the end-to-end
tests at the bottom run real `jobfsm start` processes.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from jobfsm.daemon import spool
from jobfsm.daemon.finish import REFUSED_TEXTS
from jobfsm.daemon.scheduler import SPOOL_FILE
from jobfsm.model import Outcome, RunStatus, Trigger
from jobfsm.places import default_store_url
from jobfsm.runs.executor import JobResult
from jobfsm.store import Claim, RunRecord, open_store
from jobfsm.store.sql import normalize_url
from tests.conftest import fill, pg_schema, store_on, wait_for
from tests.scheduler_support import MINUTE, Rig

# -- the faults ------------------------------------------------------------------------------

@contextmanager
def exclusive_lock(db: Path) -> Iterator[Callable[[], None]]:
    """Another process holds ``BEGIN EXCLUSIVE`` on ``db`` until the yielded call releases it."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE')\n"
         "print('locked', flush=True)\n"
         "sys.stdin.readline()\n"
         "c.execute('ROLLBACK')\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"

    def release() -> None:
        if holder.poll() is None:
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(10)

    try:
        yield release
    finally:
        release()


def terminate_backends(server: str, application_name: str) -> int:
    """Kill every PostgreSQL connection named ``application_name`` (the store's), as an
    administrator's ``pg_terminate_backend`` or a failover would."""
    engine = create_engine(normalize_url(server))
    try:
        with engine.begin() as conn:
            killed = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"
            ), {"name": application_name}).scalar_one()
    finally:
        engine.dispose()
    return int(killed)


@pytest.fixture
def sqlite_rig(tmp_path: Path) -> Iterator[Rig]:
    # A short busy timeout so that a held lock fails the store in 0.2 s, not 30.
    rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}?timeout=0.2", 50)
    yield rig
    rig.close()


# -- SQLite locked by another process ---------------------------------------------------------

def test_a_lock_held_while_runs_end_keeps_their_results_and_records_them_when_it_is_released(
    sqlite_rig: Rig, tmp_path: Path
) -> None:
    rig = sqlite_rig
    rig.at(MINUTE)
    assert len(rig.runner.tickets) == 50
    with exclusive_lock(tmp_path / "store.db") as release:
        rig.runner.finish(rig.runner.tickets[:20], MINUTE + timedelta(seconds=5))
        rig.scheduler.apply_results()
        assert rig.scheduler.outage is not None, "the lock did not fail the store"
        rig.at(MINUTE + timedelta(minutes=1))  # no claims while the store fails
        assert not rig.probe(), "the store came back while still locked"
        assert rig.scheduler.outage.attempts == 2
        release()
        assert rig.probe(), "the store did not come back once the lock was released"
    assert rig.scheduler.outage is None
    finished = {t.run_id for t in rig.runner.tickets[:20]}
    for run in rig.runs():
        if run.id in finished:
            assert run.status is RunStatus.SUCCEEDED and run.stdout_tail == "out"
    # The 00:02 fire, due during the outage, runs late: the 20 free jobs start it, the 30 still
    # running skip it (overlap: skip) with the reason.
    rig.at(MINUTE + timedelta(minutes=1, seconds=10))
    assert len(rig.runner.tickets) == 70
    rig.runner.finish(rig.runner.tickets[20:], MINUTE + timedelta(minutes=1, seconds=20))
    rig.scheduler.apply_results()
    rig.assert_each_fire_once([MINUTE, MINUTE + timedelta(minutes=1)])
    assert not rig.store.list_runs(status=RunStatus.RUNNING), "runs stuck running"
    rig.assert_states_agree()
    log = rig.main_log()
    assert log.count("store unavailable") == 1 and log.count("store available again") == 1, log


def test_a_lock_taken_in_the_middle_of_a_burst_delays_the_rest_and_loses_nothing(
    sqlite_rig: Rig, tmp_path: Path
) -> None:
    rig = sqlite_rig
    held: list[Callable[[], None]] = []
    locks = []

    def lock_at_fifth(count: int) -> None:
        if count == 5:  # after the second chunk committed: the third one fails
            lock = exclusive_lock(tmp_path / "store.db")
            held.append(lock.__enter__())
            locks.append(lock)

    rig.runner.on_submit = lock_at_fifth
    rig.at(MINUTE)
    rig.runner.on_submit = None
    started = len(rig.runner.tickets)
    assert 5 <= started < 50 and rig.scheduler.outage is not None
    assert len(rig.store.list_runs()) == started, "a run was recorded that did not start, or the reverse"
    held[0]()
    assert rig.probe()
    rig.at(MINUTE + timedelta(seconds=2))
    assert len(rig.runner.tickets) == 50, "fires put back during the outage did not run when it ended"
    assert len({t.job.name for t in rig.runner.tickets}) == 50
    rig.assert_each_fire_once([MINUTE])
    late = [r for r in rig.runs() if r.started_at and r.started_at > MINUTE]
    assert len(late) == 50 - started
    rig.assert_states_agree()
    for lock in locks:
        lock.__exit__(None, None, None)


def test_fires_missed_during_a_long_outage_follow_catch_up(tmp_path: Path) -> None:
    """Three fires came due while the store failed: the newest runs; with ``catch_up: none``
    the older two are recorded as skipped, saying the store was unavailable."""
    rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}?timeout=0.2", 5)
    rig.at(MINUTE)
    rig.runner.finish(rig.runner.tickets, MINUTE + timedelta(seconds=1))
    rig.scheduler.apply_results()
    with exclusive_lock(tmp_path / "store.db") as release:
        rig.at(MINUTE + timedelta(minutes=1))
        assert rig.scheduler.outage is not None
        rig.at(MINUTE + timedelta(minutes=3, seconds=30))
        release()
        assert rig.probe()
    rig.at(MINUTE + timedelta(minutes=3, seconds=30))
    fires = [MINUTE + timedelta(minutes=m) for m in range(4)]
    rig.assert_each_fire_once(fires)
    for name in rig.names:
        runs = {r.scheduled_for: r for r in rig.store.list_runs(name)}
        assert runs[fires[3]].status is RunStatus.RUNNING
        for fire in fires[1:3]:
            assert runs[fire].status is RunStatus.SKIPPED
            assert "the store was unavailable" in runs[fire].message
    rig.close()


def test_results_kept_at_shutdown_with_the_store_down_are_recorded_at_the_next_start(
    sqlite_rig: Rig, tmp_path: Path
) -> None:
    rig = sqlite_rig
    rig.at(MINUTE)
    with exclusive_lock(tmp_path / "store.db"):
        rig.runner.finish(rig.runner.tickets, MINUTE + timedelta(seconds=3), Outcome.FAILED)
        rig.scheduler.apply_results()
        rig.scheduler.shutdown(grace_seconds=0)
        assert (rig.logs / SPOOL_FILE).exists(), "the results were not kept"
        assert "50 result(s) kept in" in rig.main_log()
    assert len(rig.store.list_runs(status=RunStatus.RUNNING)) == 50
    rig.restart()
    assert not (rig.logs / SPOOL_FILE).exists()
    runs = rig.store.list_runs()
    assert len(runs) == 50 and all(r.status is RunStatus.FAILED for r in runs), "a kept result was lost"


def test_a_claim_that_committed_as_the_store_failed_is_started_when_it_is_back(
    sqlite_rig: Rig, tmp_path: Path
) -> None:
    """A connection lost after the commit went through: the claim is in the store, the daemon
    saw an error. When the store is back, the run is started once, not lost or left running."""
    rig = sqlite_rig
    with exclusive_lock(tmp_path / "store.db") as release:
        rig.at(MINUTE)
        assert rig.scheduler.outage is not None and not rig.runner.tickets
        release()
        orphan = rig.store.claim_run(Claim("job-007", trigger=Trigger.SCHEDULE, node="here:1",
                                           started_at=MINUTE, scheduled_for=MINUTE))
        assert orphan is not None
        assert rig.probe()
    rig.at(MINUTE + timedelta(seconds=1))
    assert [t.run_id for t in rig.runner.tickets if t.job.name == "job-007"] == [orphan.id]
    rig.assert_each_fire_once([MINUTE])
    assert len(rig.runner.tickets) == 50


# -- a full disk ---------------------------------------------------------------------------------

def test_a_full_disk_under_the_store_loses_nothing(tmp_path: Path, small_disk: Path) -> None:
    rig = Rig(tmp_path, f"sqlite:///{small_disk / 'jobfsm.db'}", 30)
    rig.at(MINUTE)
    rig.runner.finish(rig.runner.tickets, MINUTE + timedelta(seconds=1))
    rig.scheduler.apply_results()
    filler = fill(small_disk)
    rig.at(MINUTE + timedelta(minutes=1))
    assert rig.scheduler.outage is not None, "a full disk did not fail the store"
    assert "disk is full" in rig.main_log() or "disk I/O error" in rig.main_log()
    assert not rig.probe()
    filler.unlink()
    assert rig.probe()
    rig.at(MINUTE + timedelta(minutes=1, seconds=2))
    rig.assert_each_fire_once([MINUTE, MINUTE + timedelta(minutes=1)])
    assert len(rig.runner.tickets) == 60
    rig.assert_states_agree()
    rig.close()


# -- a value the store refuses ------------------------------------------------------------------

REFUSED = [
    pytest.param(backend, texts, id=f"{backend}-{next(iter(texts))}",
                 marks=[pytest.mark.postgres] if backend == "postgresql" else [])
    for backend, texts in [("sqlite", {"message": "m\udcff"}),  # no driver encodes a lone surrogate
                           ("postgresql", {"stdout": "a\x00b"}),  # PostgreSQL's text holds no NUL
                           ("postgresql", {"stderr": "c\ud800"})]
]


@pytest.mark.parametrize(("backend", "texts"), REFUSED)
def test_a_result_the_store_refuses_is_recorded_without_its_texts_and_claiming_goes_on(
    tmp_path: Path, backend: str, texts: dict[str, str], request: pytest.FixtureRequest
) -> None:
    """One run's result holds a text the store refuses on every try. That read as an outage:
    the chunk of results it was in was never recorded (those runs stayed running, their jobs
    skipped every later fire), and each new try began another outage. Now the others are
    recorded as they are, that one without its texts (said once), and fires go on."""
    with store_on(backend, tmp_path, request) as url:
        rig = Rig(tmp_path, url, 20)
        rig.at(MINUTE)
        tickets = rig.runner.tickets
        bad = tickets[7]
        rig.runner.finish(tickets[:7], MINUTE + timedelta(seconds=1))
        rig.runner.finish([bad], MINUTE + timedelta(seconds=1), **texts)
        rig.runner.finish(tickets[8:], MINUTE + timedelta(seconds=1))
        assert rig.scheduler.apply_results() == 20
        assert rig.scheduler.outage is None, "a refused value read as an outage"
        runs = {r.id: r for r in rig.runs()}
        assert all(r.status is RunStatus.SUCCEEDED for r in runs.values()), "a run was left running"
        assert [r.id for r in runs.values() if r.stdout_tail != "out"] == [bad.run_id]
        refused = runs[bad.run_id]
        assert (refused.exit_code, refused.stdout_tail, refused.stderr_tail, refused.message) == \
            (0, "", "", REFUSED_TEXTS)
        rig.at(MINUTE + timedelta(minutes=1))
        assert len(rig.runner.tickets) == 40, "fires were not claimed after the refused result"
        rig.assert_each_fire_once([MINUTE, MINUTE + timedelta(minutes=1)])
        rig.assert_states_agree()
        log = rig.main_log()
        assert log.count("refused a value") == 1 and f"run {bad.run_id} of job {bad.job.name!r}" in log, log
        assert "store unavailable" not in log, log
        rig.close()


@pytest.mark.parametrize(("backend", "texts"), REFUSED)
def test_a_kept_result_the_store_refuses_is_recorded_without_its_texts_at_the_next_start(
    tmp_path: Path, backend: str, texts: dict[str, str], request: pytest.FixtureRequest
) -> None:
    with store_on(backend, tmp_path, request) as url:
        rig = Rig(tmp_path, url, 2)
        rig.at(MINUTE)
        ticket = rig.runner.tickets[0]
        when = MINUTE + timedelta(seconds=1)
        spool.write(rig.logs / SPOOL_FILE, [(ticket.run_id, JobResult(
            job_name=ticket.job.name, run_id=ticket.run_id, start_time=MINUTE, end_time=when, exit_code=3,
            stdout=texts.get("stdout", ""), stderr=texts.get("stderr", ""), duration_seconds=1.0,
            status=Outcome.FAILED, signal=None, message=texts.get("message", "exit code 3"),
            stdout_path=None, stderr_path=None))], rig.logger)
        rig.restart()
        assert not (rig.logs / SPOOL_FILE).exists()
        run = rig.store.get_run(ticket.run_id)
        assert (run.status, run.exit_code, run.stdout_tail, run.stderr_tail, run.message) == \
            (RunStatus.FAILED, 3, "", "", REFUSED_TEXTS)
        assert rig.main_log().count("refused a value") == 1
        rig.close()


@pytest.mark.postgres
def test_a_value_refused_at_start_up_fails_at_once_instead_of_waiting_for_ever(tmp_path: Path, postgres_url: str) -> None:
    """A ``--node`` longer than PostgreSQL's ``varchar(255)``: the heartbeat is refused, which
    read as a store not up yet, waited for with no end."""
    (tmp_path / "jobs").mkdir()
    with pg_schema(postgres_url) as url:
        done = subprocess.run(
            [sys.executable, "-m", "jobfsm", "start", "--jobs", str(tmp_path / "jobs"), "--logs", str(tmp_path / "logs"),
             "--store", url, "--node", "n" * 300],
            capture_output=True, text=True, timeout=30,
        )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "refused a value: value too long" in done.stderr, done.stderr[-2000:]
    assert "store unavailable" not in (tmp_path / "logs" / "scheduler_main.log").read_text()


# -- PostgreSQL connections killed ------------------------------------------------------------

def kill_inside_inserts(url: str, server: str, at_rows: tuple[int, ...]) -> None:
    """Make the server end the store's own connection in the middle of a claim: a trigger on
    ``runs`` calls ``pg_terminate_backend(pg_backend_pid())`` on the given inserted rows, so the
    connection dies inside a transaction, at a known point of the burst."""
    schema = url.split("search_path%3D", 1)[1].split("&", 1)[0]
    rows = ", ".join(str(n) for n in at_rows)
    engine = create_engine(normalize_url(server))
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SEQUENCE "{schema}".kill_seq'))
            conn.execute(text(
                f'CREATE FUNCTION "{schema}".kill_me() RETURNS trigger AS $$ BEGIN '
                f"IF nextval('\"{schema}\".kill_seq') IN ({rows}) THEN "
                "PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            ))
            conn.execute(text(
                f'CREATE TRIGGER kill_at AFTER INSERT ON "{schema}".runs '
                f'FOR EACH ROW EXECUTE FUNCTION "{schema}".kill_me()'
            ))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_connections_killed_mid_burst_lose_nothing(tmp_path: Path, postgres_url: str) -> None:
    with pg_schema(postgres_url) as url:
        rig = Rig(tmp_path, url, 400)
        kill_inside_inserts(url, postgres_url, (30, 200))
        rig.at(MINUTE)
        assert rig.scheduler.outage is not None, "the killed connection did not fail the store"
        for _ in range(20):  # each kill costs one outage; the store comes back at once
            if rig.scheduler.outage is None and len(rig.runner.tickets) == 400:
                break
            rig.probe()
            rig.at(MINUTE + timedelta(seconds=1))
        assert len(rig.runner.tickets) == 400, "fires were lost to the killed connections"
        rig.runner.finish(rig.runner.tickets, MINUTE + timedelta(seconds=5))
        rig.scheduler.apply_results()
        rig.assert_each_fire_once([MINUTE])
        assert not rig.store.list_runs(status=RunStatus.RUNNING), "runs stuck running"
        rig.assert_states_agree()
        log = rig.main_log()
        assert log.count("store unavailable") == 2 and "terminating connection" in log, log
        rig.close()


# -- end to end: real daemons --------------------------------------------------------------------

def _daemon(tmp_path: Path, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "jobfsm", "start", "--jobs", str(tmp_path / "jobs"),
         "--logs", str(tmp_path / "logs"), "--store", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )


def _write_jobs(tmp_path: Path, n: int) -> list[str]:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    names = [f"e2e-{i:03d}" for i in range(n)]
    for name in names:
        (jobs / f"{name}.json").write_text(json.dumps({
            "name": name, "schedule": "* * * * *", "command": "true",
            "working_directory": "/tmp", "enabled": True,
        }))
    return names


def _next_minute() -> datetime:
    now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_daemon_survives_postgresql_connections_killed_in_the_first_seconds_of_a_minute(
    tmp_path: Path, postgres_url: str
) -> None:
    """400 jobs every minute on PostgreSQL; the daemon's connections are killed over and over
    in the first 2 s of a minute: every fire of that minute runs once and the daemon lives."""
    name = f"jobfsm-e2e-{uuid.uuid4().hex[:8]}"
    names = _write_jobs(tmp_path, 400)
    with pg_schema(postgres_url, application_name=name) as url:
        store = open_store(url)
        daemon = _daemon(tmp_path, url)
        try:
            wait_for(lambda: (tmp_path / "logs" / "scheduler_main.log").exists()
                     and "settings:" in (tmp_path / "logs" / "scheduler_main.log").read_text(), 30, "start-up")
            boundary = _next_minute()
            if (boundary - datetime.now(UTC)).total_seconds() < 3:
                boundary += timedelta(minutes=1)
            wait_for(lambda: datetime.now(UTC) >= boundary, 65, "the minute boundary")
            killed = 0
            while datetime.now(UTC) < boundary + timedelta(seconds=2):
                killed += terminate_backends(postgres_url, name)
            assert killed, "no connection of the daemon was killed"

            def recorded() -> list[RunRecord]:
                return [r for r in store.list_runs(since=boundary - timedelta(minutes=1))
                        if r.scheduled_for == boundary and r.status is RunStatus.SUCCEEDED]

            wait_for(lambda: len(recorded()) >= 400, 60, "every fire of the minute to run and be recorded",
                     lambda: f"{len(recorded())} of 400")
            assert daemon.poll() is None, "the daemon died"
            runs = [r for r in store.list_runs() if r.scheduled_for == boundary]
            assert sorted(r.job for r in runs) == sorted(names), "a fire was lost or run twice"
            log = (tmp_path / "logs" / "scheduler_main.log").read_text()
            assert "fatal" not in log  # whether a kill hit a transaction is up to timing
        finally:
            daemon.terminate()
            daemon.wait(30)
            store.close()
    assert daemon.returncode == 0, daemon.stderr.read() if daemon.stderr else ""


@pytest.mark.slow
@pytest.mark.parametrize(("query", "hold"), [("?timeout=1", 4), ("", 15)],
                         ids=["longer-than-the-busy-timeout", "15-s-within-the-default-timeout"])
def test_a_daemon_survives_a_sqlite_lock_across_a_minute_boundary(tmp_path: Path, query: str, hold: int) -> None:
    """Another process holds the store's write lock across a minute boundary: longer than the
    busy timeout (1 s; an outage, logged once), or 15 s within the default 30 s (the daemon just
    waits): the fires of that minute run late, once each."""
    names = _write_jobs(tmp_path, 40)
    db = tmp_path / "logs" / "jobfsm.db"
    url = f"sqlite:///{db}{query}"
    daemon = _daemon(tmp_path, url)
    try:
        wait_for(lambda: db.exists() and (tmp_path / "logs" / "scheduler_main.log").exists()
                 and "settings:" in (tmp_path / "logs" / "scheduler_main.log").read_text(), 30, "start-up")
        boundary = _next_minute()
        if (boundary - datetime.now(UTC)).total_seconds() < 4:
            boundary += timedelta(minutes=1)
        wait_for(lambda: (boundary - datetime.now(UTC)).total_seconds() < 1, 65, "just before the minute")
        with exclusive_lock(db) as release:
            wait_for(lambda: datetime.now(UTC) >= boundary + timedelta(seconds=hold), hold + 6, "the lock's end")
            release()
        store = open_store(url)
        try:
            def ran() -> list[RunRecord]:
                return [r for r in store.list_runs() if r.scheduled_for == boundary]

            wait_for(lambda: len([r for r in ran() if r.status is RunStatus.SUCCEEDED]) == 40, 30,
                     "every fire of the locked minute to run", lambda: f"{len(ran())} recorded")
            assert sorted(r.job for r in ran()) == sorted(names)
            assert all(r.started_at and r.started_at >= boundary + timedelta(seconds=hold - 1) for r in ran()), \
                "a fire started while the store was locked"
        finally:
            store.close()
        assert daemon.poll() is None, "the daemon died"
    finally:
        daemon.terminate()
        daemon.wait(30)
    log = (tmp_path / "logs" / "scheduler_main.log").read_text()
    if query:
        assert log.count("store unavailable") == 1 and "store available again" in log, log
    else:
        assert "store unavailable" not in log, log
    assert daemon.returncode == 0




def _boundaries(start: datetime, end: datetime) -> list[datetime]:
    """The minute boundaries in ``(start, end]``."""
    found, minute = [], start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute <= end:
        found.append(minute)
        minute += timedelta(minutes=1)
    return found


@pytest.mark.slow
def test_a_daemon_whose_default_store_fills_its_disk_loses_nothing(tmp_path: Path, small_disk: Path) -> None:
    """A real ``jobfsm start`` with its logs folder, and so its default store
    ``logs/jobfsm.db``, on a real 8 MiB tmpfs; 30 jobs every minute, each appending a marker
    line to a file off that disk, then sleeping 3 s. The disk fills twice: just before a
    minute boundary, until 5 s after it (the burst is due while the store cannot take a
    claim), and again while the late burst's 30 runs are going (their results cannot be
    recorded), for 5 s. Every fire of the daemon's life ran exactly once (one marker, its run
    succeeded) or is recorded skipped with a reason; no run is left running; the daemon lives
    and logs each outage once, and its end. (Before outage mode: "database or disk is full",
    fatal, the burst's fires lost, its runs left running.)"""
    n = 30
    markers = tmp_path / "markers.txt"
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    names = [f"disk-{i:02d}" for i in range(n)]
    command = (f"""printf '%s %s %s\\n' "$JOBFSM_JOB" "$JOBFSM_SCHEDULED_FOR" "$JOBFSM_RUN_ID" """
               f""">> {shlex.quote(str(markers))}; sleep 3""")
    for name in names:
        (jobs / f"{name}.json").write_text(json.dumps({
            "name": name, "schedule": "* * * * *", "command": command,
            "working_directory": str(tmp_path), "enabled": True,
        }))
    logs = small_disk
    main_log = logs / "scheduler_main.log"
    if datetime.now(UTC).second > 50:  # start-up and the first fill must come before the boundary
        wait_for(lambda: datetime.now(UTC).second < 30, 15, "the next minute")
    launched = datetime.now(UTC)
    daemon = subprocess.Popen(  # no --store: the default, logs/jobfsm.db
        [sys.executable, "-m", "jobfsm", "start", "--jobs", str(jobs), "--logs", str(logs)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    def alive() -> bool:
        if daemon.poll() is not None:
            raise AssertionError(f"the daemon exited ({daemon.returncode}): "
                                 f"{daemon.stderr.read()[-2000:] if daemon.stderr else ''}")
        return True

    def ran() -> list[tuple[str, ...]]:
        return [tuple(line.split(" ")) for line in markers.read_text().splitlines()] if markers.exists() else []

    store = None
    try:
        wait_for(lambda: alive() and main_log.exists() and "settings:" in main_log.read_text(), 30, "start-up")
        boundary = _next_minute()
        assert (boundary - datetime.now(UTC)).total_seconds() > 2, "start-up took too long"
        wait_for(lambda: alive() and (boundary - datetime.now(UTC)).total_seconds() < 0.3, 60,
                 "just before the minute")
        filler = fill(small_disk)
        wait_for(lambda: alive() and datetime.now(UTC) >= boundary + timedelta(seconds=5), 10, "5 s into the minute")
        filler.unlink()
        freed = datetime.now(UTC)
        wait_for(lambda: alive() and len(ran()) >= n, 30, "the late burst to start", lambda: f"{len(ran())} of {n}")
        filler = fill(small_disk)
        refilled = datetime.now(UTC)
        wait_for(lambda: alive() and datetime.now(UTC) >= refilled + timedelta(seconds=5), 10, "the second fill's end")
        filler.unlink()
        freed_again = datetime.now(UTC)
        store = open_store(default_store_url(logs))

        def ended() -> list[RunRecord]:
            alive()
            return [r for r in store.list_runs() if r.scheduled_for == boundary and r.status is not RunStatus.RUNNING]

        wait_for(lambda: len(ended()) >= n, 30, "every fire of the minute to end and be recorded",
                 lambda: f"{len(ended())} of {n}")
        alive()
        daemon.terminate()
        daemon.wait(30)
        stopped = datetime.now(UTC)
        assert daemon.returncode == 0, daemon.stderr.read()[-2000:] if daemon.stderr else ""

        runs = store.list_runs()
        assert not [r for r in runs if r.status is RunStatus.RUNNING], "runs stuck running"
        markers_seen = ran()
        assert len(set(markers_seen)) == len(markers_seen), "a fire ran twice"
        by_fire: dict[tuple[str, datetime | None], list[RunRecord]] = {}
        for run in runs:
            by_fire.setdefault((run.job, run.scheduled_for), []).append(run)
        due = [m for m in _boundaries(launched, stopped) if m < stopped - timedelta(seconds=2)]
        assert boundary in due  # (a boundary as the daemon stopped may or may not have been claimed)
        for name in names:
            for minute in due:
                recorded = by_fire.get((name, minute), [])
                assert len(recorded) == 1, f"fire {minute} of {name!r}: {len(recorded)} run(s) recorded"
                run = recorded[0]
                marked = [m for m in markers_seen if m[:2] == (name, minute.isoformat())]
                if run.status is RunStatus.SKIPPED:
                    assert run.message and not marked, (run, marked)
                else:
                    assert run.status is RunStatus.SUCCEEDED, run
                    assert marked == [(name, minute.isoformat(), str(run.id))], (run, marked)
        assert len(markers_seen) == len([r for r in runs if r.status is RunStatus.SUCCEEDED]), \
            "a marker without its run"
        full = [r for r in runs if r.scheduled_for == boundary]
        assert all(r.started_at is not None and r.started_at >= freed - timedelta(seconds=1) for r in full), \
            "a fire started while the disk was full"
        assert any(r.ended_at is not None and refilled <= r.ended_at <= freed_again for r in full), \
            "no run ended while the disk was full the second time: the test missed its fault"
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
        if store is not None:
            store.close()
    log = main_log.read_text()
    assert log.count("store unavailable") == 2 and log.count("store available again") == 2, log
    assert "disk is full" in log, log
