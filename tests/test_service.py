"""The management service: CRUD, enable/disable, triggers (here and through a daemon), history,
logs, audit, and safety under concurrent writers (threads and real processes)."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.audit import MASK, mask_env
from jobfsm.errors import (
    ConcurrentModificationError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobNotFoundError,
    ValidationError,
)
from jobfsm.model import JobConfig, JobState, Outcome, RunStatus, Trigger
from jobfsm.service import JobManagementService, RunWaitTimeoutError, TriggerTimeoutError
from jobfsm.store import Claim, Finish, Store, open_store
from jobfsm.store.memory import MemoryStore
from tests.conftest import job_doc
from tests.strategies import job_documents

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def fresh_service(base: Path, store: Store | None = None, **kwargs: Any) -> Iterator[JobManagementService]:
    """A service over new folders under ``base`` (one per Hypothesis example)."""
    root = Path(tempfile.mkdtemp(dir=base))
    (root / "jobs").mkdir()
    service = JobManagementService(root / "jobs", root / "logs", store or MemoryStore(), **kwargs)
    try:
        yield service
    finally:
        service.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[JobManagementService]:
    store = open_store(f"sqlite:///{tmp_path / 'logs' / 'jobfsm.db'}")
    (tmp_path / "jobs").mkdir()
    svc = JobManagementService(tmp_path / "jobs", tmp_path / "logs", store)
    yield svc
    svc.close()
    store.close()


def audit_outcomes(service: JobManagementService) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.outcome, e.job) for e in reversed(service.list_audit())]


def masked(config: JobConfig) -> JobConfig:
    return replace(config, env=mask_env(config.env))


# -- Property 15 -----------------------------------------------------------------------------


# Property 15: CRUD round-trip
@settings(max_examples=100)
@given(doc=job_documents(), changes=job_documents(name="ignored"), picks=st.sets(st.sampled_from(
    ["description", "timezone", "timeout_seconds", "env", "overlap", "catch_up", "retries",
     "retry_delay_seconds", "schedule", "command", "enabled"])), removals=st.sets(st.sampled_from(
    ["description", "timezone", "env", "retries"])))
def test_crud_round_trip(
    tmp_path_factory: pytest.TempPathFactory, doc: dict[str, Any], changes: dict[str, Any],
    picks: set[str], removals: set[str],
) -> None:
    with fresh_service(tmp_path_factory.getbasetemp()) as svc:
        created = svc.create_job(doc, "alice")
        expected = JobConfig.from_dict(doc)
        assert created.config == masked(expected)
        view = svc.get_job(doc["name"])
        assert view.config == masked(expected) and view.version == created.version
        assert [v.name for v in svc.list_jobs()] == [doc["name"]]

        patch: dict[str, Any] = {k: changes[k] for k in picks if k in changes}
        patch.update({k: None for k in removals - set(patch)})
        updated = svc.update_job(doc["name"], patch, "bob", view.version)
        new_doc = {k: v for k, v in {**doc, **patch}.items() if v is not None}
        assert svc.get_job(doc["name"]).config == masked(JobConfig.from_dict(new_doc))
        on_disk = json.loads((svc.jobs_directory / f"{doc['name']}.json").read_text("utf-8"))
        assert on_disk == new_doc
        changed = {k for k in set(doc) | set(new_doc) if doc.get(k) != new_doc.get(k)}
        entry = svc.list_audit(limit=1)[0]
        assert (entry.action, entry.outcome, entry.user) == ("update", "allowed", "bob")
        assert set(entry.details["changes"]) == changed
        assert (updated.version == view.version) == (not changed)

        svc.delete_job(doc["name"], "carol", expected_version=updated.version)
        with pytest.raises(JobNotFoundError):
            svc.get_job(doc["name"])
        assert svc.list_jobs() == []
        assert [o for _, o, _ in audit_outcomes(svc)] == ["allowed"] * 3


# -- Property 16 -----------------------------------------------------------------------------


# Property 16: enable/disable toggles only the enabled flag and the state
@settings(max_examples=100)
@given(doc=job_documents(), indent=st.sampled_from([2, 4, "\t"]),
       ops=st.lists(st.booleans(), min_size=1, max_size=4))
def test_enable_disable_toggles_only_the_flag_and_the_state(
    tmp_path_factory: pytest.TempPathFactory, doc: dict[str, Any], indent: Any, ops: list[bool]
) -> None:
    with fresh_service(tmp_path_factory.getbasetemp()) as svc:
        path = svc.jobs_directory / f"{doc['name']}.json"
        path.write_text(json.dumps(doc, indent=indent, ensure_ascii=False) + "\n", "utf-8")
        enabled = doc["enabled"]
        for enable in ops:
            before = path.read_text("utf-8")
            view = svc.enable_job(doc["name"], "u") if enable else svc.disable_job(doc["name"], "u")
            after = path.read_text("utf-8")
            diff = [d for d in difflib.ndiff(before.splitlines(), after.splitlines()) if d[:1] in "+-"]
            if enable == enabled:
                assert after == before
            else:
                assert len(diff) == 2 and all('"enabled"' in d for d in diff)
            assert json.loads(after) == {**doc, "enabled": enable}
            enabled = enable
            expected_state = JobState.IDLE if enable else JobState.DISABLED
            assert view.state is expected_state and view.enabled is enable
            assert svc.store.get_state(doc["name"]) in (expected_state, None)
        assert audit_outcomes(svc) == [("enable" if e else "disable", "allowed", doc["name"]) for e in ops]


# -- Property 17 -----------------------------------------------------------------------------

printable = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_categories=("Cs",)),
                    max_size=30)


# Property 17: manual trigger runs once and records a manual run
@settings(max_examples=100)
@given(code=st.integers(0, 5), out=printable, user=st.sampled_from(["alice", "bob", "ops-bot"]))
def test_manual_trigger_runs_once_and_records_a_manual_run(
    tmp_path_factory: pytest.TempPathFactory, code: int, out: str, user: str
) -> None:
    with fresh_service(tmp_path_factory.getbasetemp()) as svc:
        marker = svc.log_directory.parent / "count"
        svc.create_job(job_doc("t", command=["/bin/sh", "-c",
                                             f'echo x >> "{marker}"; printf "%s" "$OUT"; exit {code}'],
                               env={"OUT": out}), "setup")
        run_id = svc.trigger_job("t", user)
        run = svc.wait_for_run(run_id, timeout=30)
        assert marker.read_text().count("x") == 1, "the command ran exactly once"
        runs = svc.get_job_history("t")
        assert [r.id for r in runs] == [run_id]
        assert run.trigger is Trigger.MANUAL and run.user == user and run.scheduled_for is None
        assert run.exit_code == code
        assert run.status is (RunStatus.SUCCEEDED if code == 0 else RunStatus.FAILED)
        assert run.stdout_tail == out
        assert svc.store.get_state("t") is (JobState.SUCCEEDED if code == 0 else JobState.FAILED)
        trigger = svc.list_audit(limit=1)[0]
        assert (trigger.action, trigger.outcome, trigger.user, trigger.details["run_id"]) == (
            "trigger", "allowed", user, run_id)


# -- Property 18 -----------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
run_specs = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(list(RunStatus)), st.integers(0, 100)),
    max_size=15,
)


def _insert_runs(store: Store, specs: list[tuple[str, RunStatus, int]]) -> None:
    for job, status, minute in specs:
        started = T0 + timedelta(minutes=minute)
        if status in (RunStatus.SKIPPED, RunStatus.RUNNING):
            store.claim_run(Claim(job, trigger=Trigger.SCHEDULE, node="n", started_at=started,
                                  scheduled_for=None, status=status))
            continue
        run = store.claim_run(Claim(job, trigger=Trigger.MANUAL, node="n", started_at=started))
        assert run is not None
        if status is RunStatus.LOST:
            store.mark_lost(at=started, message="gone")
            # mark_lost touches every running run: re-open nothing; RUNNING ones are inserted last
        else:
            store.finish_run(Finish(run.id, outcome=Outcome.SUCCEEDED if status is RunStatus.SUCCEEDED
                                    else Outcome.FAILED, ended_at=started, exit_code=0, duration_seconds=1))


# Property 18: history filtering
@settings(max_examples=100)
@given(specs=run_specs, status=st.none() | st.sampled_from(list(RunStatus)),
       since=st.none() | st.integers(0, 100), until=st.none() | st.integers(0, 100),
       limit=st.none() | st.integers(1, 10), as_text=st.booleans())
def test_history_filtering(
    tmp_path_factory: pytest.TempPathFactory, specs: list[tuple[str, RunStatus, int]],
    status: RunStatus | None, since: int | None, until: int | None, limit: int | None, as_text: bool,
) -> None:
    # running runs last, so that mark_lost for LOST ones cannot touch them
    specs = sorted(specs, key=lambda s: s[1] is RunStatus.RUNNING)
    with fresh_service(tmp_path_factory.getbasetemp()) as svc:
        svc.create_job(job_doc("a"), "setup")
        _insert_runs(svc.store, specs)
        since_t = T0 + timedelta(minutes=since) if since is not None else None
        until_t = T0 + timedelta(minutes=until) if until is not None else None
        got = svc.get_job_history("a", status=status.value if as_text and status else status,
                                  since=since_t, until=until_t, limit=limit)
        everything = svc.store.list_runs()
        expected = [
            r for r in everything
            if r.job == "a" and (status is None or r.status is status)
            and (since_t is None or r.started_at >= since_t)
            and (until_t is None or r.started_at <= until_t)
        ]
        expected.sort(key=lambda r: (r.started_at, r.id), reverse=True)
        assert [r.id for r in got] == [r.id for r in expected][:limit]
        assert sorted(r.status for r in everything if r.job == "a") == sorted(
            s for j, s, _ in specs if j == "a")


# -- Property 19 -----------------------------------------------------------------------------

lines = st.lists(st.sampled_from(["alpha", "Beta gamma", "ERROR disk full", "ok", "error: x", ""]),
                 max_size=5)


# Property 19: log filtering
@settings(max_examples=100)
@given(runs=st.lists(st.tuples(lines, lines, st.sampled_from([RunStatus.SUCCEEDED, RunStatus.FAILED])),
                     min_size=1, max_size=5),
       search=st.none() | st.sampled_from(["error", "ERROR", "gamma", "zzz", "a"]),
       status=st.none() | st.sampled_from([RunStatus.SUCCEEDED, RunStatus.FAILED]),
       pick=st.none() | st.integers(0, 4), limit=st.none() | st.integers(1, 5))
def test_log_filtering(
    tmp_path_factory: pytest.TempPathFactory, runs: list[tuple[list[str], list[str], RunStatus]],
    search: str | None, status: RunStatus | None, pick: int | None, limit: int | None,
) -> None:
    with fresh_service(tmp_path_factory.getbasetemp()) as svc:
        svc.create_job(job_doc("a"), "setup")
        records = []
        for i, (out, err, st_) in enumerate(runs):
            run = svc.store.claim_run(Claim("a", trigger=Trigger.MANUAL, node="n",
                                            started_at=T0 + timedelta(minutes=i)))
            assert run is not None
            folder = svc.log_directory / "runs" / "a"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{run.id}.out").write_text("".join(x + "\n" for x in out))
            (folder / f"{run.id}.err").write_text("".join(x + "\n" for x in err))
            records.append(svc.store.finish_run(Finish(
                run.id, outcome=Outcome.SUCCEEDED if st_ is RunStatus.SUCCEEDED else Outcome.FAILED,
                ended_at=run.started_at, exit_code=0, duration_seconds=0.1,
                stdout_path=str(folder / f"{run.id}.out"), stderr_path=str(folder / f"{run.id}.err"))))
        run_id = records[pick % len(records)].id if pick is not None else None
        got = svc.get_job_logs("a", search=search, status=status, run_id=run_id, limit=limit)

        def grep(texts: list[str]) -> str:
            if search is None:
                return "".join(x + "\n" for x in texts)
            return "".join(x + "\n" for x in texts if search.lower() in x.lower())

        expected = []
        for rec, (out, err, st_) in reversed(list(zip(records, runs, strict=True))):
            if (run_id is not None and rec.id != run_id) or (status is not None and st_ is not status):
                continue
            o, e = grep(out), grep(err)
            if search is not None and not (o or e):
                continue
            expected.append((rec.id, o, e))
        assert [(x.run.id, x.stdout, x.stderr) for x in got] == expected[:limit]


# -- edge cases ------------------------------------------------------------------------------


def test_duplicate_create_fails_and_is_audited(service: JobManagementService) -> None:
    service.create_job(job_doc("a"), "alice")
    before = (service.jobs_directory / "a.json").read_bytes()
    with pytest.raises(JobAlreadyExistsError, match="'a' already exists"):
        service.create_job(job_doc("a", command="rm -rf /"), "mallory")
    assert (service.jobs_directory / "a.json").read_bytes() == before
    assert audit_outcomes(service) == [("create", "allowed", "a"), ("create", "failed", "a")]


def test_update_and_delete_of_a_missing_job(service: JobManagementService) -> None:
    with pytest.raises(JobNotFoundError, match="'ghost'"):
        service.update_job("ghost", {"description": "x"}, "u", None)
    with pytest.raises(JobNotFoundError, match="'ghost'"):
        service.delete_job("ghost", "u")
    with pytest.raises(JobNotFoundError):
        service.enable_job("ghost", "u")
    with pytest.raises(JobNotFoundError):
        service.get_job_history("ghost")
    assert audit_outcomes(service) == [
        ("update", "failed", "ghost"), ("delete", "failed", "ghost"), ("enable", "failed", "ghost")
    ]


def test_trigger_of_a_disabled_job_is_denied(service: JobManagementService) -> None:
    service.create_job(job_doc("off", enabled=False), "alice")
    with pytest.raises(InvalidTransitionError, match="'off' is disabled; enable it"):
        service.trigger_job("off", "bob")
    assert service.get_job_history("off") == []
    assert audit_outcomes(service)[-1] == ("trigger", "denied", "off")


def test_stale_version_is_refused_and_nothing_is_overwritten(service: JobManagementService) -> None:
    v1 = service.create_job(job_doc("a"), "alice").version
    v2 = service.update_job("a", {"description": "first"}, "alice", v1).version
    with pytest.raises(ConcurrentModificationError, match="'a' was changed by someone else"):
        service.update_job("a", {"description": "second"}, "bob", v1)
    with pytest.raises(ConcurrentModificationError):
        service.delete_job("a", "bob", expected_version=v1)
    view = service.get_job("a")
    assert view.config is not None and view.config.description == "first" and view.version == v2
    assert [o for _, o, _ in audit_outcomes(service)] == ["allowed", "allowed", "denied", "denied"]


@pytest.mark.parametrize("name", ["../evil", "a/b", "Upper", ""], ids=["dotdot", "slash", "upper", "empty"])
def test_bad_names_never_become_files(service: JobManagementService, name: str) -> None:
    with pytest.raises(ValidationError) as info:
        service.create_job(job_doc(name), "u")
    assert "$.name" in [p.json_path for p in info.value.problems]
    with pytest.raises(ValidationError):
        service.delete_job(name, "u")
    assert [p for p in service.jobs_directory.iterdir() if not p.name.startswith(".")] == []
    assert not (service.jobs_directory.parent / "evil.json").exists()


def test_invalid_update_fails_with_every_problem_and_keeps_the_file(service: JobManagementService) -> None:
    v = service.create_job(job_doc("a"), "alice").version
    before = (service.jobs_directory / "a.json").read_bytes()
    with pytest.raises(ValidationError) as info:
        service.update_job("a", {"schedule": "0 0 31 2 *", "overlap": "sometimes", "bogus": 1}, "u", v)
    assert sorted(p.json_path for p in info.value.problems) == ["$.bogus", "$.overlap", "$.schedule"]
    with pytest.raises(ValidationError, match=r"\$.schedule"):
        service.update_job("a", {"schedule": "0 0 31 2 *"}, "u", v)
    with pytest.raises(ValidationError, match="cannot rename"):
        service.update_job("a", {"name": "b"}, "u", v)
    with pytest.raises(ValidationError, match=r"\$.command"):
        service.update_job("a", {"command": None}, "u", v)
    assert (service.jobs_directory / "a.json").read_bytes() == before
    entry = service.list_audit(limit=1)[0]
    assert entry.outcome == "failed" and entry.details["problems"][0]["path"] == "$.command"


def test_replace_job_fixes_a_broken_file(service: JobManagementService) -> None:
    (service.jobs_directory / "a.json").write_text("{not json")
    view = service.get_job("a")
    assert view.config is None and view.problems[0].message.startswith("invalid JSON")
    with pytest.raises(ValidationError, match="invalid JSON"):
        service.update_job("a", {"enabled": False}, "u", view.version)
    with pytest.raises(ConcurrentModificationError):
        service.replace_job("a", job_doc("a"), "u", "stale")
    fixed = service.replace_job("a", job_doc("a", description="fixed"), "u", view.version)
    assert fixed.valid and fixed.config is not None and fixed.config.description == "fixed"
    assert [o for a, o, _ in audit_outcomes(service) if a == "replace"] == ["denied", "allowed"]


def test_invalid_files_are_listed_with_their_problems(service: JobManagementService) -> None:
    service.create_job(job_doc("good"), "u")
    (service.jobs_directory / "bad.json").write_text(json.dumps(job_doc("bad", schedule="61 * * * *")))
    (service.jobs_directory / "Weird Name.json").write_text("[]")
    views = {v.name: v for v in service.list_jobs()}
    assert sorted(views) == ["Weird Name", "bad", "good"]
    assert views["good"].valid and views["good"].next_run is not None
    assert not views["bad"].valid and views["bad"].problems[0].json_path == "$.schedule"
    assert views["bad"].to_dict()["state"] is None
    assert not views["Weird Name"].valid


def test_secrets_are_masked_in_views_audit_store_and_audit_log(service: JobManagementService) -> None:
    env = {"DB_PASSWORD": "hunter2", "api_token": "tok-123", "MY_KEY": "k-9", "LANG": "C"}
    view = service.create_job(job_doc("s", env=env), "alice")
    v2 = service.update_job("s", {"env": {**env, "DB_PASSWORD": "hunter3"}}, "alice", view.version)
    assert v2.config is not None
    assert dict(v2.config.env) == {"DB_PASSWORD": MASK, "api_token": MASK, "MY_KEY": MASK, "LANG": "C"}
    logged = (service.log_directory / "audit.log").read_text("utf-8")
    stored = json.dumps([e.to_dict() for e in service.list_audit()], ensure_ascii=False)
    for secret in ("hunter2", "hunter3", "tok-123", "k-9"):
        assert secret not in logged and secret not in stored
        assert secret not in json.dumps(service.get_job("s").to_dict())
    assert json.loads((service.jobs_directory / "s.json").read_text())["env"]["DB_PASSWORD"] == "hunter3"


def test_audit_log_file_matches_the_store(service: JobManagementService) -> None:
    v = service.create_job(job_doc("a"), "alice").version
    service.disable_job("a", "bob")
    with contextlib.suppress(ConcurrentModificationError):
        service.update_job("a", {"retries": 2}, "carol", v)
    service.record_denied("viewer1", "delete", "a", "role viewer may not delete")
    lines = [json.loads(line) for line in (service.log_directory / "audit.log").read_text().splitlines()]
    stored = [e.to_dict() for e in reversed(service.list_audit())]
    assert lines == stored
    assert [(x["user"], x["action"], x["outcome"]) for x in lines] == [
        ("alice", "create", "allowed"), ("bob", "disable", "allowed"),
        ("carol", "update", "denied"), ("viewer1", "delete", "denied"),
    ]
    assert service.list_audit(user="bob")[0].details["changes"] == {"enabled": {"old": True, "new": False}}
    assert [e.user for e in service.list_audit(job="a", limit=2)] == ["viewer1", "carol"]


def test_validate_reports_like_jobfsm_validate(service: JobManagementService) -> None:
    problems = service.validate({**job_doc("a"), "schedule": "* * * * * *", "working_directory": "/nope"})
    assert [(p.json_path, p.is_error) for p in problems] == [
        ("$.schedule", True), ("$.working_directory", False)]
    assert service.validate(job_doc("a"), name="b")[0].json_path == "$.name"
    assert service.validate(job_doc("a"), name="a") == []
    assert service.list_audit() == []  # looking is not changing


def test_trigger_while_running_is_skipped_by_overlap_policy(service: JobManagementService, tmp_path: Path) -> None:
    go = tmp_path / "go"
    service.create_job(job_doc("slow", command=f'while [ ! -e "{go}" ]; do sleep 0.01; done'), "u")
    first = service.trigger_job("slow", "u")
    assert service.get_job("slow").state is JobState.RUNNING
    second = service.trigger_job("slow", "u")
    skipped = service.store.get_run(second)
    assert skipped.status is RunStatus.SKIPPED and f"run {first} still running (overlap: skip)" in skipped.message
    service.disable_job("slow", "u")  # deferred: lands in disabled when the run ends
    assert service.store.get_state("slow") is JobState.RUNNING
    go.touch()
    assert service.wait_for_run(first, timeout=30).status is RunStatus.SUCCEEDED
    assert service.store.get_state("slow") is JobState.DISABLED
    actions = [(a, o) for a, o, _ in audit_outcomes(service)]
    assert actions == [("create", "allowed"), ("trigger", "allowed"), ("trigger", "allowed"),
                       ("disable", "allowed")]


def test_wait_for_run_times_out(service: JobManagementService) -> None:
    run = service.store.claim_run(Claim("a", trigger=Trigger.MANUAL, node="elsewhere",
                                        started_at=datetime.now(UTC)))
    assert run is not None
    start = time.monotonic()
    with pytest.raises(RunWaitTimeoutError, match=f"run {run.id} is still running"):
        service.wait_for_run(run.id, timeout=0.2)
    assert time.monotonic() - start < 5


# -- through a daemon ------------------------------------------------------------------------


class FakeDaemon:
    """Heartbeats into the store and resolves trigger requests, as the real daemon does."""

    def __init__(self, store: Store, *, resolve: bool = True) -> None:
        self.store = store
        self.resolve = resolve
        self.stop = threading.Event()
        self.runs: list[int] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> FakeDaemon:
        self.store.heartbeat("fake-daemon", pid=os.getpid(), host="here", at=datetime.now(UTC))
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.store.remove_node("fake-daemon")

    def _loop(self) -> None:
        while not self.stop.wait(0.02):
            if not self.resolve:
                continue
            now = datetime.now(UTC)
            for request in self.store.claim_trigger_requests(node="fake-daemon", at=now):
                run = self.store.claim_run(Claim(request.job, trigger=Trigger.MANUAL, node="fake-daemon",
                                                 started_at=now, user=request.user))
                assert run is not None
                self.store.finish_run(Finish(run.id, outcome=Outcome.SUCCEEDED, ended_at=now, exit_code=0,
                                             duration_seconds=0.0))
                self.store.resolve_trigger_request(request.id, run.id)
                self.runs.append(run.id)


def test_trigger_goes_through_a_live_daemon(service: JobManagementService) -> None:
    service.create_job(job_doc("a", command="exit 9"), "u")
    with FakeDaemon(service.store) as daemon:
        assert service.daemon_alive()
        run_id = service.trigger_job("a", "alice")
        assert daemon.runs == [run_id]
        run = service.wait_for_run(run_id, timeout=10)
    assert run.node == "fake-daemon" and run.user == "alice" and run.exit_code == 0
    assert not (service.log_directory / "runs" / "a").exists(), "nothing ran here"
    entry = service.list_audit(limit=1)[0]
    assert (entry.action, entry.outcome, entry.details["run_id"], entry.details["via"]) == (
        "trigger", "allowed", run_id, "daemon")


def test_enable_with_a_live_daemon_only_edits_the_file_and_audits_once(service: JobManagementService) -> None:
    service.create_job(job_doc("a", enabled=False), "u")
    with FakeDaemon(service.store):
        service.enable_job("a", "alice")
    assert service.store.get_state("a") is JobState.DISABLED, "the daemon applies the transition"
    assert service.get_job("a").state is JobState.IDLE, "the view follows the file"
    assert audit_outcomes(service) == [("create", "allowed", "a"), ("enable", "allowed", "a")]


def test_trigger_fails_when_the_daemon_never_picks_it_up(tmp_path: Path) -> None:
    with fresh_service(tmp_path, daemon_pickup_timeout=0.3) as svc:
        svc.create_job(job_doc("a"), "u")
        with FakeDaemon(svc.store, resolve=False), pytest.raises(TriggerTimeoutError, match=r"within 0\.3 s"):
            svc.trigger_job("a", "alice")
        assert svc.list_audit(limit=1)[0].outcome == "failed"


def test_a_stale_heartbeat_is_no_daemon(tmp_path: Path) -> None:
    with fresh_service(tmp_path, heartbeat_max_age=5) as svc:
        svc.store.heartbeat("old", pid=1, host="h", at=datetime.now(UTC) - timedelta(seconds=30))
        assert not svc.daemon_alive()


# -- two real processes ----------------------------------------------------------------------

RACER = r"""
import sys, time, pathlib
from jobfsm.service import JobManagementService
from jobfsm.store import open_store
from jobfsm.errors import ConcurrentModificationError
jobs, logs, url, me, ready, go = sys.argv[1:]
svc = JobManagementService(jobs, logs, open_store(url))
version = svc.get_job("race").version
pathlib.Path(ready).touch()
deadline = time.monotonic() + 60
while not pathlib.Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("never got the go")
    time.sleep(0.001)
try:
    svc.update_job("race", {"description": "x" * 900 + me, "retries": int(me)}, "p" + me, version)
    print("won")
except ConcurrentModificationError:
    print("lost")
svc.close()
"""


def test_two_processes_updating_at_once_one_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'logs' / 'jobfsm.db'}"
    (tmp_path / "jobs").mkdir()
    store = open_store(url)
    svc = JobManagementService(tmp_path / "jobs", tmp_path / "logs", store)
    svc.create_job(job_doc("race"), "setup")
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / "jobs"), str(tmp_path / "logs"), url,
             str(i), str(tmp_path / f"ready{i}"), str(go)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in (1, 2)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{i}").exists() for i in (1, 2)):
            assert time.monotonic() < deadline, "racers did not get ready"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.005)
        go.touch()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            p.kill()
    outcomes = sorted(out.strip() for out, _ in results)
    assert outcomes == ["lost", "won"], results
    winner = "12"[[out.strip() for out, _ in results].index("won")]
    doc = json.loads((tmp_path / "jobs" / "race.json").read_text("utf-8"))
    assert doc["description"] == "x" * 900 + winner and doc["retries"] == int(winner)
    assert svc.get_job("race").valid
    assert [p.name for p in (tmp_path / "jobs").iterdir() if p.name.endswith(".tmp")] == []
    assert sorted((e.user, e.outcome) for e in svc.list_audit(job="race") if e.action == "update") == sorted(
        [("p" + winner, "allowed"), ("p" + "21"["12".index(winner)], "denied")])
    svc.close()
    store.close()


def test_concurrent_threads_never_lose_an_update(service: JobManagementService) -> None:
    service.create_job(job_doc("c", retries=0), "u")
    errors: list[BaseException] = []

    def bump(n: int) -> None:
        for _ in range(n):
            while True:
                view = service.get_job("c")
                assert view.config is not None
                try:
                    service.update_job("c", {"retries": view.config.retries + 1}, "t", view.version)
                    break
                except ConcurrentModificationError:
                    continue
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=bump, args=(10,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    view = service.get_job("c")
    assert view.config is not None and view.config.retries == 40


def test_an_edit_sending_back_masked_secrets_keeps_the_stored_values(jobs_dir: Path, tmp_path: Path) -> None:
    from jobfsm.audit import MASK
    from jobfsm.service import JobManagementService
    from jobfsm.store.memory import MemoryStore

    service = JobManagementService(jobs_dir, tmp_path / "logs", MemoryStore())
    service.create_job(job_doc("db", env={"DB_PASSWORD": "hunter2", "LANG": "C"}), user="ana")
    view = service.get_job("db")
    assert view.config is not None and view.config.env["DB_PASSWORD"] == MASK
    shown = view.config.to_dict(full=False)
    shown["description"] = "nightly dump"
    service.replace_job("db", shown, user="ana", expected_version=view.version)
    on_disk = json.loads((jobs_dir / "db.json").read_text())
    assert on_disk["env"] == {"DB_PASSWORD": "hunter2", "LANG": "C"}
    assert on_disk["description"] == "nightly dump"
    [entry] = [e for e in service.list_audit(job="db") if e.action == "replace"]
    assert set(entry.details["changes"]) == {"description"}
