"""The command line, in-process through ``run(argv, stdout, stderr)``, plus a few real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest

from jobfsm.cli import run

ROOT = Path(__file__).resolve().parent.parent


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_validate_the_example_jobs() -> None:
    code, out, _ = cli("validate", str(ROOT / "jobs"))
    assert code == 0, out
    assert "4 files checked: 4 valid, 0 invalid" in out


def test_validate_reports_every_problem_and_exits_1(write_job, jobs_dir: Path) -> None:
    write_job("good")
    write_job("bad", schedule="0 0 31 2 *", overlap="never")
    code, out, _ = cli("validate", str(jobs_dir))
    assert code == 1
    lines = out.splitlines()
    # the schema's problem and the cron problem together: one pass shows everything to fix
    assert lines[0].startswith(f"{jobs_dir / 'bad.json'}: $.overlap: 'never' is not one of")
    assert lines[1].startswith(f"{jobs_dir / 'bad.json'}: $.schedule: ") and "February" in lines[1]
    assert "2 files checked: 1 valid, 1 invalid (2 errors, 0 warnings)" in out


def test_validate_json_format(write_job, jobs_dir: Path) -> None:
    write_job("good")
    write_job("bad", schedule="61 * * * *")
    code, out, _ = cli("validate", "--format", "json", str(jobs_dir))
    assert code == 1
    doc = json.loads(out)
    by_name = {Path(f["path"]).name: f for f in doc["files"]}
    assert by_name["good.json"]["valid"] is True and by_name["good.json"]["errors"] == []
    [error] = by_name["bad.json"]["errors"]
    assert error["path"] == "$.schedule" and "minute" in error["message"]


def test_validate_github_annotations(write_job, jobs_dir: Path) -> None:
    write_job("bad", raw='{"name": "bad",\n "x": }')
    code, out, _ = cli("validate", "--format", "github", str(jobs_dir))
    assert code == 1
    assert out.startswith(f"::error file={jobs_dir / 'bad.json'},line=2,col=7,title=jobfsm validate::$: invalid JSON")


def test_warnings_pass_unless_strict(write_job, jobs_dir: Path) -> None:
    write_job("elsewhere", working_directory="/nonexistent/jobfsm")
    code, out, _ = cli("validate", str(jobs_dir))
    assert code == 0 and "warning: directory '/nonexistent/jobfsm' does not exist" in out
    code, _, _ = cli("validate", "--strict", str(jobs_dir))
    assert code == 1


def test_validate_a_single_file_and_global_options_after_the_command(write_job, jobs_dir) -> None:
    path = write_job("good")
    assert cli("validate", str(path), "--jobs", "elsewhere")[0] == 0


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["validate", "/nonexistent/path"], "no such file or folder"),
        (["validate"], "the following arguments are required: PATH"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["next", "@daily", "-n", "0"], "-n must be at least 1"),
        (["next", "@daily", "--after", "yesterday"], "not an ISO 8601 time"),
        (["validate", "--format", "xml", "."], "invalid choice: 'xml'"),
        ([], "a command is required"),
        (["start", "--keep-runs", "-1"], "--keep-runs cannot be negative"),
        (["start", "--keep-days", "nan"], "--keep-days must be a finite number"),
    ],
    ids=["missing-path", "no-path", "unknown-command", "bad-n", "bad-after", "bad-format", "nothing",
         "negative-keep-runs", "nan-keep-days"],
)
def test_bad_usage_is_one_line_and_exit_2(argv, fragment) -> None:
    code, _out, err = cli(*argv)
    assert code == 2
    lines = [line for line in err.splitlines() if not line.startswith("usage:")]
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err


def test_help_and_version() -> None:
    code, out, _ = cli("--help")
    assert code == 0 and "validate" in out and "--jobs DIR" in out
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("jobfsm 0.")


def test_schema_prints_the_published_schema() -> None:
    code, out, _ = cli("schema")
    assert code == 0
    assert json.loads(out) == json.loads((ROOT / "schemas" / "job.schema.json").read_text())


def test_next_for_an_expression_marks_dst_shifts() -> None:
    code, out, _ = cli(
        "next", "30 2 * * *", "--tz", "Europe/Berlin", "--after", "2026-03-28T12:00", "-n", "2",
        "--format", "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["expression"] == "30 2 * * *" and doc["timezone"] == "Europe/Berlin"
    assert doc["times"] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    assert doc["fires"][0]["note"] and "does not exist" in doc["fires"][0]["note"]
    assert doc["fires"][1]["note"] is None
    assert doc["description"]


def test_next_for_a_job_uses_its_time_zone(write_job, jobs_dir: Path) -> None:
    write_job("ny", schedule="0 9 * * *", timezone="America/New_York")
    code, out, _ = cli("--jobs", str(jobs_dir), "next", "ny", "--after", "2026-07-01T00:00:00+00:00", "-n", "1")
    assert code == 0
    assert "2026-07-01T09:00:00-04:00" in out


def test_next_of_unknown_job_or_bad_expression_exits_1(jobs_dir: Path) -> None:
    code, _, err = cli("--jobs", str(jobs_dir), "next", "nope")
    assert code == 1 and "no job named 'nope'" in err
    code, _, err = cli("next", "61 * * * *")
    assert code == 1 and "minute" in err


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("JOBFSM_JOBS", None)
    return env


def test_installed_console_script_exit_codes(tmp_path: Path) -> None:
    jobfsm = Path(sys.executable).parent / "jobfsm"
    ok = subprocess.run([jobfsm, "validate", ROOT / "jobs"], capture_output=True, text=True, env=_env())
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "bad.json").write_text("{")
    bad = subprocess.run([jobfsm, "validate", tmp_path], capture_output=True, text=True)
    assert bad.returncode == 1 and "invalid JSON" in bad.stdout
    usage = subprocess.run([jobfsm, "validate", tmp_path / "missing"], capture_output=True, text=True)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    module = subprocess.run([sys.executable, "-m", "jobfsm", "--version"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout.startswith("jobfsm ")


@pytest.mark.parametrize("argv", [["--help"], ["validate", str(ROOT / "jobs")]], ids=["help", "validate"])
def test_help_and_validate_import_nothing_heavy(argv) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jobfsm", *argv], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    for heavy in ("gradio", "sqlalchemy", "fastapi", "uvicorn", "psycopg", "transitions", "pandas"):
        assert heavy not in imported, f"{argv} imported {heavy}"
