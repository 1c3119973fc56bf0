"""Hostile job files and arguments: each is one clear problem or one usage line, never a
traceback, a hang or a gigabyte of memory. Real files, FIFOs, links and processes throughout.

The cases are those of the issue "Hostile files and arguments crash, hang or eat memory",
in its order, then the crashes of the same kind met on the way. Tests that could eat memory
or block on unfixed code run their subject in a subprocess with a memory limit, or under a
short timeout, so a regression fails instead of taking CI down with it.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobfsm.cli import run
from jobfsm.config.limits import MAX_ARGUMENT_BYTES, MAX_FILE_BYTES, MAX_NESTING
from jobfsm.config.loader import validate_document, validate_file
from jobfsm.errors import ValidationError
from jobfsm.problems import MAX_PROBLEMS_PER_FILE
from jobfsm.service import JobManagementService
from jobfsm.store.memory import MemoryStore
from tests.conftest import job_doc, store_on, wait_for

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 1024**3
"""Address space of a subprocess whose subject could read without end on unfixed code."""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def one_line(err: str) -> str:
    """The single line of ``err``; fails when there are more, or a traceback."""
    assert "Traceback" not in err, err[-3000:]
    lines = err.splitlines()
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def write(folder: Path, name: str, **fields: Any) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(job_doc(name, **fields)), encoding="utf-8")
    return path


def deep_text(levels: int) -> str:
    return "[" * levels + "]" * levels


def deep_value(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):  # built in a loop: a recursive builder would hit the limit itself
        value = [value]
    return value


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("JOBFSM_JOBS", "JOBFSM_LOGS", "JOBFSM_STORE"):
        env.pop(key, None)
    return env


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def jobfsm(*argv: str, cwd: Path, stdin: Any = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python -m jobfsm ARGV`` as a real process, its memory bounded."""
    return subprocess.run(
        [sys.executable, "-m", "jobfsm", *argv], cwd=cwd, stdin=stdin, capture_output=True,
        text=True, timeout=timeout, env=_env(), preexec_fn=_limit_memory, check=False,
    )


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    folder.mkdir()
    return folder


def globals_for(tmp_path: Path) -> list[str]:
    return ["--jobs", str(tmp_path / "jobs"), "--logs", str(tmp_path / "logs")]


# -- deep nesting ---------------------------------------------------------------------------

DEEP_FILES = {
    "top-level": deep_text(10_000),
    "in-env": json.dumps(job_doc("x", env={"A": "@"})).replace('"@"', deep_text(5_000)),
    "in-command": json.dumps(job_doc("x", command=["/bin/echo", "@"])).replace('"@"', deep_text(5_000)),
    "objects": json.dumps(job_doc("x", description="@")).replace('"@"', '{"a": ' * 3_000 + "1" + "}" * 3_000),
    "just-over": json.dumps(job_doc("x", env={"A": "@"})).replace('"@"', deep_text(MAX_NESTING - 1)),
}


@pytest.mark.parametrize("text", DEEP_FILES.values(), ids=DEEP_FILES.keys())
def test_deep_nesting_is_one_problem_naming_the_file(jobs: Path, tmp_path: Path, text: str) -> None:
    path = jobs / "x.json"
    path.write_text(text, encoding="utf-8")
    for argv in (["validate", str(path)], ["validate", str(jobs)], ["status", *globals_for(tmp_path)]):
        code, out, err = cli(*argv)
        assert "Traceback" not in err and code == (0 if argv[0] == "status" else 1), (argv, err[-2000:])
        assert f"$: nested too deeply: at most {MAX_NESTING} levels" in out, out
        assert str(path) in out
    code, out, err = cli("create", str(path), *globals_for(tmp_path))
    assert code == 1 and "nested too deeply" in one_line(err) and str(path) in err
    [problem] = validate_file(path).problems
    assert problem.json_path == "$" and problem.line == 1 and problem.column is not None


def test_nesting_at_the_limit_is_only_a_schema_problem(jobs: Path) -> None:
    path = jobs / "x.json"
    path.write_text(json.dumps(job_doc("x", env={"A": "@"})).replace('"@"', deep_text(MAX_NESTING - 2)))
    [problem] = validate_file(path).problems  # 32 levels: parsed, and the schema names the value
    assert problem.json_path == "$.env.A" and "must be of type string" in problem.message


@pytest.mark.parametrize("levels", [MAX_NESTING + 1, 5_000, 50_000], ids=["over", "deep", "deeper"])
@pytest.mark.parametrize("field", ["env", "command", "description", "unknown"])
def test_deep_documents_from_the_service_are_refused_not_crashed(tmp_path: Path, field: str, levels: int) -> None:
    """Documents built in Python (the admin page, the API) never went through the parser."""
    value = {"A": deep_value(levels)} if field == "env" else deep_value(levels)
    document = {**job_doc("deep"), field: value}
    report = validate_document(document, "deep.json", stem="deep")
    assert report.config is None
    assert [p.message for p in report.problems] == [
        f"nested too deeply: at most {MAX_NESTING} levels of arrays and objects (a job file needs 3); "
        "remove the extra brackets"
    ]
    (tmp_path / "jobs").mkdir()
    with JobManagementService(tmp_path / "jobs", tmp_path / "logs", MemoryStore()) as service:
        with pytest.raises(ValidationError, match="nested too deeply"):
            service.create_job(document, "ana")
        try:  # deeper than json can write: not JSON data, which validate() raises for
            problems = service.validate(document)
        except ValidationError as exc:
            problems = exc.problems
        assert [p.message.split(":")[0] for p in problems] == ["nested too deeply"]
    assert not (tmp_path / "jobs" / "deep.json").exists()


def _daemon_log(logs: Path) -> str:
    path = logs / "scheduler_main.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_daemon_survives_hostile_files_and_reports_each_once(tmp_path: Path) -> None:
    jobs, logs = tmp_path / "jobs", tmp_path / "logs"
    jobs.mkdir()
    write(jobs, "good", schedule="0 0 1 1 *")
    stderr = tmp_path / "daemon.err"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobfsm", "start", "--jobs", str(jobs), "--logs", str(logs),
             "--store", f"sqlite:///{tmp_path / 'store.db'}"],
            stdout=subprocess.DEVNULL, stderr=err, env=_env(), cwd=tmp_path,
        )
    try:
        wait_for(lambda: " started: " in _daemon_log(logs), 20, "the daemon to start", lambda: _daemon_log(logs))
        (jobs / "deep.json").write_text(deep_text(10_000))
        (jobs / "deepenv.json").write_text(DEEP_FILES["in-env"].replace('"x"', '"deepenv"'))
        (jobs / "many.json").write_text(json.dumps({**job_doc("many"), **{f"k{i}": i for i in range(10_000)}}))
        write(jobs, "long", description="d" * 900_000)
        os.mkfifo(jobs / "fifo.json")
        (jobs / "zero.json").symlink_to("/dev/zero")
        with open(jobs / "huge.json", "wb") as f:  # sparse: 200 MB on paper, nothing on disk
            f.truncate(200 * 1024 * 1024)
        for name in ("deep", "deepenv", "many", "long", "huge"):
            wait_for(lambda name=name: f"{name}.json: $" in _daemon_log(logs), 20,
                     f"the daemon to report {name}.json", lambda: _daemon_log(logs)[-2000:])
        write(jobs, "later")  # a reload after the reports: had they repeated, this would see it
        wait_for(lambda: "loaded job 'later'" in _daemon_log(logs), 20, "the daemon to load a later job",
                 lambda: _daemon_log(logs)[-2000:])
        assert proc.poll() is None, stderr.read_text()[-3000:]
        lines = _daemon_log(logs).splitlines()

        def about(name: str) -> list[str]:
            return [line for line in lines if f"{name}.json:" in line]

        assert len(about("deep")) == 1 and "nested too deeply" in about("deep")[0]
        assert len(about("deepenv")) == 1 and "nested too deeply" in about("deepenv")[0]
        assert len(about("many")) == MAX_PROBLEMS_PER_FILE + 1
        assert about("many")[-1].endswith("$: … and 9,950 more problems in this file")
        [long] = about("long")
        assert len(long) < 300 and "is 900,000 characters long; at most 1,000" in long
        [huge] = about("huge")
        assert "file is 209,715,200 bytes; a job file may be at most 1,048,576 bytes" in huge
        assert not about("fifo") and not about("zero")  # not regular files: not job files
        assert max(len(line) for line in lines) < 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise
    assert code == 0, stderr.read_text()[-3000:]


# -- non-regular files and size -------------------------------------------------------------


@pytest.fixture
def zero(jobs: Path) -> Path:
    link = jobs / "z.json"
    link.symlink_to("/dev/zero")
    return link


@pytest.fixture
def fifo(jobs: Path) -> Path:
    path = jobs / "y.json"
    os.mkfifo(path)
    return path


@pytest.fixture
def big(jobs: Path) -> Path:
    path = jobs / "big.json"
    doc = json.dumps(job_doc("big", description="@"))
    path.write_text(doc.replace('"@"', '"' + "d" * (2 * 1024 * 1024) + '"'))
    return path


def test_a_link_to_dev_zero_is_refused_without_reading(zero: Path, tmp_path: Path) -> None:
    proc = jobfsm("validate", str(zero), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"{zero}: $: is a character device, not a regular file;")
    proc = jobfsm("create", str(zero), *globals_for(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1 and "is a character device" in one_line(proc.stderr)
    loader = subprocess.run(
        [sys.executable, "-c", "import sys; from jobfsm.config.loader import validate_file; "
         "print(validate_file(sys.argv[1]).problems[0].message)", str(zero)],
        capture_output=True, text=True, timeout=30, preexec_fn=_limit_memory, check=False, env=_env(),
    )
    assert loader.stdout.startswith("is a character device, not a regular file"), loader.stderr[-2000:]


@pytest.mark.timeout(20)
def test_a_fifo_never_blocks(fifo: Path, tmp_path: Path) -> None:
    code, out, err = cli("validate", str(fifo))
    assert code == 1 and out.startswith(f"{fifo}: $: is a FIFO (named pipe), not a regular file"), err
    code, _, err = cli("create", str(fifo), *globals_for(tmp_path))
    assert code == 1 and f"{fifo}: $: is a FIFO (named pipe)" in one_line(err)
    assert "is a FIFO" in validate_file(fifo).problems[0].message
    code, out, err = cli("status", *globals_for(tmp_path))
    assert code == 0 and "no jobs" in out  # a folder lists only regular files


def test_files_over_a_mebibyte_are_refused(big: Path, tmp_path: Path) -> None:
    message = f"file is {big.stat().st_size:,} bytes; a job file may be at most {MAX_FILE_BYTES:,} bytes (1 MiB)"
    code, out, _ = cli("validate", str(big))
    assert code == 1 and out.splitlines()[0] == f"{big}: $: {message}"
    code, _, err = cli("create", str(big), *globals_for(tmp_path))
    assert code == 1 and one_line(err) == f"{big}: $: {message}"
    assert [p.message for p in validate_file(big).problems] == [message]


def test_a_file_of_exactly_the_limit_is_read(jobs: Path) -> None:
    path = jobs / "edge.json"
    text = json.dumps(job_doc("edge"))
    path.write_bytes(text.encode() + b" " * (MAX_FILE_BYTES - len(text)))
    assert path.stat().st_size == MAX_FILE_BYTES
    assert validate_file(path).valid


def test_standard_input_is_read_up_to_the_limit_only(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    with open("/dev/zero", "rb") as endless:
        proc = jobfsm("create", "-", *globals_for(tmp_path), cwd=tmp_path, stdin=endless)
    assert proc.returncode == 1
    assert one_line(proc.stderr) == "<stdin>: $: input is over 1,048,576 bytes; a job file may be at most 1 MiB"


_PEAK_RSS = """
import sys
from jobfsm.config.loader import validate_file
report = validate_file(sys.argv[1])
# VmHWM belongs to this process's own address space, which exec made new (ru_maxrss would
# carry the high-water mark of the pytest process this one was forked from).
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak, report.problems[0].message)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_huge_file_is_not_read_into_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: costs no disk
    probe = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(path)],
        capture_output=True, text=True, timeout=60, check=False, env=_env(),
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    peak_kib, message = probe.stdout.split(" ", 1)
    assert int(peak_kib) < 100 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"
    assert message.startswith("file is 209,715,200 bytes")


def test_folders_list_regular_files_and_links_to_them_only(jobs: Path, zero: Path, fifo: Path) -> None:
    write(jobs, "real")
    (jobs / "alias.json").symlink_to("real.json")  # a job file of its own: the name must match
    (jobs / "dangling.json").symlink_to("nowhere.json")
    (jobs / "folder.json").mkdir()
    code, out, _ = cli("validate", str(jobs))
    assert code == 1
    assert out.splitlines() == [
        f"{jobs / 'alias.json'}: $.name: name 'real' does not match the file name 'alias.json'; "
        "rename the file to 'real.json' or change the name",
        "2 files checked: 1 valid, 1 invalid (1 error, 0 warnings)",
    ]


# -- unbounded or out-of-range command-line values ------------------------------------------

BAD_VALUES = [
    (["next", "* * * * *", "-n", "100000000"], 2, "-n must be at most 1,000"),
    (["next", "* * * * *", "-n", "1" + "0" * 5000], 2, "-n must be at most 1,000"),
    (["next", "* * * * *", "--after", "9999-12-31T23:59"], 2, "--after '9999-12-31T23:59' is out of range"),
    (["next", "* * * * *", "--after", "0001-01-01T00:00+05:00"], 2, "is out of range: times go from 0001-01-03 to 9998-12-31"),
    (["history", "good", "--since", "9999-12-31T23:59:59-23:59"], 2, "--since '9999-12-31T23:59:59-23:59' is out of range"),
    (["history", "good", "--until", "0001-01-01T00:00:00+23:59"], 2, "--until '0001-01-01T00:00:00+23:59' is out of range"),
    (["audit", "--since", "0001-01-01T00:00+05:00"], 2, "--since '0001-01-01T00:00+05:00' is out of range"),
    (["history", "good", "--limit", "100000000000000000000"], 2, "--limit must be at most 10,000"),
    (["audit", "--limit", "100000000000000000000"], 2, "--limit must be at most 10,000"),
    (["logs", "good", "--run", "100000000000000000000"], 2, "--run must be at most 9,223,372,036,854,775,807"),
    (["logs", "good", "--limit", "1000000"], 2, "--limit must be at most 100"),
    (["history", "good", "--limit", "-1"], 2, "--limit must be at least 1"),
    (["logs", "good", "--limit", "-1"], 2, "--limit must be at least 1"),
    (["audit", "--limit", "-1"], 2, "--limit must be at least 1"),
    (["logs", "good", "--run", "-5"], 2, "--run must be at least 1"),
    (["start", "--keep-days", "1e308"], 2, "--keep-days must be at most 36,500"),
    (["start", "--keep-runs", "100000000000000000000"], 2, "--keep-runs must be at most 1,000,000,000"),
]


@pytest.mark.timeout(60)  # unfixed, `next -n 100000000` collects fires for minutes
@pytest.mark.parametrize(("argv", "code", "fragment"), BAD_VALUES, ids=[" ".join(a)[:50] for a, _, _ in BAD_VALUES])
def test_out_of_range_values_are_one_line(tmp_path: Path, argv: list[str], code: int, fragment: str) -> None:
    (tmp_path / "jobs").mkdir()
    write(tmp_path / "jobs", "good")
    got, out, err = cli(*argv, *globals_for(tmp_path))
    assert got == code and fragment in one_line(err), err[-2000:]
    assert out == ""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("option", ["--grace-seconds", "--max-workers"])
@pytest.mark.parametrize("value", ["inf", "nan", "1e30"])
def test_start_refuses_values_it_could_not_use(tmp_path: Path, option: str, value: str) -> None:
    """Unfixed, an infinite grace started a daemon whose shutdown would raise OverflowError."""
    (tmp_path / "jobs").mkdir()
    proc = jobfsm("start", option, value, *globals_for(tmp_path), cwd=tmp_path, timeout=20)
    assert proc.returncode == 2 and f"jobfsm start: error: {option} must be" in one_line(proc.stderr)


def test_next_stops_cleanly_when_the_years_run_out() -> None:
    code, out, err = cli("next", "0 0 29 2 *", "-n", "1000", "--after", "9990-01-01T00:00Z")
    assert code == 0
    assert out.splitlines()[2:] == ["  9992-02-29T00:00:00+00:00  Sat", "  9996-02-29T00:00:00+00:00  Thu"]
    assert one_line(err) == (
        "jobfsm next: 2 of 1000 fire times: cron expression '0 0 29 2 *' has no later fire within "
        "the times jobfsm computes, 0001-01-03 to 9998-12-31 (UTC)"
    )
    code, out, err = cli("next", "* * * * *", "--after", "9998-12-31T23:59:30Z", "--format", "json")
    assert code == 0 and json.loads(out)["times"] == [] and "0 of 5 fire times" in one_line(err)
    code, out, _ = cli("next", "0 0 * * *", "--tz", "Etc/GMT+12", "--after", "9998-12-30T00:00Z", "-n", "3")
    assert code == 0 and out.splitlines()[2:] == ["  9998-12-30T00:00:00-12:00  Wed", "  9998-12-31T00:00:00-12:00  Thu"]
    code, out, _ = cli("next", "* * * * *", "--after", "0001-01-03T00:00Z", "-n", "1")
    assert code == 0 and "0001-01-03T00:01:00+00:00" in out


def test_the_bounds_are_in_the_help() -> None:
    for argv, needles in (
        (["next", "--help"], ["at most 1,000", "years 1 to 9998"]),
        (["history", "--help"], ["at most 10,000"]),
        (["logs", "--help"], ["at most 100"]),
        (["audit", "--help"], ["at most 10,000"]),
        (["start", "--help"], ["at most 36,500", "at most 86,400", "at most 1,000,000,000"]),
    ):
        code, out, _ = cli(*argv)
        flat = " ".join(out.split())
        assert code == 0 and all(n in flat for n in needles), (argv, out)


# -- quiet wrong answers --------------------------------------------------------------------


def test_status_says_the_jobs_folder_is_missing_or_not_a_folder(tmp_path: Path) -> None:
    code, out, err = cli("status", "--jobs", str(tmp_path / "nope"), "--logs", str(tmp_path / "logs"))
    assert code == 1 and out == ""
    assert one_line(err) == f"jobfsm status: error: jobs folder '{tmp_path / 'nope'}' does not exist; create it or pass --jobs DIR"
    afile = tmp_path / "passwd"
    afile.write_text("a file, not a folder\n")
    code, _, err = cli("status", "--jobs", str(afile), "--logs", str(tmp_path / "logs"), "--format", "json")
    assert code == 1 and one_line(err) == f"jobfsm status: error: jobs folder '{afile}' is not a folder; pass --jobs DIR"
    code, _, err = cli("status", "--jobs", str(tmp_path / ("a" * 5000)), "--logs", str(tmp_path / "logs"))
    assert code == 1 and "File name too long" in one_line(err)


def test_file_names_with_control_characters_are_quoted(jobs: Path) -> None:
    odd = jobs / "new\nline,a:b.json"
    odd.write_text('{"name": "x", "schedule": "* * * * *"}')
    code, out, _ = cli("validate", str(jobs))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 5  # four problems and the summary: none split over two lines
    assert all(line.startswith(repr(str(odd)) + ": $.") for line in lines[:4])
    code, out, _ = cli("validate", "--format", "github", str(jobs))
    assert len(out.splitlines()) == 4
    escaped = repr(str(odd)).replace(":", "%3A").replace(",", "%2C")
    assert all(line.startswith(f"::error file={escaped},title=jobfsm validate::$.") for line in out.splitlines())
    code, out, _ = cli("validate", "--format", "json", str(jobs))
    assert [f["path"] for f in json.loads(out)["files"]] == [str(odd)]  # the real path


# -- jobs that pass validate but can never start --------------------------------------------

NEVER_START = [
    ({"env": {"FOO": "a\x00b"}}, "$.env.FOO", "contains a NUL character"),
    ({"command": ["/bin/echo", "ok", "a\x00b"]}, "$.command[2]", "contains a NUL character"),
    ({"command": ["/bin/ec\x00ho"]}, "$.command[0]", "contains a NUL character"),
    ({"command": "echo a\x00b"}, "$.command", "contains a NUL character"),
    ({"working_directory": "/tmp/a\x00b"}, "$.working_directory", "contains a NUL character"),
    ({"command": "echo \ud800"}, "$.command", "contains a lone surrogate ('\\ud800')"),
    ({"command": ["/bin/echo", "\udfff"]}, "$.command[1]", "contains a lone surrogate"),
    ({"working_directory": "/tmp/\ud800"}, "$.working_directory", "contains a lone surrogate"),
    ({"env": {"FOO": "\udc80"}}, "$.env.FOO", "contains a lone surrogate"),
    ({"env": {"\ud800": "x"}}, "$.env", "contains a lone surrogate"),  # the key
    ({"description": "caf\ud800"}, "$.description", "contains a lone surrogate"),
    ({"schedule": "\ud800 * * * *"}, "$.schedule", "contains a lone surrogate"),
    ({"timezone": "Europe/\ud800"}, "$.timezone", "contains a lone surrogate"),
    ({"$schema": "\ud800"}, "$['$schema']", "contains a lone surrogate"),
    ({"command": "x" * 1_000_000}, "$.command", "is 1,000,000 characters long; at most 131,071"),
    ({"command": ["/bin/echo", "é" * 70_000]}, "$.command[1]", "is 140,000 bytes long in UTF-8; Linux passes at most 131,071"),
    ({"env": {"BIG": "x" * (MAX_ARGUMENT_BYTES - 3)}}, "$.env.BIG", "is 131,072 bytes long in UTF-8"),
    ({"command": ["/bin/echo", *["a"] * 120_000]}, "$.command", "the command and env take 1,200,018 bytes"),
    ({"env": {f"V{i:05d}": "" for i in range(70_000)}}, "$.env", "at most 1,048,576 fit"),
    ({"working_directory": "/" + "d" * 5000}, "$.working_directory", "is 5,001 characters long; at most 4,095"),
    ({"working_directory": "/" + "é" * 2100}, "$.working_directory", "is 4,201 bytes long in UTF-8"),
]


@pytest.mark.parametrize(("fields", "json_path", "fragment"), NEVER_START, ids=[p for _, p, _ in NEVER_START])
def test_what_the_os_would_refuse_fails_validation(jobs: Path, tmp_path: Path, fields, json_path, fragment) -> None:
    report = validate_document(job_doc("x", **fields), "x.json", stem="x")
    assert report.config is None
    assert any(p.json_path == json_path and fragment in p.message for p in report.errors), report.errors
    path = jobs / "x.json"
    path.write_text(json.dumps(job_doc("x", **fields)), encoding="utf-8")  # \u escapes in the file
    code, out, err = cli("validate", str(path))
    assert code == 1 and f"x.json: {json_path}: " in out and "Traceback" not in err
    code, _, err = cli("create", str(path), *globals_for(tmp_path))
    assert code == 1 and "Traceback" not in err and not (tmp_path / "jobs" / "x.json.tmp").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="MAX_ARG_STRLEN is Linux's")
def test_the_limits_are_the_kernels(tmp_path: Path) -> None:
    """Right at the limits a job validates and its process starts; one byte more fails both."""
    at = job_doc("x", command=["/bin/true", "x" * MAX_ARGUMENT_BYTES], env={"A": "y" * (MAX_ARGUMENT_BYTES - 2)})
    assert validate_document(at, "x.json", stem="x").valid
    subprocess.run(at["command"], env=at["env"], check=True)
    over = job_doc("x", command=["/bin/true", "x" * (MAX_ARGUMENT_BYTES + 1)])
    assert not validate_document(over, "x.json", stem="x").valid
    with pytest.raises(OSError, match="Argument list too long"):
        subprocess.run(over["command"], check=False)


def test_a_job_the_service_would_write_too_big_is_refused(tmp_path: Path) -> None:
    """JSON escapes make control characters six bytes each: valid, but over the file limit."""
    (tmp_path / "jobs").mkdir()
    document = job_doc("wide", command=["/bin/echo", *["\x01" * 20_000] * 10])
    assert validate_document(document, "wide.json", stem="wide").valid
    too_big = r"the job file would be 1,200,\d{3} bytes; a job file may be at most"
    with (
        JobManagementService(tmp_path / "jobs", tmp_path / "logs", MemoryStore()) as service,
        pytest.raises(ValidationError, match=too_big),
    ):
        service.create_job(document, "ana")
    assert not (tmp_path / "jobs" / "wide.json").exists()


# -- messages that repeat a huge value ------------------------------------------------------


def test_a_huge_value_is_quoted_shortened(jobs: Path, tmp_path: Path) -> None:
    write(jobs, "long", description="d" * 500_000, working_directory="r" * 400_000)
    code, out, _ = cli("validate", str(jobs))
    assert code == 1 and len(out) < 1000, out[:2000]
    assert f"{jobs / 'long.json'}: $.description: is 500,000 characters long; at most 1,000" in out
    assert "$.working_directory: is 400,000 characters long; at most 4,095" in out
    (jobs / "key.json").write_text(json.dumps({**job_doc("key"), "k" * 500_000: 1, "tz": "Eu" * 100_000}))
    code, out, _ = cli("validate", str(jobs / "key.json"))
    assert len(out) < 1000
    assert f"$.{'k' * 60}…: unknown key '{'k' * 60}'… (500,000 characters); remove it" in out
    with JobManagementService(tmp_path / "jobs", tmp_path / "logs", MemoryStore()) as service:
        with pytest.raises(ValidationError) as raised:
            service.create_job({**job_doc("x" * 1_000_000), "description": "d" * 10_000_000}, "ana")
        assert len(str(raised.value)) < 2000, str(raised.value)[:3000]
        assert "is 10,000,000 characters long; at most 1,000" in str(raised.value)


def test_problems_are_capped_per_file(jobs: Path, tmp_path: Path) -> None:
    path = jobs / "many.json"
    path.write_text(json.dumps({**job_doc("many"), **{f"k{i:05d}": i for i in range(10_000)}}))
    code, out, _ = cli("validate", str(jobs))
    lines = out.splitlines()
    assert code == 1 and len(lines) == MAX_PROBLEMS_PER_FILE + 2
    assert lines[0] == f"{path}: $.k00000: unknown key 'k00000'; remove it"
    assert lines[-2] == f"{path}: $: … and 9,950 more problems in this file"
    assert lines[-1] == "1 file checked: 0 valid, 1 invalid (10000 errors, 0 warnings)"
    code, out, _ = cli("validate", "--format", "json", str(path))
    errors = json.loads(out)["files"][0]["errors"]
    assert len(errors) == MAX_PROBLEMS_PER_FILE + 1 and errors[-1]["omitted"] == 9950
    with JobManagementService(tmp_path / "jobs", tmp_path / "logs", MemoryStore()) as service:
        with pytest.raises(ValidationError) as raised:
            service.create_job({**job_doc("other"), **{f"k{i}": i for i in range(10_000)}}, "ana")
        assert str(raised.value).count("unknown key") == MAX_PROBLEMS_PER_FILE
        assert str(raised.value).endswith("$: … and 9,950 more problems in this file")


# -- the same file given twice --------------------------------------------------------------


def test_a_file_given_twice_is_checked_once(jobs: Path, tmp_path: Path) -> None:
    write(jobs, "a")
    (tmp_path / "linked").symlink_to(jobs)
    os.chdir(tmp_path)
    code, out, _ = cli("validate", "jobs/", "jobs/a.json", "./jobs/../jobs/a.json", str(jobs / "a.json"),
                       "linked/a.json", "linked")
    assert code == 0 and out == "1 file checked: 1 valid, 0 invalid (0 errors, 0 warnings)\n"
    other = tmp_path / "other"
    other.mkdir()
    write(other, "a")  # another file with the same name is still a duplicate
    code, out, _ = cli("validate", "jobs", "other")
    assert code == 1 and "duplicate job name 'a', also defined in jobs/a.json" in out


# -- the admin page without its extra -------------------------------------------------------

_WITHOUT_ADMIN_EXTRA = """
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"fastapi", "gradio", "uvicorn", "itsdangerous", "starlette"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
sys.argv = ["jobfsm", *sys.argv[1:]]
from jobfsm.cli import main
main()
"""


def test_admin_without_the_extra_names_it(tmp_path: Path) -> None:
    from jobfsm.admin.accounts import Accounts

    Accounts(tmp_path / "logs" / "users.json").add("ops", "a long enough password", "admin")
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_ADMIN_EXTRA, "admin", *globals_for(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False, env=_env(), cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert one_line(proc.stderr) == (
        "jobfsm admin: error: the admin page needs the 'admin' extra (module 'fastapi' is not "
        "installed); install it with: pip install 'jobfsm[admin]'"
    )


# -- crashes of the same kind met on the way ------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "json_path", "fragment"),
    [
        ({"timezone": "Europe"}, "$.timezone", "unknown time zone 'Europe'"),  # a folder of tzdata
        ({"timezone": "a" * 300}, "$.timezone", "is 300 characters long; at most 255"),
        ({"schedule": "* " * 200}, "$.schedule", "is 400 characters long; at most 255"),
    ],
    ids=["zone-folder", "zone-too-long", "schedule-too-long"],
)
def test_values_that_crashed_the_checks(jobs: Path, fields: dict[str, Any], json_path: str, fragment: str) -> None:
    path = write(jobs, "x", **fields)
    report = validate_file(path)
    assert any(p.json_path == json_path and fragment in p.message for p in report.errors), report.errors
    assert all(len(p.message) < 300 for p in report.problems)
    code, _, err = cli("validate", str(path))
    assert code == 1 and "Traceback" not in err


def test_numbers_too_long_to_convert_are_invalid_json(jobs: Path) -> None:
    path = jobs / "x.json"
    path.write_text(json.dumps(job_doc("x")).replace('"enabled": true', '"enabled": true, "retries": 1' + "0" * 5000))
    [problem] = validate_file(path).problems
    assert problem.message == "invalid JSON: a number of 5,001 digits; numbers in a job file have at most 100"


def test_output_never_fails_on_a_lone_surrogate(jobs: Path, tmp_path: Path) -> None:
    """A lone surrogate cannot be written as UTF-8: printing one ended every command in a
    traceback (an unknown key holding one, a file name that is not UTF-8)."""
    (jobs / "key.json").write_text(json.dumps({**job_doc("key"), "\ud800": 1}))
    undecodable = os.path.join(os.fsencode(jobs), b"f\xff.json")
    with open(undecodable, "wb") as f:
        f.write(json.dumps(job_doc("f")).encode())
    for argv in (["validate", str(jobs)], ["validate", "--format", "github", str(jobs)]):
        proc = jobfsm(*argv, cwd=tmp_path)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert "$.\\ud800: unknown key '\\ud800'; remove it" in proc.stdout
        assert "f\\udcff.json" in proc.stdout
    proc = jobfsm("validate", "--format", "json", str(jobs), cwd=tmp_path)
    assert proc.returncode == 1 and json.loads(proc.stdout)["valid"] is False
    for argv in (["status"], ["status", "--format", "json"]):
        proc = jobfsm(*argv, *globals_for(tmp_path), cwd=tmp_path)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    names = {item["name"] for item in json.loads(proc.stdout)}
    assert names == {"key", "f\udcff"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_output_with_nul_bytes_is_recorded(jobs: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """PostgreSQL's text holds no NUL: a job printing one had its finish refused, which read
    as a store outage, so ``jobfsm run`` retried for ever and the daemon stopped claiming."""
    from jobfsm.store import open_store

    write(jobs, "nul", command="printf 'a\\000b'; printf 'c\\000' >&2")
    with store_on(backend, tmp_path, request) as url:
        proc = jobfsm("run", "nul", *globals_for(tmp_path), "--store", url, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        store = open_store(url)
        try:
            [record] = store.list_runs("nul")
        finally:
            store.close()
    assert (record.status.value, record.stdout_tail, record.stderr_tail) == ("succeeded", "a\ufffdb", "c\ufffd")


def test_next_refuses_what_is_no_job_name_or_zone(jobs: Path, tmp_path: Path) -> None:
    (tmp_path / "passwd.json").write_text(json.dumps(job_doc("passwd")))
    for target in ("a" * 5000, "../passwd"):
        code, _, err = cli("next", target, *globals_for(tmp_path))
        assert code == 1 and "no job named" in one_line(err) and len(err) < 300
    code, _, err = cli("next", "* * * * *", "--tz", "Europe")
    assert code == 1 and one_line(err).startswith("jobfsm next: unknown time zone 'Europe'")
    code, _, err = cli("next", "* " * 1000)
    assert code == 1 and "a cron expression is at most 255 characters" in one_line(err)


@pytest.fixture(autouse=True)
def _restore_cwd() -> Iterator[None]:
    cwd = os.getcwd()
    yield
    os.chdir(cwd)
