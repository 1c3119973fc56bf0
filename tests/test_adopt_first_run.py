"""A newcomer's first five minutes, with real processes: ``jobfsm init`` makes a repository that
validates and whose CI command works, refuses to overwrite; ``jobfsm start`` says what it loaded
and what fires next (or how to enable a job); ``jobfsm status`` says the same with no daemon."""

from __future__ import annotations

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

from jobfsm import __version__
from jobfsm.adopt.firstrun import render, summarize
from jobfsm.adopt.scaffold import unit, unit_trouble
from jobfsm.config.loader import validate_file
from jobfsm.config.schema import schema_text
from tests.conftest import job_doc, wait_for

JOBFSM = str(Path(sys.executable).parent / "jobfsm")


def jobfsm(*argv: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFSM_")}
    return subprocess.run([JOBFSM, *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


# -- a systemd unit read back as systemd reads it ----------------------------------------------

C_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
             "s": " ", "t": "\t", "v": "\v"}
"""systemd's C escapes (``\\xNN`` aside); any other backslash makes the line invalid."""


def service_settings(text: str) -> dict[str, list[str]]:
    """The [Service] section's settings, each key's values in order (a unit may repeat a key)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def specifiers(word: str) -> str:
    """systemd.unit's specifiers: '%%' is a '%'; any other '%x' would be replaced."""
    parts = word.split("%%")
    assert not any("%" in part for part in parts), f"an unescaped specifier in {word!r}"
    return "%".join(parts)


def systemd_words(value: str, *, command: bool = False) -> list[str]:
    """``Environment=`` and ``ExecStart=`` values split as systemd.syntax says (quotes removed,
    C escapes undone), then specifiers and, in a command line, '$$' (systemd.service)."""
    words: list[str] = []
    word: list[str] | None = None
    quote = ""
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1]
            if nxt == "x":
                (word := word if word is not None else []).append(chr(int(value[i + 2:i + 4], 16)))
                i += 4
                continue
            assert nxt in C_ESCAPES, f"'\\{nxt}', an escape systemd refuses, in {value!r}"
            (word := word if word is not None else []).append(C_ESCAPES[nxt])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            else:
                word.append(ch)  # type: ignore[union-attr]
        elif ch in "\"'":
            quote, word = ch, word if word is not None else []
        elif ch in " \t":
            if word is not None:
                words.append("".join(word))
            word = None
        else:
            (word := word if word is not None else []).append(ch)
        i += 1
    assert not quote, f"an unclosed quote in {value!r}"
    if word is not None:
        words.append("".join(word))
    words = [specifiers(w) for w in words]
    if command:
        for w in words:
            assert "$" not in w.replace("$$", ""), f"a '$' systemd would substitute in {w!r}"
        words = [w.replace("$$", "$") for w in words]
    return words


def read_unit(text: str) -> tuple[str, dict[str, str], list[str]]:
    """(WorkingDirectory, the Environment variables, ExecStart's words) as systemd gets them."""
    service = service_settings(text)
    assignments = [word for line in service["Environment"] for word in systemd_words(line)]
    assert all("=" in word for word in assignments), f"not assignments: {assignments}"
    env = dict(word.split("=", 1) for word in assignments)
    [workdir], [command] = service["WorkingDirectory"], service["ExecStart"]
    return specifiers(workdir), env, systemd_words(command, command=True)


def systemd_verify(path: Path) -> None:
    """``systemd-analyze verify``, which says what it ignored (an 'Invalid environment assignment'
    is a warning, exit 0): nothing may be said about the unit's own lines."""
    verify = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    said = [line for line in (verify.stdout + verify.stderr).splitlines() if "jobfsm.service" in line]
    assert (verify.returncode, said) == (0, []), verify.stderr


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
    # it installs this version from the package index, and says what to give pip where the team's
    # index has no jobfsm (the wheel's name as python -m build makes it)
    assert runs[-2] == f'python -m pip install "jobfsm=={__version__}"'
    text = (repo / ".github/workflows/jobfsm.yml").read_text()
    comment = text[:text.index(f"- run: {runs[-2]}")].rsplit("- uses:", 1)[1]
    assert f"python -m pip install ./wheels/jobfsm-{__version__}-py3-none-any.whl" in comment
    assert '"jobfsm @ git+https://' in comment and "--index-url <index URL>" in comment
    assert f"CI installs jobfsm=={__version__} from your package index; if your jobfsm comes from " in done.stdout
    assert jobfsm(*shlex.split(runs[-1])[1:], cwd=repo).returncode == 0
    (repo / "jobs" / "broken.json").write_text(json.dumps(job_doc("broken", schedule="61 * * * *")))
    failed = jobfsm(*shlex.split(runs[-1])[1:], cwd=repo)
    assert failed.returncode == 1
    assert failed.stdout.startswith("::error file=jobs/broken.json,") and "$.schedule" in failed.stdout

    # systemd: the unit starts this jobfsm in this folder
    workdir, env, command = read_unit((repo / "deploy" / "jobfsm.service").read_text())
    real = repo.resolve()  # the unit names the folder with no '..' and no link in it
    assert command[:2] == [JOBFSM, "start"] and workdir == str(real)
    assert (env["JOBFSM_JOBS"], env["JOBFSM_LOGS"]) == (str(real / "jobs"), str(real / "logs"))
    if shutil.which("systemd-analyze"):  # where systemd is there, it checks the unit itself
        systemd_verify(repo / "deploy" / "jobfsm.service")


ODD_FOLDER = "my jobs 50%q %h $HOME \"dq\" 'sq' back\\slash Ä"


def test_init_in_a_folder_with_spaces_and_quotes_writes_a_unit_systemd_reads_back(tmp_path: Path) -> None:
    """Environment= splits at blanks unless quoted, and every value expands '%' specifiers:
    a folder named like this once gave JOBFSM_JOBS cut at the space."""
    done = jobfsm("init", ODD_FOLDER, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    repo = (tmp_path / ODD_FOLDER).resolve()
    path = repo / "deploy" / "jobfsm.service"
    workdir, env, command = read_unit(path.read_text())
    assert (workdir, env["JOBFSM_JOBS"], env["JOBFSM_LOGS"]) == (str(repo), str(repo / "jobs"), str(repo / "logs"))
    assert command[:2] == [JOBFSM, "start"]
    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze on this host: the unit was checked by the parser above only")
    systemd_verify(path)


def test_the_unit_quotes_the_command_and_names_a_normalized_folder(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin 100%"
    bin_dir.mkdir()
    (bin_dir / "jobfsm").symlink_to(JOBFSM)
    command = [str(bin_dir / "jobfsm"), "--flag=$HOME %h", "it's"]
    text = unit(tmp_path / "repo", command, "jobfsm")
    workdir, _, words = read_unit(text)
    assert (workdir, words) == (str(tmp_path / "repo"), [*command, "start", "--grace-seconds", "60"])
    done = jobfsm("init", "a/../b", cwd=tmp_path)  # systemd refuses '..' in WorkingDirectory=
    assert done.returncode == 0, done.stderr
    assert read_unit((tmp_path / "b" / "deploy" / "jobfsm.service").read_text())[0] == str((tmp_path / "b").resolve())
    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze on this host: the units were checked by the parser above only")
    (tmp_path / "repo").mkdir()
    (tmp_path / "jobfsm.service").write_text(text)
    systemd_verify(tmp_path / "jobfsm.service")
    systemd_verify(tmp_path / "b" / "deploy" / "jobfsm.service")


@pytest.mark.parametrize(("folder", "program", "says"), [
    ("/srv/a\nb", "/usr/bin/jobfsm", "the folder '/srv/a\\nb' has a control character"),
    ("/srv/a\udcff", "/usr/bin/jobfsm", "is not UTF-8 text"),
    ("/srv/a ", "/usr/bin/jobfsm", "ends in a blank or a backslash"),
    ("/srv/a\\", "/usr/bin/jobfsm", "ends in a blank or a backslash"),
    ("/srv/a", "/opt/$x/jobfsm", "has a quote, a backslash or a '$'"),
    ("/srv/a", "/opt/it's/jobfsm", "run an installed jobfsm from another folder"),
], ids=["newline", "not-utf8", "trailing-blank", "trailing-backslash", "dollar-program", "quote-program"])
def test_what_no_unit_can_hold_is_refused_with_a_reason(folder: str, program: str, says: str) -> None:
    assert says in (unit_trouble(folder, program) or "")
    assert unit_trouble("/srv/my jobs %h $x 'q'", "/opt/my tools/jobfsm") is None


def test_init_refuses_a_folder_no_unit_can_name(tmp_path: Path) -> None:
    done = jobfsm("init", "a\nb", cwd=tmp_path)
    assert done.returncode == 2 and not (tmp_path / "a\nb").exists()
    assert done.stderr.startswith("jobfsm init: error: the folder ") and "choose another DIR" in done.stderr


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
