"""CRUD through two service instances over one folder and one store (as the admin page and
the CLI would be), beside a plain dict model, with invariants checked after every step."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from jobfsm.config.loader import validate_file
from jobfsm.errors import (
    ConcurrentModificationError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobNotFoundError,
    ValidationError,
)
from jobfsm.model import RunStatus
from jobfsm.service import JobManagementService
from jobfsm.store import open_store
from tests.strategies import job_documents

names_strategy = st.sampled_from(["alpha", "beta", "gamma", "delta.1", "e_2"])
invalid_changes = st.sampled_from([
    {"schedule": "61 * * * *"},
    {"schedule": "* * * * * *"},
    {"overlap": "sometimes"},
    {"timezone": "Mars/Olympus"},
    {"command": None},
    {"name": "renamed"},
    {"typo_key": 1},
])
valid_changes = st.sampled_from([
    {"description": "nightly"},
    {"description": None},
    {"retries": 3},
    {"timezone": "Europe/Berlin"},
    {"env": {"API_TOKEN": "s3cret", "LANG": "C"}},
    {"overlap": "allow"},
    {"schedule": "@hourly"},
])


class ServiceMachine(RuleBasedStateMachine):
    names = Bundle("names")

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="jobfsm-stateful-"))
        (self.root / "jobs").mkdir()
        self.store = open_store(f"sqlite:///{self.root / 'logs' / 'jobfsm.db'}")
        self.services = [
            JobManagementService(self.root / "jobs", self.root / "logs", self.store),
            JobManagementService(self.root / "jobs", self.root / "logs", self.store),
        ]
        self.model: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, str] = {}
        self.old_versions: dict[str, list[str]] = {}
        self.operations = 0

    def teardown(self) -> None:
        for svc in self.services:
            svc.close()
        self.store.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------
    def call(self, svc: int, action: str, job: str | None, outcome: str, fn: Any,
             expect: type[BaseException] | None = None) -> Any:
        before = len(self.store.list_audit())
        result = None
        if expect is None:
            result = fn(self.services[svc])
        else:
            with pytest.raises(expect):
                fn(self.services[svc])
        self.operations += 1
        entries = self.store.list_audit()
        assert len(entries) == before + 1, f"{action} wrote {len(entries) - before} audit entries"
        newest = entries[0]
        assert (newest.action, newest.outcome, newest.job) == (action, outcome, job)
        return result

    def remember(self, name: str, version: str | None) -> None:
        assert version is not None
        old = self.versions.get(name)
        if old is not None and old != version:
            self.old_versions.setdefault(name, []).append(old)
        self.versions[name] = version

    # -- rules -----------------------------------------------------------------------------
    @rule(target=names, svc=st.integers(0, 1), name=names_strategy, data=st.data())
    def create(self, svc: int, name: str, data: st.DataObject) -> str:
        doc = data.draw(job_documents(name=name))
        doc["command"] = ["/bin/true"]
        if name in self.model:
            self.call(svc, "create", name, "failed", lambda s: s.create_job(doc, "u"),
                      JobAlreadyExistsError)
        else:
            view = self.call(svc, "create", name, "allowed", lambda s: s.create_job(doc, "u"))
            self.model[name] = doc
            self.remember(name, view.version)
        return name

    @rule(svc=st.integers(0, 1), name=st.sampled_from(["../up", "Caps", "", "a/b"]))
    def create_bad_name(self, svc: int, name: str) -> None:
        doc = {"name": name, "schedule": "@daily", "command": "x", "working_directory": "/tmp",
               "enabled": True}
        self.call(svc, "create", name, "failed", lambda s: s.create_job(doc, "u"), ValidationError)

    @rule(svc=st.integers(0, 1), name=names, change=valid_changes)
    def update(self, svc: int, name: str, change: dict[str, Any]) -> None:
        if name not in self.model:
            self.call(svc, "update", name, "failed",
                      lambda s: s.update_job(name, change, "u", None), JobNotFoundError)
            return
        version = self.versions[name]
        view = self.call(svc, "update", name, "allowed",
                         lambda s: s.update_job(name, change, "u", version))
        doc = {**self.model[name], **change}
        self.model[name] = {k: v for k, v in doc.items() if v is not None}
        self.remember(name, view.version)

    @rule(svc=st.integers(0, 1), name=names, change=invalid_changes)
    def update_invalid(self, svc: int, name: str, change: dict[str, Any]) -> None:
        if name not in self.model:
            return
        self.call(svc, "update", name, "failed",
                  lambda s: s.update_job(name, change, "u", self.versions[name]), ValidationError)

    @rule(svc=st.integers(0, 1), name=names, data=st.data())
    def update_stale(self, svc: int, name: str, data: st.DataObject) -> None:
        stale = [v for v in self.old_versions.get(name, []) if v != self.versions.get(name)]
        if name not in self.model or not stale:
            return
        version = data.draw(st.sampled_from(stale))
        self.call(svc, "update", name, "denied",
                  lambda s: s.update_job(name, {"retries": 99}, "u", version),
                  ConcurrentModificationError)

    @rule(svc=st.integers(0, 1), name=names, enable=st.booleans())
    def toggle(self, svc: int, name: str, enable: bool) -> None:
        action = "enable" if enable else "disable"
        def call(s: JobManagementService) -> Any:
            return s.enable_job(name, "u") if enable else s.disable_job(name, "u")
        if name not in self.model:
            self.call(svc, action, name, "failed", call, JobNotFoundError)
            return
        view = self.call(svc, action, name, "allowed", call)
        self.model[name] = {**self.model[name], "enabled": enable}
        self.remember(name, view.version)

    @rule(svc=st.integers(0, 1), name=names)
    def trigger(self, svc: int, name: str) -> None:
        if name not in self.model:
            self.call(svc, "trigger", name, "failed", lambda s: s.trigger_job(name, "u"),
                      JobNotFoundError)
            return
        if not self.model[name]["enabled"]:
            self.call(svc, "trigger", name, "denied", lambda s: s.trigger_job(name, "u"),
                      InvalidTransitionError)
            return
        run_id = self.call(svc, "trigger", name, "allowed", lambda s: s.trigger_job(name, "u"))
        run = self.services[svc].wait_for_run(run_id, timeout=60)
        assert run.status in (RunStatus.SUCCEEDED, RunStatus.SKIPPED)

    @rule(svc=st.integers(0, 1), name=consumes(names), stale=st.booleans())
    def delete(self, svc: int, name: str, stale: bool) -> None:
        if name not in self.model:
            self.call(svc, "delete", name, "failed", lambda s: s.delete_job(name, "u"),
                      JobNotFoundError)
            return
        old = [v for v in self.old_versions.get(name, []) if v != self.versions[name]]
        if stale and old:
            self.call(svc, "delete", name, "denied",
                      lambda s: s.delete_job(name, "u", expected_version=old[0]),
                      ConcurrentModificationError)
            return
        version = self.versions[name]
        self.call(svc, "delete", name, "allowed",
                  lambda s: s.delete_job(name, "u", expected_version=version))
        del self.model[name]
        del self.versions[name]
        self.old_versions.pop(name, None)

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def folder_holds_exactly_the_model(self) -> None:
        files = sorted(p.stem for p in (self.root / "jobs").glob("*.json"))
        assert files == sorted(self.model)
        for name, doc in self.model.items():
            path = self.root / "jobs" / f"{name}.json"
            assert json.loads(path.read_text("utf-8")) == doc, "a write was lost or overwritten"
            assert validate_file(path).valid

    @rule()
    def both_services_see_the_same(self) -> None:
        """A rule rather than an invariant: listing validates every file, twice (it is slow)."""
        a, b = ([(v.name, v.version, v.enabled) for v in s.list_jobs()] for s in self.services)
        assert a == b
        assert {n: v for n, v, _ in a} == self.versions

    @invariant()
    def one_audit_entry_per_operation_in_store_and_file(self) -> None:
        assert len(self.store.list_audit()) == self.operations
        lines = (self.root / "logs" / "audit.log").read_text("utf-8").split("\n")[:-1] if self.operations else []
        assert len(lines) == self.operations
        assert all(line.isascii() and json.loads(line) for line in lines)
        assert "s3cret" not in "".join(lines)


ServiceMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=20, deadline=None)
TestServiceMachine = ServiceMachine.TestCase
