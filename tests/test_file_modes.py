"""Files that may hold secrets are created for their owner only, whatever the umask lets through:
the SQLite store, run output files, job files written through the service, the admin page's
signing secret and its revoked sessions; the audit log for its owner and group (0640). The
accounts file is tested with the accounts (tests/test_admin_accounts.py)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfsm.service import JobManagementService
from tests.conftest import job_doc

GROUP_OR_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common umask 022, which leaves files readable by everybody unless we say otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def service(tmp_path: Path, loose_umask: None) -> Iterator[JobManagementService]:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    svc = JobManagementService(jobs, tmp_path / "logs")
    try:
        yield svc
    finally:
        svc.close()


def test_the_store_file_is_the_owners_only(service: JobManagementService, tmp_path: Path) -> None:
    service.create_job(job_doc("hello"), "alice")  # something in it: the WAL files exist too
    database = tmp_path / "logs" / "jobfsm.db"
    assert mode(database) == 0o600
    for sibling in tmp_path.glob("logs/jobfsm.db-*"):
        assert mode(sibling) & GROUP_OR_OTHERS == 0, sibling.name


def test_run_output_files_are_the_owners_only(service: JobManagementService) -> None:
    service.create_job(job_doc("secretive", command="echo TOKEN=abc; echo oops >&2"), "alice")
    run = service.wait_for_run(service.trigger_job("secretive", "alice"), timeout=60)
    assert run.stdout_path and run.stderr_path
    assert "TOKEN=abc" in Path(run.stdout_path).read_text()
    assert mode(run.stdout_path) == 0o600
    assert mode(run.stderr_path) == 0o600


def test_job_files_written_by_the_service_are_the_owners_only(service: JobManagementService) -> None:
    service.create_job(job_doc("vault", env={"VAULT_TOKEN": "s3cr3t"}), "alice")
    path = service.jobs_directory / "vault.json"
    assert mode(path) == 0o600
    service.disable_job("vault", "alice")
    assert mode(path) == 0o600


def test_a_replaced_job_file_keeps_the_mode_its_owner_chose(service: JobManagementService) -> None:
    service.create_job(job_doc("shared"), "alice")
    path = service.jobs_directory / "shared.json"
    path.chmod(0o640)  # the operator lets a group read it
    service.disable_job("shared", "alice")
    assert mode(path) == 0o640


def test_the_audit_log_is_for_its_owner_and_group(service: JobManagementService, tmp_path: Path) -> None:
    service.create_job(job_doc("audited", env={"API_TOKEN": "t0ps3cret"}), "alice")
    audit_log = tmp_path / "logs" / "audit.log"
    assert "audited" in audit_log.read_text()
    assert mode(audit_log) == 0o640


def test_the_admin_pages_signing_secret_is_the_owners_only(tmp_path: Path, loose_umask: None) -> None:
    from jobfsm.admin.security import load_secret

    path = tmp_path / "logs" / "admin-secret"
    secret = load_secret(path)
    assert path.read_text().strip() == secret
    assert mode(path) == 0o600
    assert load_secret(path) == secret  # read back, not written again


def test_the_revoked_sessions_file_is_the_owners_only(tmp_path: Path, loose_umask: None) -> None:
    from jobfsm.admin.security import Revocations

    path = tmp_path / "logs" / "admin-revoked.json"
    Revocations(path).add("a-session-id", until=2_000_000_000.0, now=1_900_000_000.0)
    assert "a-session-id" in path.read_text()
    assert mode(path) == 0o600
