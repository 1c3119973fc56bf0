"""The job commands through ``jobfsm.cli.run`` (in-process, StringIO streams)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from jobfsm.cli import run
from tests.conftest import job_doc


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.jobs = tmp_path / "jobs"
        self.jobs.mkdir(exist_ok=True)
        self.logs = tmp_path / "logs"
        self.tmp = tmp_path

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run([*argv, "--jobs", str(self.jobs), "--logs", str(self.logs)], out, err)
        return code, out.getvalue(), err.getvalue()

    def write(self, name: str, **fields: Any) -> Path:
        path = self.jobs / f"{name}.json"
        path.write_text(json.dumps(job_doc(name, **fields), indent=2) + "\n")
        return path


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_status_table_and_json_with_an_invalid_file(cli: Cli) -> None:
    cli.write("good")
    cli.write("off", enabled=False)
    (cli.jobs / "bad.json").write_text('{"name": "bad"}')
    code, out, _ = cli("status")
    assert code == 0
    table, _, below = out.partition("\n\n")
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "idle" in rows["good"] and "yes" in rows["good"]
    assert "disabled" in rows["off"]
    assert rows["bad"].split()[1] == "invalid"
    assert below.splitlines()[:2] == [f"{cli.jobs / 'bad.json'} is invalid:", "  $.command: required field is missing"]
    assert "a running daemon keeps job 'bad' on its last good version" in below
    code, out, _ = cli("status", "--format", "json")
    data = {d["name"]: d for d in json.loads(out)}
    assert code == 0
    for item in data.values():
        assert {"name", "state", "enabled", "schedule", "timezone", "next_run", "last_run"} <= set(item)
    assert data["good"]["next_run"].endswith("+00:00") and data["off"]["next_run"] is None
    assert data["bad"]["valid"] is False and data["bad"]["state"] is None


def test_run_prints_the_result_and_exits_with_the_jobs_code(cli: Cli) -> None:
    cli.write("r", command="echo to-out; echo to-err >&2; exit 4")
    code, out, _ = cli("run", "r", "--user", "alice")
    assert code == 4
    assert "failed (exit 4)" in out and "to-out" in out and "to-err" in out
    code, out, _ = cli("run", "r", "--format", "json")
    run_obj = json.loads(out)
    assert code == 4 and run_obj["trigger"] == "manual" and run_obj["exit_code"] == 4
    assert run_obj["started_at"].endswith("+00:00")
    cli.write("ok", command="true")
    assert cli("run", "ok")[0] == 0


def test_run_of_a_disabled_or_missing_job_exits_1(cli: Cli) -> None:
    cli.write("off", enabled=False)
    code, _, err = cli("run", "off")
    assert code == 1 and "'off' is disabled; enable it before triggering it" in err
    code, _, err = cli("run", "nope")
    assert code == 1 and "no job named 'nope'" in err


def test_run_that_cannot_start_exits_1(cli: Cli) -> None:
    cli.write("nodir", command=["/bin/true"], working_directory="/nonexistent-dir-xyz")
    code, out, _ = cli("run", "nodir")
    assert code == 1 and "failed" in out and "/nonexistent-dir-xyz" in out


def test_history_filters_and_json(cli: Cli) -> None:
    cli.write("h", command="exit 0")
    cli.write("f", command="exit 2")
    for _ in range(2):
        cli("run", "h")
    cli("run", "f")
    code, out, _ = cli("history", "h", "--format", "json")
    runs = json.loads(out)
    assert code == 0 and len(runs) == 2 and runs[0]["id"] > runs[1]["id"]
    assert set(runs[0]) >= {"id", "job", "status", "trigger", "scheduled_for", "started_at",
                            "ended_at", "exit_code", "duration_seconds", "node"}
    assert json.loads(cli("history", "h", "--status", "failed", "--format", "json")[1]) == []
    assert len(json.loads(cli("history", "h", "--limit", "1", "--format", "json")[1])) == 1
    assert json.loads(cli("history", "h", "--since", "2999-01-01", "--format", "json")[1]) == []
    assert len(json.loads(cli("history", "h", "--until", "2999-01-01T00:00+02:00",
                              "--format", "json")[1])) == 2
    code, out, _ = cli("history", "f")
    assert code == 0 and "failed" in out.splitlines()[1]


def test_history_errors(cli: Cli) -> None:
    code, _, err = cli("history", "ghost")
    assert code == 1 and "no job named 'ghost'" in err
    cli.write("h")
    code, _, err = cli("history", "h", "--since", "yesterday")
    assert code == 2 and "--since 'yesterday' is not an ISO 8601 time" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_logs_grep_run_and_status(cli: Cli) -> None:
    cli.write("l", command="echo alpha; echo BETA; echo gamma >&2")
    cli("run", "l")
    cli("run", "l")
    code, out, _ = cli("logs", "l")
    assert code == 0 and out.count("== run") == 2 and "alpha" in out and "gamma" in out
    code, out, _ = cli("logs", "l", "--grep", "beta", "--run", "1")
    assert code == 0 and out.count("== run 1 ") == 1 and "BETA" in out and "alpha" not in out
    data = json.loads(cli("logs", "l", "--grep", "gamma", "--format", "json")[1])
    assert [(d["stdout"], d["stderr"]) for d in data] == [("", "gamma\n")] * 2
    assert "no output" in cli("logs", "l", "--status", "failed")[1]
    assert cli("logs", "ghost")[0] == 1


def test_enable_disable_edit_the_file_and_audit(cli: Cli) -> None:
    path = cli.write("e")
    before = path.read_text()
    code, out, _ = cli("disable", "e", "--user", "bob")
    assert code == 0 and "disabled" in out
    assert path.read_text() == before.replace('"enabled": true', '"enabled": false')
    assert "already disabled" in cli("disable", "e")[1]
    assert cli("enable", "e")[0] == 0 and path.read_text() == before
    assert cli("enable", "ghost")[0] == 1
    code, out, _ = cli("audit", "--user", "bob", "--format", "json")
    entries = json.loads(out)
    assert [(e["action"], e["outcome"], e["user"]) for e in entries] == [("disable", "allowed", "bob")]
    assert entries[0]["time"].endswith("+00:00")


def test_create_from_file_and_stdin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    src = cli.tmp / "new.json"
    src.write_text(json.dumps(job_doc("made")))
    code, out, _ = cli("create", str(src), "--user", "alice")
    assert code == 0 and "created job 'made'" in out
    assert json.loads((cli.jobs / "made.json").read_text()) == job_doc("made")
    code, _, err = cli("create", str(src))
    assert code == 1 and "already exists" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(job_doc("piped"))))
    assert cli("create", "-")[0] == 0 and (cli.jobs / "piped.json").exists()
    bad = cli.tmp / "bad.json"
    bad.write_text(json.dumps({**job_doc("worse"), "schedule": "61 * * * *", "retries": -1}))
    code, _, err = cli("create", str(bad))
    assert code == 1 and "$.retries" in err and not (cli.jobs / "worse.json").exists()
    (cli.tmp / "broken.json").write_text("{nope")
    code, _, err = cli("create", str(cli.tmp / "broken.json"))
    assert code == 1 and "invalid JSON" in err
    assert cli("create", str(cli.tmp / "missing.json"))[0] == 2


@pytest.mark.parametrize("answer", ["n\n", "", "maybe\n"], ids=["no", "eof", "other"])
def test_delete_asks_and_keeps_the_job_unless_yes(cli: Cli, monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    cli.write("d")
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    code, _, err = cli("delete", "d")
    assert code == 1 and "Delete job 'd'? [y/N]" in err and (cli.jobs / "d.json").exists()


def test_delete_with_confirmation_or_yes(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.write("d1")
    cli.write("d2")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert cli("delete", "d1")[0] == 0 and not (cli.jobs / "d1.json").exists()
    assert cli("delete", "d2", "--yes")[0] == 0 and not (cli.jobs / "d2.json").exists()
    assert cli("delete", "d2", "--yes")[0] == 1
    code, out, _ = cli("audit", "--job", "d1")
    assert code == 0 and "delete" in out and "allowed" in out


def test_audit_filters_and_bad_since(cli: Cli) -> None:
    cli.write("a")
    cli("disable", "a", "--user", "u1")
    cli("run", "a", "--user", "u2")
    entries = json.loads(cli("audit", "--format", "json")[1])
    assert [(e["user"], e["action"], e["outcome"]) for e in entries] == [
        ("u2", "trigger", "denied"), ("u1", "disable", "allowed")]
    assert json.loads(cli("audit", "--job", "zzz", "--format", "json")[1]) == []
    assert json.loads(cli("audit", "--since", "2999-01-01", "--format", "json")[1]) == []
    assert cli("audit", "--since", "soon")[0] == 2
    lines = (cli.logs / "audit.log").read_text().splitlines()
    assert [json.loads(line)["user"] for line in lines] == ["u1", "u2"]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0.0034, "3.4ms"), (0.25, "250ms"), (1.5, "1.50s"), (125, "2m05s"), (7300, "2h01m")],
)
def test_durations_read_at_a_glance(seconds: float | None, shown: str) -> None:
    from jobfsm.cli.jobs import _duration

    assert _duration(seconds) == shown  # a 3 ms run must not read as "0.00s", as if nothing ran
