"""The ``jobfsm-validate`` pre-commit hook, run by a real ``pre-commit`` on a temporary git
repository. pre-commit installs jobfsm from this repository into an environment of its own
(``language: python``), which takes jobfsm's dependencies from the package index and nothing
else from the network; one environment serves every test of this module.

Slow: the first run installs that environment (a minute or more on a loaded machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import job_doc

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = str(Path(sys.executable).parent / "pre-commit")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (ROOT / ".git").exists():
        pytest.skip("the hook is installed from this repository's git history, and this copy has none")
    return tmp_path_factory.mktemp("pre-commit-home")


def git_repo(path: Path, files: dict[str, object]) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    for rel, content in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content if isinstance(content, str) else json.dumps(content))
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    return path


def pre_commit(home: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JOBFSM_", "GIT_"))},
        "PRE_COMMIT_HOME": str(home), "VIRTUALENV_OVERRIDE_APP_DATA": str(home / "virtualenv"),
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    return subprocess.run([PRE_COMMIT, *argv], cwd=cwd, capture_output=True, text=True, env=env, timeout=900)


def test_hook_file_declares_jobfsm_validate() -> None:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "jobfsm-validate"
    assert hook["entry"] == "jobfsm validate" and hook["language"] == "python"
    assert hook["files"] == r"^jobs/.*\.json$"


def test_try_repo_fails_on_a_bad_job_file_and_passes_once_it_is_fixed(pre_commit_home: Path, tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo", {
        "jobs/good.json": job_doc("good"),
        "jobs/bad.json": job_doc("bad", schedule="61 * * * *"),
        "other/not-a-job.json": {"unrelated": True},  # outside jobs/: not the hook's business
    })
    done = pre_commit(pre_commit_home, repo, "try-repo", str(ROOT), "jobfsm-validate", "--all-files")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "jobs/bad.json: $.schedule: minute field '61' is out of range (0-59)" in done.stdout
    assert "2 files checked: 1 valid, 1 invalid" in done.stdout
    assert "not-a-job" not in done.stdout
    (repo / "jobs" / "bad.json").write_text(json.dumps(job_doc("bad", schedule="1 * * * *")))
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    done = pre_commit(pre_commit_home, repo, "try-repo", str(ROOT), "jobfsm-validate", "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "jobfsm validate" in done.stdout and "Passed" in done.stdout


def test_the_folder_is_chosen_by_overriding_files(pre_commit_home: Path, tmp_path: Path) -> None:
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    config = {"repos": [{"repo": str(ROOT), "rev": rev,
                         "hooks": [{"id": "jobfsm-validate", "files": r"^deploy/jobs/.*\.json$"}]}]}
    repo = git_repo(tmp_path / "repo", {
        ".pre-commit-config.yaml": yaml.safe_dump(config),
        "deploy/jobs/nightly.json": job_doc("nightly", timezone="Europe/Berlln"),
        "jobs/ignored.json": {"not": "checked"},
    })
    done = pre_commit(pre_commit_home, repo, "run", "--all-files")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "deploy/jobs/nightly.json: $.timezone: unknown time zone 'Europe/Berlln'" in done.stdout
    assert "ignored" not in done.stdout
