"""A newcomer's first five minutes, with real processes: ``jobfsm init`` makes a repository that
validates and whose CI command works, refuses to overwrite; ``jobfsm start`` says what it loaded
and what fires next (or how to enable a job); ``jobfsm status`` says the same with no daemon."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from jobfsm.adopt.firstrun import render, summarize
from jobfsm.config.loader import validate_file
from jobfsm.config.schema import schema_text
from tests.conftest import job_doc, wait_for

JOBFSM = str(Path(sys.executable).parent / "jobfsm")


def jobfsm(*argv: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFSM_")}
    return subprocess.run([JOBFSM, *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


# -- init -------------------------------------------------------------------------------------


def test_init_makes_a_repository_that_validates_and_whose_ci_step_works(tmp_path: Path) -> None:
    done = jobfsm("init", "repo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    repo = tmp_path / "repo"
    made = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    assert made == [".github/workflows/jobfsm.yml", "deploy/jobfsm.service", "jobs/example.json",
                    "schemas/job.schema.json"]
    example = validate_file(repo / "jobs" / "example.json")
    assert example.valid and example.config is not None and not example.config.enabled
    assert "'jobfsm enable example'" in example.config.description  # the comment is the description
    document = json.loads((repo / "jobs" / "example.json").read_text())
    assert (repo / "jobs" / document["$schema"]).resolve() == (repo / "schemas" / "job.schema.json")
    assert (repo / "schemas" / "job.schema.json").read_text() == schema_text()
    assert "jobfsm enable example" in done.stdout

    # CI: the workflow's steps, and its validate step run as CI would run it, in the repository
    workflow = yaml.safe_load((repo / ".github/workflows/jobfsm.yml").read_text())
    runs = [step["run"] for step in workflow["jobs"]["validate"]["steps"] if "run" in step]
    assert runs[-1] == "jobfsm validate --format github jobs/"
    assert jobfsm(*shlex.split(runs[-1])[1:], cwd=repo).returncode == 0
    (repo / "jobs" / "broken.json").write_text(json.dumps(job_doc("broken", schedule="61 * * * *")))
    failed = jobfsm(*shlex.split(runs[-1])[1:], cwd=repo)
    assert failed.returncode == 1
    assert failed.stdout.startswith("::error file=jobs/broken.json,") and "$.schedule" in failed.stdout

    # systemd: the unit starts this jobfsm in this folder
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(repo / "deploy" / "jobfsm.service")
    service = unit["Service"]
    program, command = shlex.split(service["ExecStart"])[:2]
    assert (program, command) == (JOBFSM, "start")
    assert service["WorkingDirectory"] == str(repo)
    assert f"JOBFSM_JOBS={repo / 'jobs'}" in (repo / "deploy" / "jobfsm.service").read_text()
    if shutil.which("systemd-analyze"):  # where systemd is there, it checks the unit itself
        verify = subprocess.run(["systemd-analyze", "verify", str(repo / "deploy" / "jobfsm.service")],
                                capture_output=True, text=True, timeout=60)
        assert "jobfsm.service" not in verify.stderr or "error" not in verify.stderr.lower(), verify.stderr


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "example.json").write_text("mine\n")
    done = jobfsm("init", cwd=tmp_path)
    assert done.returncode == 1
    assert (tmp_path / "jobs" / "example.json").read_text() == "mine\n"
    assert not (tmp_path / "deploy").exists() and not (tmp_path / ".github").exists()
    assert done.stderr.splitlines() == [
        f"jobfsm init: '{tmp_path / 'jobs' / 'example.json'}' exists; not written over",
        "jobfsm init: nothing written in '.' (move those files away, or choose another DIR)",
    ]
    (tmp_path / "file").write_text("")
    assert jobfsm("init", "file", cwd=tmp_path).returncode == 2


# -- the first run ------------------------------------------------------------------------------


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def start(folder: Path, daemons: list[subprocess.Popen[str]]) -> tuple[subprocess.Popen[str], Path]:
    stderr = folder / "start.err"
    with open(stderr, "w") as sink:  # a file, not a pipe: nothing blocks a daemon that writes more
        proc = subprocess.Popen([JOBFSM, "start"], cwd=folder, stdout=subprocess.DEVNULL, stderr=sink, text=True,
                                env={k: v for k, v in os.environ.items() if not k.startswith("JOBFSM_")})
    daemons.append(proc)
    return proc, stderr


def test_start_says_what_it_loaded_and_what_fires_next(tmp_path: Path, daemons: list[subprocess.Popen[str]]) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "new-year.json").write_text(json.dumps(job_doc("new-year", schedule="0 0 1 1 *", timezone="UTC")))
    (jobs / "quiet.json").write_text(json.dumps(job_doc("quiet", enabled=False)))
    (jobs / "broken.json").write_text('{"name": "broken"}')
    proc, stderr = start(tmp_path, daemons)
    text = str(wait_for(lambda: "next fire:" in stderr.read_text() and stderr.read_text(), 30,
                        "the start-up summary", lambda: stderr.read_text()))
    year = datetime.now(UTC).year + 1
    lines = [line for line in text.splitlines() if line.startswith("jobfsm start: ")]
    assert lines[0] == "jobfsm start: loaded 2 job(s) from 'jobs': 1 enabled, 1 disabled, 1 invalid"
    assert lines[1] == ("jobfsm start:   invalid, not loaded: jobs/broken.json "
                        "(see 'jobfsm validate jobs/broken.json')")
    assert lines[2].startswith(f"jobfsm start: next fire: {year}-01-01 00:00:00+00:00 (in ")
    assert lines[2].endswith("job 'new-year'")
    assert not any("no job is enabled" in line for line in lines)
    # a daemon is alive: status shows its table and no first-run note
    wait_for(lambda: "no daemon" not in jobfsm("status", cwd=tmp_path).stderr, 30, "status to see the daemon")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_start_and_status_say_how_to_enable_a_job_when_none_is(
    tmp_path: Path, daemons: list[subprocess.Popen[str]]
) -> None:
    assert jobfsm("init", cwd=tmp_path).returncode == 0
    status = jobfsm("status", cwd=tmp_path)
    assert status.returncode == 0
    assert status.stderr.splitlines() == [
        "no daemon is running; 'jobfsm start' would load 1 job(s) from 'jobs': 0 enabled, 1 disabled, 0 invalid",
        "no job is enabled, so nothing will run: enable one with 'jobfsm enable example' (or set "
        "\"enabled\": true in its file); a running daemon picks it up by itself",
    ]
    assert "example" in status.stdout
    proc, stderr = start(tmp_path, daemons)
    wait_for(lambda: "no job is enabled" in stderr.read_text(), 30, "the hint", lambda: stderr.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    # following the hint makes the next start schedule the example
    assert jobfsm("enable", "example", cwd=tmp_path).returncode == 0
    status = jobfsm("status", cwd=tmp_path)
    assert "1 enabled, 0 disabled" in status.stderr and "next fire: " in status.stderr
    assert "job 'example'" in status.stderr and "no job is enabled" not in status.stderr


def test_an_empty_folder_says_where_jobs_come_from(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    status = jobfsm("status", cwd=tmp_path)
    assert status.stderr.splitlines() == [
        "no daemon is running ('jobfsm start' runs one)",
        "no job files in 'jobs': write one ('jobfsm init' makes an example), or bring a crontab over "
        "with 'jobfsm import crontab FILE'",
    ]


def test_the_next_fire_is_the_earliest_enabled_one_and_other_folders_are_named() -> None:
    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    summary = summarize([("b", True, now + timedelta(hours=2)), ("a", True, now + timedelta(hours=2)),
                         ("c", False, now + timedelta(minutes=1)), ("d", True, None)], ["x/z.json"])
    assert (summary.jobs, summary.enabled, summary.next_job, summary.invalid) == (4, 3, "a", ("x/z.json",))
    lines = render(summarize([("c", False, None)], []), "/srv/my jobs", now)
    assert "enable one with 'jobfsm --jobs '/srv/my jobs' enable c'" in lines[-1]
    assert render(summary, "jobs", now)[2] == "next fire: 2026-12-03 10:00:00+00:00 (in 2 h 0 min), job 'a'"
