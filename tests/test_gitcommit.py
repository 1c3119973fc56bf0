"""Config as code (``--git-commit``), in a real temporary git repository: every change made through
the service is one commit of that job's file, authored by the acting user; a file with changes
not committed, a conflict or a merge in progress refuses the change and nothing is written."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest

from jobfsm.cli import run
from jobfsm.errors import WorkTreeError
from jobfsm.service import JobManagementService
from jobfsm.service.gitcommit import GitCommitter
from jobfsm.store import open_store
from tests.conftest import job_doc

pytestmark = pytest.mark.skipif(
    subprocess.run(["git", "--version"], capture_output=True, check=False).returncode != 0,
    reason="needs git",
)


def git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Someone", "-c", "user.email=someone@example.com",
         "-c", "commit.gpgSign=false", *args],
        capture_output=True, text=True, check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {args}: {done.stderr}")
    return done.stdout


def write(jobs: Path, name: str, **fields: object) -> Path:
    path = jobs / f"{name}.json"
    path.write_text(json.dumps(job_doc(name, **fields), indent=2) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose ``jobs/`` folder holds two committed jobs."""
    root = tmp_path / "repo"
    (root / "jobs").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("jobs/.jobfsm.lock\n")
    write(root / "jobs", "nightly-backup", enabled=True)
    write(root / "jobs", "report", enabled=True)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "jobs")
    return root


@pytest.fixture
def service(repo: Path, tmp_path: Path) -> Iterator[JobManagementService]:
    store = open_store(f"sqlite:///{tmp_path / 'jobfsm.db'}")
    svc = JobManagementService(
        repo / "jobs", tmp_path / "logs", store, file_hooks=[GitCommitter(repo / "jobs")]
    )
    yield svc
    svc.close()
    store.close()


def commits(repo: Path) -> list[str]:
    """``author name <email> | committer | subject`` of every commit, newest first."""
    return git(repo, "log", "--format=%an <%ae> | %cn | %s").splitlines()


def files_of(repo: Path, rev: str = "HEAD") -> list[str]:
    return git(repo, "show", "--format=", "--name-status", rev).split()


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    return run(list(argv), out, err), out.getvalue(), err.getvalue()


def test_cli_disable_is_one_commit_authored_by_the_user(repo: Path, tmp_path: Path) -> None:
    code, out, err = cli(
        "disable", "nightly-backup", "--jobs", str(repo / "jobs"), "--logs", str(tmp_path / "logs"),
        "--git-commit", "--user", "alice",
    )
    assert code == 0, err
    assert out == "job 'nightly-backup' disabled (state: disabled); committed in git\n"
    assert commits(repo)[0] == "alice <> | jobfsm | jobfsm: disable nightly-backup (by alice)"
    assert len(commits(repo)) == 2
    assert files_of(repo) == ["M", "jobs/nightly-backup.json"]
    assert git(repo, "status", "--porcelain") == ""  # what is on disk is what was committed
    assert json.loads(git(repo, "show", "HEAD:jobs/nightly-backup.json"))["enabled"] is False


def test_each_change_is_one_commit_and_a_no_op_none(service: JobManagementService, repo: Path) -> None:
    service.disable_job("report", "alice")
    service.enable_job("report", "bob")
    service.enable_job("report", "bob")  # already enabled: nothing written, nothing committed
    version = service.get_job("report").version
    service.update_job("report", {"schedule": "0 3 * * *"}, "carol", expected_version=version)
    assert [c.split(" | ")[2] for c in commits(repo)[:3]] == [
        "jobfsm: update report (by carol)",
        "jobfsm: enable report (by bob)",
        "jobfsm: disable report (by alice)",
    ]
    assert len(commits(repo)) == 4
    assert '"schedule": "0 3 * * *"' in git(repo, "show", "HEAD")


def test_create_and_delete_are_commits(service: JobManagementService, repo: Path) -> None:
    service.create_job(job_doc("fresh"), "alice")
    assert commits(repo)[0] == "alice <> | jobfsm | jobfsm: create fresh (by alice)"
    assert files_of(repo) == ["A", "jobs/fresh.json"]
    service.delete_job("nightly-backup", "bob")
    assert commits(repo)[0] == "bob <> | jobfsm | jobfsm: delete nightly-backup (by bob)"
    assert files_of(repo) == ["D", "jobs/nightly-backup.json"]
    assert "jobs/nightly-backup.json" not in git(repo, "ls-tree", "-r", "--name-only", "HEAD")
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("how", ["modified", "staged", "untracked"])
def test_a_file_with_uncommitted_changes_is_refused_and_untouched(
    service: JobManagementService, repo: Path, how: str
) -> None:
    jobs = repo / "jobs"
    if how == "untracked":
        path = write(jobs, "handmade", description="never committed")
        name = "handmade"
    else:
        name = "report"
        path = write(jobs, name, description="edited by hand", enabled=True)
        if how == "staged":
            git(repo, "add", str(path))
    before = path.read_bytes()
    with pytest.raises(WorkTreeError, match=r"not changed: the file has changes not committed to git"):
        service.disable_job(name, "alice")
    assert path.read_bytes() == before
    assert len(commits(repo)) == 1
    entry = service.list_audit(job=name, limit=1)[0]
    assert entry.action == "disable" and entry.outcome == "denied"
    # and the other, clean job can still be changed: only its own file is committed
    service.disable_job("nightly-backup", "alice")
    assert files_of(repo) == ["M", "jobs/nightly-backup.json"]
    assert path.read_bytes() == before


def test_a_delete_of_a_dirty_file_is_refused(service: JobManagementService, repo: Path) -> None:
    path = write(repo / "jobs", "report", description="edited by hand", enabled=True)
    with pytest.raises(WorkTreeError):
        service.delete_job("report", "alice")
    assert path.exists() and "edited by hand" in path.read_text()


def test_a_merge_in_progress_or_a_conflict_refuses(service: JobManagementService, repo: Path) -> None:
    jobs = repo / "jobs"
    git(repo, "checkout", "-q", "-b", "other")
    write(jobs, "report", description="theirs", enabled=True)
    git(repo, "commit", "-q", "-am", "theirs")
    git(repo, "checkout", "-q", "main")
    write(jobs, "report", description="ours", enabled=True)
    git(repo, "commit", "-q", "-am", "ours")
    git(repo, "merge", "other", check=False)  # conflicts in report.json
    before = (jobs / "nightly-backup.json").read_bytes()
    with pytest.raises(WorkTreeError, match="in the middle of a merge; finish or abort it first"):
        service.disable_job("nightly-backup", "alice")
    assert (jobs / "nightly-backup.json").read_bytes() == before
    assert commits(repo)[0].endswith("| ours")
    git(repo, "merge", "--abort")
    service.disable_job("nightly-backup", "alice")  # once the merge is over, changes go through
    assert commits(repo)[0].endswith("jobfsm: disable nightly-backup (by alice)")


def test_an_unmerged_file_without_a_merge_is_a_conflict(service: JobManagementService, repo: Path) -> None:
    # a conflicting stash pop leaves an unmerged file and no MERGE_HEAD; the raw editor may
    # replace a file that is not even JSON (conflict markers), but not this one
    jobs = repo / "jobs"
    write(jobs, "report", description="stashed", enabled=True)
    git(repo, "stash", "-q")
    write(jobs, "report", description="committed", enabled=True)
    git(repo, "commit", "-q", "-am", "committed")
    git(repo, "stash", "pop", check=False)
    before = (jobs / "report.json").read_bytes()
    with pytest.raises(WorkTreeError, match="has a merge conflict in git"):
        service.replace_job("report", job_doc("report", enabled=False), "alice", expected_version=None)
    assert (jobs / "report.json").read_bytes() == before


def test_not_a_work_tree_is_one_line_and_nothing_changes(tmp_path: Path) -> None:
    jobs = tmp_path / "plain" / "jobs"
    jobs.mkdir(parents=True)
    path = write(jobs, "report", enabled=True)
    before = path.read_bytes()
    code, out, err = cli(
        "disable", "report", "--jobs", str(jobs), "--logs", str(tmp_path / "logs"), "--git-commit"
    )
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(
        f"jobfsm: error: --git-commit: the jobs folder '{jobs}' is not in a git work tree ("
    )
    assert "run `git init` there or in a folder above it, or leave out --git-commit" in err
    assert path.read_bytes() == before


def test_admin_with_git_commit_outside_a_work_tree_is_one_line(tmp_path: Path) -> None:
    from jobfsm.admin.accounts import Accounts

    jobs, logs = tmp_path / "jobs", tmp_path / "logs"
    jobs.mkdir()
    Accounts(logs / "users.json").add("alice", "a long enough password", "admin")
    code, _, err = cli("admin", "--jobs", str(jobs), "--logs", str(logs), "--git-commit", "--port", "0")
    assert code == 1 and err.startswith("jobfsm: error: --git-commit: the jobs folder") and err.count("\n") == 1


def test_author_names_git_cannot_take_are_cleaned(service: JobManagementService, repo: Path) -> None:
    service.disable_job("report", "eve <evil>\nx")
    assert commits(repo)[0] == "eve evilx <> | jobfsm | jobfsm: disable report (by eve evilx)"


def test_cli_create_and_delete_commit(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "fresh.json"
    source.write_text(json.dumps(job_doc("fresh")))
    where = ("--jobs", str(repo / "jobs"), "--logs", str(tmp_path / "logs"), "--git-commit")
    monkeypatch.setenv("LOGNAME", "dana")  # the default --user: the login name
    monkeypatch.setenv("USER", "dana")
    code, out, err = cli("create", str(source), *where)
    assert code == 0, err
    assert out.endswith("; committed in git\n")
    code, out, err = cli("delete", "fresh", "--yes", *where)
    assert code == 0, err
    assert commits(repo)[:2] == [
        "dana <> | jobfsm | jobfsm: delete fresh (by dana)",
        "dana <> | jobfsm | jobfsm: create fresh (by dana)",
    ]
    assert files_of(repo) == ["D", "jobs/fresh.json"]


def test_the_admin_pages_changes_are_commits_by_the_account(service: JobManagementService, repo: Path) -> None:
    gr = pytest.importorskip("gradio")
    from jobfsm.admin.handlers import JobsHandlers

    handlers = JobsHandlers(service, role_of=lambda r: "admin")
    assert handlers.disable("report", gr.Request(username="alice")).ok
    assert commits(repo)[0] == "alice <> | jobfsm | jobfsm: disable report (by alice)"
    path = write(repo / "jobs", "nightly-backup", description="edited by hand", enabled=True)
    before = path.read_bytes()
    result = handlers.disable("nightly-backup", gr.Request(username="alice"))
    assert not result.ok and "not changed: the file has changes not committed to git" in result.message
    assert path.read_bytes() == before and len(commits(repo)) == 2
