"""Tests of jobfsm.runs.executor with real processes and real files (no mocks).

Waiting on processes that are not our children (grandchildren, leftovers) is done by polling
``os.killpg(pgid, 0)`` with a deadline: orphans are reaped by PID 1, which may take a moment.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.model import Command, JobConfig, Outcome
from jobfsm.runs.executor import (
    OMITTED_MARKER,
    JobExecutor,
    JobResult,
    ProcessesEnded,
    RunTag,
    end_run_processes,
    read_tail,
)
from tests.conftest import wait_for

GRACE = 0.5


def make_job(command: Command, cwd: Path | str, **kw: object) -> JobConfig:
    name = str(kw.pop("name", "job"))
    return JobConfig(
        name=name,
        schedule="* * * * *",
        command=command,
        working_directory=str(cwd),
        enabled=True,
        **kw,  # type: ignore[arg-type]
    )


def group_gone(pgid: int, timeout: float = 15.0) -> bool:
    """True once no process of the group exists (polled with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def wait_pid(executor: JobExecutor, job: JobConfig, run_id: int, timeout: float = 10.0) -> int:
    """The pid the job printed first (``echo $$``): it has started and installed its traps."""
    out, _err = executor.output_paths(job.name, run_id)
    deadline = time.monotonic() + timeout
    while True:
        text = out.read_text() if out.exists() else ""
        if text.endswith("\n"):
            return int(text.split()[0])
        assert time.monotonic() < deadline, f"run {run_id} never printed its pid"
        time.sleep(0.01)


def wait_registered(executor: JobExecutor, run_ids: list[int], timeout: float = 10.0) -> None:
    """Until running() lists exactly these runs (a child may print before Popen returns)."""
    deadline = time.monotonic() + timeout
    while executor.running() != run_ids:
        assert time.monotonic() < deadline, f"running() is {executor.running()}, not {run_ids}"
        time.sleep(0.01)


def vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


class FakeClock:
    """Wall time frozen at a given instant; monotonic advances by one second per call."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        self._mono += 1.0
        return self._mono

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        return event.wait(timeout)


class Background:
    """execute() on a thread, with the result waited for on an event."""

    def __init__(self, executor: JobExecutor, job: JobConfig, run_id: int) -> None:
        self.executor = executor
        self.result: JobResult | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(executor, job, run_id), daemon=True
        )
        self._thread.start()

    def _run(self, executor: JobExecutor, job: JobConfig, run_id: int) -> None:
        try:
            self.result = executor.execute(job, run_id)
        finally:
            self._done.set()

    def join(self, timeout: float = 30.0) -> JobResult:
        assert self._done.wait(timeout), "execute() did not return"
        self._thread.join()
        assert self.result is not None
        return self.result


Spawn = Callable[[JobExecutor, JobConfig, int], Background]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("executor")


class LaunchedExecutor(JobExecutor):
    """execute() through launch(): the daemon's path (the reaper thread, hand-offs for
    timeouts and leftovers), waited for on an event. Every behaviour test runs both ways."""

    def execute(
        self, job: JobConfig, run_id: int, *, scheduled_for: datetime | None = None
    ) -> JobResult:
        results: list[JobResult] = []
        delivered = threading.Event()

        def on_done(result: JobResult) -> None:
            results.append(result)
            delivered.set()

        not_started = self.launch(job, run_id, on_done=on_done, scheduled_for=scheduled_for)
        if not_started is not None:
            assert not_started.status is Outcome.NOT_STARTED
            return not_started
        assert delivered.wait(60), f"run {run_id} was launched but its result never came"
        assert len(results) == 1, f"run {run_id}: {len(results)} results delivered"
        return results[0]


@pytest.fixture(scope="module", params=["execute", "launch"])
def executor(workdir: Path, request: pytest.FixtureRequest) -> Iterator[JobExecutor]:
    kind = JobExecutor if request.param == "execute" else LaunchedExecutor
    executor = kind(workdir / "logs", kill_grace_seconds=GRACE)
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def run_ids() -> Iterator[int]:
    return itertools.count(10_000)  # the hand-written tests use ids below this


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start execute() in the background; whatever a failed test leaves running is killed."""
    started: list[Background] = []

    def start(executor: JobExecutor, job: JobConfig, run_id: int) -> Background:
        started.append(Background(executor, job, run_id))
        return started[-1]

    yield start
    for bg in started:
        bg.executor.terminate_all(reason="test cleanup")


# -- properties ----------------------------------------------------------------------------

dir_names = (
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="/\x00"),
        min_size=1,
        max_size=30,
    )
    .filter(lambda s: s not in (".", "..") and len(s.encode()) <= 255)
)


# Property 6: working directory
@settings(max_examples=100, deadline=None)
@given(name=dir_names, as_list=st.booleans())
def test_job_runs_in_its_working_directory(
    executor: JobExecutor, workdir: Path, run_ids: Iterator[int], name: str, as_list: bool
) -> None:
    directory = workdir / "wd" / name
    directory.mkdir(parents=True, exist_ok=True)
    command: Command = ("/bin/pwd",) if as_list else "pwd"
    result = executor.execute(make_job(command, directory), next(run_ids))
    assert result.status is Outcome.SUCCEEDED, result.message
    assert result.stdout == os.path.realpath(directory) + "\n"


texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300)


# Property 7: output capture completeness
@settings(max_examples=100, deadline=None)
@given(out=texts, err=texts)
def test_stdout_and_stderr_are_captured_completely_and_separately(
    executor: JobExecutor, workdir: Path, run_ids: Iterator[int], out: str, err: str
) -> None:
    run_id = next(run_ids)
    source = workdir / "p7"
    source.mkdir(exist_ok=True)
    out_file, err_file = source / f"{run_id}.out", source / f"{run_id}.err"
    out_file.write_bytes(out.encode())
    err_file.write_bytes(err.encode())
    command = ("/bin/sh", "-c", 'cat "$1"; cat "$2" >&2', "sh", str(out_file), str(err_file))
    result = executor.execute(make_job(command, workdir), run_id)
    assert result.status is Outcome.SUCCEEDED, result.message
    # The stored tails show a NUL as U+FFFD (PostgreSQL's text holds none); the files keep every byte.
    assert result.stdout == out.replace("\x00", "\ufffd")
    assert result.stderr == err.replace("\x00", "\ufffd")
    assert result.stdout_path is not None and result.stderr_path is not None
    assert Path(result.stdout_path).read_bytes() == out.encode()
    assert Path(result.stderr_path).read_bytes() == err.encode()


# Property 8: exit code recorded
@settings(max_examples=100, deadline=None)
@given(code=st.integers(min_value=0, max_value=255))
def test_exit_code_is_recorded_exactly(
    executor: JobExecutor, workdir: Path, run_ids: Iterator[int], code: int
) -> None:
    result = executor.execute(make_job(("/bin/sh", "-c", f"exit {code}"), workdir), next(run_ids))
    assert result.exit_code == code
    assert result.signal is None
    assert result.status is (Outcome.SUCCEEDED if code == 0 else Outcome.FAILED)
    assert result.success is (code == 0)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200), tail=st.integers(min_value=0, max_value=64))
def test_tail_is_whole_output_or_head_marker_tail(
    workdir: Path, run_ids: Iterator[int], data: bytes, tail: int
) -> None:
    path = workdir / "tails" / f"{next(run_ids)}.out"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    def shown(part: bytes) -> str:  # undecodable bytes and NUL as U+FFFD
        return part.decode("utf-8", errors="replace").replace("\x00", "\ufffd")

    if len(data) <= 2 * tail:
        expected = shown(data)
    else:
        expected = shown(data[:tail]) + OMITTED_MARKER.format(n=len(data) - 2 * tail) + shown(data[len(data) - tail :])
    assert read_tail(path, tail) == expected


# -- outputs ------------------------------------------------------------------------------


def test_no_output_gives_empty_tails_and_empty_files(
    executor: JobExecutor, workdir: Path
) -> None:
    result = executor.execute(make_job(("/bin/true",), workdir, name="quiet"), 7)
    assert result.status is Outcome.SUCCEEDED
    assert (result.stdout, result.stderr, result.message) == ("", "", "")
    assert result.stdout_path == str(workdir / "logs" / "runs" / "quiet" / "7.out")
    assert result.stderr_path == str(workdir / "logs" / "runs" / "quiet" / "7.err")
    assert Path(result.stdout_path).read_bytes() == b""
    assert Path(result.stderr_path).read_bytes() == b""


BIG_OUTPUT = (
    "import sys\n"
    "w = sys.stdout.buffer.write\n"
    "w(b'BEGIN')\n"
    "for i in range(100):\n"
    "    w((b'%08d' % i) * 125000)\n"
    "w(b'END')\n"
)


@pytest.mark.slow
def test_100_mb_of_output_keeps_memory_flat_and_tails_exact(
    executor: JobExecutor, workdir: Path
) -> None:
    before = vm_rss_kib()
    result = executor.execute(make_job((sys.executable, "-c", BIG_OUTPUT), workdir), 100_000)
    growth_mib = (vm_rss_kib() - before) / 1024
    assert result.status is Outcome.SUCCEEDED, result.stderr
    size = 5 + 100 * 1_000_000 + 3
    assert result.stdout_path is not None
    assert os.path.getsize(result.stdout_path) == size
    tail = 32 * 1024
    head = (b"BEGIN" + b"00000000" * 125000)[:tail].decode()
    last = (b"00000099" * 125000 + b"END")[-tail:].decode()
    assert result.stdout == head + f"\n[... {size - 2 * tail} bytes omitted ...]\n" + last
    assert growth_mib < 20, f"RSS grew by {growth_mib:.1f} MiB"


def test_non_utf8_output_is_replaced_not_raised(executor: JobExecutor, workdir: Path) -> None:
    result = executor.execute(make_job(r"printf '\377\376ok\n'; printf 'x\200' >&2", workdir), 8)
    assert result.status is Outcome.SUCCEEDED
    assert result.stdout == "\ufffd\ufffdok\n"
    assert result.stderr == "x\ufffd"


def test_list_command_passes_arguments_with_spaces_unsplit(
    executor: JobExecutor, workdir: Path
) -> None:
    command = ("/bin/sh", "-c", 'printf "[%s]" "$@"', "sh", "a b", "  c  d ", "", "*", "$HOME")
    result = executor.execute(make_job(command, workdir), 9)
    assert result.stdout == "[a b][  c  d ][][*][$HOME]"


def test_string_command_runs_through_the_shell(executor: JobExecutor, workdir: Path) -> None:
    result = executor.execute(make_job("echo one | tr o 0 && echo two >&2", workdir), 10)
    assert (result.stdout, result.stderr) == ("0ne\n", "two\n")


def test_stdin_is_dev_null(executor: JobExecutor, workdir: Path) -> None:
    result = executor.execute(make_job("cat; echo end", workdir, timeout_seconds=10), 11)
    assert result.status is Outcome.SUCCEEDED
    assert result.stdout == "end\n"


# -- could not start ---------------------------------------------------------------------


def test_missing_working_directory_is_not_started_and_named(
    executor: JobExecutor, workdir: Path
) -> None:
    missing = workdir / "no such dir"
    marker = workdir / "ran-in-missing-dir"
    result = executor.execute(make_job(f"touch '{marker}'", missing), 12)
    assert result.status is Outcome.NOT_STARTED
    assert result.message == f"working directory {str(missing)!r} does not exist"
    assert result.exit_code is None and result.signal is None
    assert not marker.exists()


def test_working_directory_that_is_a_file(executor: JobExecutor, workdir: Path) -> None:
    a_file = workdir / "plain-file"
    a_file.write_text("")
    result = executor.execute(make_job(("/bin/true",), a_file), 13)
    assert result.status is Outcome.NOT_STARTED
    assert result.message == f"working directory {str(a_file)!r} is not a directory"


def test_list_command_not_found_is_not_started(executor: JobExecutor, workdir: Path) -> None:
    result = executor.execute(make_job(("no-such-program-xyz", "--flag"), workdir), 14)
    assert result.status is Outcome.NOT_STARTED
    assert result.message.startswith("command 'no-such-program-xyz' not found")
    assert "PATH" in result.message
    path_result = executor.execute(make_job(("/nonexistent/prog",), workdir), 15)
    assert path_result.status is Outcome.NOT_STARTED
    assert path_result.message == "command '/nonexistent/prog' not found"


def test_string_command_not_found_fails_with_127_and_a_hint(
    executor: JobExecutor, workdir: Path
) -> None:
    result = executor.execute(make_job("no-such-program-xyz --flag", workdir), 16)
    assert result.status is Outcome.FAILED
    assert result.exit_code == 127
    assert "not found" in result.message
    assert "no-such-program-xyz" in result.stderr


def test_permission_denied(executor: JobExecutor, workdir: Path) -> None:
    script = workdir / "not-executable.sh"
    script.write_text("#!/bin/sh\necho should not run\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)  # no x bit: even root cannot execve it
    result = executor.execute(make_job((str(script),), workdir), 17)
    assert result.status is Outcome.NOT_STARTED
    assert result.message.startswith(f"permission denied running {str(script)!r}")
    assert result.stdout == ""
    via_shell = executor.execute(make_job(str(script), workdir), 18)
    assert via_shell.status is Outcome.FAILED
    assert via_shell.exit_code == 126
    assert "permission denied" in via_shell.message


def test_script_without_interpreter_line(executor: JobExecutor, workdir: Path) -> None:
    script = workdir / "bad-interpreter.sh"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    result = executor.execute(make_job((str(script),), workdir), 19)
    assert result.status is Outcome.NOT_STARTED
    assert "interpreter" in result.message and str(script) in result.message


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"A=B": "x"}, "'A=B' is invalid"),
        ({"": "x"}, "'' is invalid"),
        ({"OK": "nul\x00inside"}, "'OK' contains a NUL"),
    ],
    ids=["equals-in-name", "empty-name", "nul-in-value"],
)
def test_bad_environment_is_not_started(
    executor: JobExecutor, workdir: Path, env: dict[str, str], fragment: str
) -> None:
    result = executor.execute(make_job(("/bin/true",), workdir, env=env), 20)
    assert result.status is Outcome.NOT_STARTED
    assert fragment in result.message


@pytest.mark.parametrize(
    ("command", "fragment"),
    [((), "empty"), (("/bin/echo", "a\x00b"), "NUL"), ("echo \x00", "NUL")],
    ids=["empty-list", "nul-in-argument", "nul-in-string"],
)
def test_unusable_command_is_not_started(
    executor: JobExecutor, workdir: Path, command: Command, fragment: str
) -> None:
    result = executor.execute(make_job(command, workdir), 21)
    assert result.status is Outcome.NOT_STARTED
    assert fragment in result.message


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [({"working_directory": ""}, "working directory ''"), ({"env": None}, "env None")],
    ids=["empty-working-directory", "env-not-a-mapping"],
)
def test_unvalidated_config_is_not_started_rather_than_raising(
    executor: JobExecutor, workdir: Path, overrides: dict[str, object], fragment: str
) -> None:
    job = dataclasses.replace(make_job(("/bin/true",), workdir), **overrides)  # type: ignore[arg-type]
    result = executor.execute(job, 24)
    assert result.status is Outcome.NOT_STARTED
    assert fragment in result.message


def test_job_name_that_is_not_a_folder_name(executor: JobExecutor, workdir: Path) -> None:
    result = executor.execute(make_job(("/bin/true",), workdir, name="../escape"), 22)
    assert result.status is Outcome.NOT_STARTED
    assert "'../escape'" in result.message
    assert not (workdir / "logs" / "escape").exists()


def test_unwritable_output_folder_is_not_started(workdir: Path) -> None:
    blocker = workdir / "blocker-file"
    blocker.write_text("")
    executor = JobExecutor(blocker / "logs")
    result = executor.execute(make_job(("/bin/true",), workdir), 23)
    assert result.status is Outcome.NOT_STARTED
    assert "cannot write output file" in result.message
    assert str(blocker) in result.message


# -- environment -------------------------------------------------------------------------


def parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_environment_is_base_then_job_then_jobfsm_variables(workdir: Path) -> None:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "A": "base", "B": "base"}
    executor = JobExecutor(workdir / "logs-env", base_env=base)
    job = make_job(
        ("/usr/bin/env",), workdir, name="envjob",
        env={"B": "job", "C": "job with spaces", "JOBFSM_JOB": "forged", "JOBFSM_NODE_PID": "1"},
    )
    when = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    env = parse_env(executor.execute(job, 31, scheduled_for=when).stdout)
    assert env["A"] == "base"
    assert env["B"] == "job"
    assert env["C"] == "job with spaces"
    assert env["JOBFSM_JOB"] == "envjob"
    assert env["JOBFSM_RUN_ID"] == "31"
    assert env["JOBFSM_NODE_PID"] == str(os.getpid())  # who started it: the lost-run reaper's proof
    assert env["JOBFSM_SCHEDULED_FOR"] == "2026-03-29T00:30:00+00:00"
    assert "HOME" not in env or "HOME" in base  # nothing leaks from the daemon's own env
    manual = parse_env(executor.execute(job, 32).stdout)
    assert manual["JOBFSM_SCHEDULED_FOR"] == ""


def test_base_environment_defaults_to_the_process_environment(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBFSM_TEST_MARKER", "from-daemon")
    executor = JobExecutor(workdir / "logs-env2")
    env = parse_env(executor.execute(make_job(("/usr/bin/env",), workdir), 33).stdout)
    assert env["JOBFSM_TEST_MARKER"] == "from-daemon"


# -- signals, timeouts, termination -----------------------------------------------------


def test_child_killed_by_a_signal_fails_with_the_signal(
    executor: JobExecutor, workdir: Path
) -> None:
    result = executor.execute(make_job("kill -KILL $$", workdir), 40)
    assert result.status is Outcome.FAILED
    assert result.exit_code is None
    assert result.signal == signal.SIGKILL
    assert "SIGKILL" in result.message


@pytest.mark.slow
def test_timeout_terminates_the_whole_group_including_grandchildren(
    executor: JobExecutor, workdir: Path
) -> None:
    job = make_job("echo $$; sleep 300 & sleep 300", workdir, timeout_seconds=1)
    started = time.monotonic()
    result = executor.execute(job, 41)
    elapsed = time.monotonic() - started
    assert result.status is Outcome.TIMED_OUT
    assert result.exit_code is None
    assert result.signal == signal.SIGTERM
    assert result.message == "timed out after 1 s; process group terminated"
    assert 1.0 <= elapsed < 1.0 + GRACE + 2.0
    assert group_gone(int(result.stdout.split()[0])), "a process of the job's group survived"


@pytest.mark.slow
def test_timeout_escalates_to_sigkill_after_the_grace_period(
    executor: JobExecutor, workdir: Path
) -> None:
    job = make_job("trap '' TERM; echo $$; sleep 300 & sleep 300", workdir, timeout_seconds=1)
    started = time.monotonic()
    result = executor.execute(job, 42)
    elapsed = time.monotonic() - started
    assert result.status is Outcome.TIMED_OUT
    assert result.signal == signal.SIGKILL
    assert result.message == "timed out after 1 s; process group killed after the 0.5 s grace period"
    assert elapsed >= 1.0 + GRACE
    assert group_gone(int(result.stdout.split()[0]))


def test_leftover_processes_are_terminated_after_a_normal_exit(
    executor: JobExecutor, workdir: Path
) -> None:
    result = executor.execute(make_job("echo $$; sleep 300 & echo done", workdir), 43)
    assert result.status is Outcome.SUCCEEDED
    assert result.exit_code == 0
    assert "left 1 process running" in result.message
    assert result.stdout.splitlines()[1] == "done"
    assert group_gone(int(result.stdout.split()[0]))


def test_leftovers_survive_when_the_executor_is_told_so(workdir: Path) -> None:
    executor = JobExecutor(workdir / "logs-keep", kill_leftovers=False)
    result = executor.execute(make_job("echo $$; sleep 300 &", workdir), 44)
    pgid = int(result.stdout.split()[0])
    try:
        assert result.status is Outcome.SUCCEEDED
        assert result.message == ""
        os.killpg(pgid, 0)  # the background sleep is still there
    finally:
        os.killpg(pgid, signal.SIGKILL)
    assert group_gone(pgid)


def test_terminate_kills_the_run_with_the_reason(
    executor: JobExecutor, workdir: Path, spawn: Spawn
) -> None:
    assert executor.terminate(999_999, reason="nothing") is False
    job = make_job("echo $$; sleep 300 & sleep 300", workdir)
    run = spawn(executor, job, 45)
    pgid = wait_pid(executor, job, 45)
    wait_registered(executor, [45])
    started = time.monotonic()
    assert executor.terminate(45, reason="stopped by alice") is True
    result = run.join()
    assert time.monotonic() - started < GRACE + 2.0
    assert result.status is Outcome.KILLED
    assert result.message == "stopped by alice"
    assert result.signal == signal.SIGTERM
    assert 45 not in executor.running()
    assert executor.terminate(45, reason="again") is False
    assert group_gone(pgid)


def test_terminate_escalates_when_sigterm_is_ignored(
    executor: JobExecutor, workdir: Path, spawn: Spawn
) -> None:
    job = make_job("trap '' TERM; echo $$; sleep 300", workdir)
    run = spawn(executor, job, 46)
    pgid = wait_pid(executor, job, 46)
    wait_registered(executor, [46])
    started = time.monotonic()
    assert executor.terminate(46, reason="killed at daemon shutdown") is True
    result = run.join()
    assert time.monotonic() - started >= GRACE
    assert result.status is Outcome.KILLED
    assert result.signal == signal.SIGKILL
    assert group_gone(pgid)


def test_terminate_all_shares_one_grace_period(workdir: Path, spawn: Spawn) -> None:
    executor = JobExecutor(workdir / "logs-all", kill_grace_seconds=GRACE)
    job = make_job("trap '' TERM; echo $$; sleep 300", workdir)
    runs = [spawn(executor, job, run_id) for run_id in range(50, 56)]
    pgids = [wait_pid(executor, job, run_id) for run_id in range(50, 56)]
    wait_registered(executor, list(range(50, 56)))
    started = time.monotonic()
    executor.terminate_all(reason="daemon shutdown")
    elapsed = time.monotonic() - started
    results = [run.join() for run in runs]
    assert GRACE <= elapsed < 2 * GRACE + 1.0  # one grace for all six, not six graces
    assert {r.status for r in results} == {Outcome.KILLED}
    assert {r.message for r in results} == {"daemon shutdown"}
    assert executor.running() == []
    for pgid in pgids:
        assert group_gone(pgid)


def test_signal_all_returns_at_once_and_the_last_reason_says_how_the_run_ended(workdir: Path) -> None:
    """The daemon's shutdown keeps the clock: SIGTERM now, SIGKILL when it decides."""
    executor = JobExecutor(workdir / "logs-signal-all", kill_grace_seconds=GRACE)
    job = make_job("trap '' TERM; echo $$; sleep 300", workdir)
    results: list[JobResult] = []
    delivered = threading.Event()

    def on_done(result: JobResult) -> None:
        results.append(result)
        delivered.set()

    try:
        assert executor.launch(job, 57, on_done=on_done) is None
        pgid = wait_pid(executor, job, 57)
        started = time.monotonic()
        assert executor.signal_all(signal.SIGTERM, reason="asked to stop", grace_seconds=60) == 1
        assert time.monotonic() - started < 0.5, "signal_all waited"
        assert executor.running() == [57]  # it ignores SIGTERM: still there
        assert executor.signal_all(signal.SIGKILL, reason="killed at once") == 1
        assert delivered.wait(10), "no result after SIGKILL"
    finally:
        executor.close()
    [result] = results
    assert (result.status, result.signal, result.message) == (Outcome.KILLED, signal.SIGKILL, "killed at once")
    assert group_gone(pgid)


def test_end_run_processes_ends_what_names_the_run_and_nothing_else(workdir: Path) -> None:
    """A lost run's processes are found by their environment, whatever their group or session."""
    gone_pid = 999_999_999  # above any pid_max: the process that started the run is gone
    ready = workdir / "stubborn-ready"

    def tagged(run_id: int, node_pid: int, command: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "JOBFSM_JOB": "lost", "JOBFSM_RUN_ID": str(run_id), "JOBFSM_NODE_PID": str(node_pid)}
        return subprocess.Popen(["/bin/sh", "-c", command], env=env, start_new_session=True)

    ours = [tagged(7, gone_pid, "exec sleep 300"), tagged(7, gone_pid, f"trap '' TERM; touch {ready}; exec sleep 300")]
    others = [tagged(8, gone_pid, "exec sleep 300"), tagged(7, os.getpid(), "exec sleep 300")]
    try:
        wait_for(ready.exists, 10, "the stubborn one to ignore SIGTERM")
        tag = RunTag("lost", 7, gone_pid)
        ends = end_run_processes([tag], grace_seconds=GRACE)
        assert ends == {tag: ProcessesEnded(ended=2, killed=1, left=0)}
        assert [p.wait(10) for p in ours] == [-signal.SIGTERM, -signal.SIGKILL]
        assert [p.poll() for p in others] == [None, None], "a process of another run was signalled"
        assert end_run_processes([RunTag("lost", 9, gone_pid)], grace_seconds=GRACE) == {
            RunTag("lost", 9, gone_pid): ProcessesEnded()
        }
    finally:
        for proc in ours + others:
            proc.kill()
            proc.wait(10)


# -- concurrency and times ---------------------------------------------------------------


def test_concurrent_runs_keep_their_own_outputs_and_results(workdir: Path) -> None:
    executor = JobExecutor(workdir / "logs-many")
    job = make_job('echo "out $JOBFSM_RUN_ID"; echo "err $JOBFSM_RUN_ID" >&2; exit 3', workdir)
    results: dict[int, JobResult] = {}
    lock = threading.Lock()

    def work(run_id: int) -> None:
        result = executor.execute(job, run_id)
        with lock:
            results[run_id] = result

    threads = [threading.Thread(target=work, args=(i,)) for i in range(100, 140)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == list(range(100, 140))
    for run_id, result in results.items():
        assert result.run_id == run_id
        assert (result.stdout, result.stderr) == (f"out {run_id}\n", f"err {run_id}\n")
        assert result.exit_code == 3
    assert executor.running() == []


def test_times_come_from_the_injected_clock(workdir: Path) -> None:
    frozen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    executor = JobExecutor(workdir / "logs-clock", clock=FakeClock(frozen))
    result = executor.execute(make_job(("/bin/true",), workdir), 60)
    assert result.start_time == frozen and result.end_time == frozen
    assert result.duration_seconds == 1.0  # two monotonic readings, one fake second apart


def test_times_are_aware_utc_and_ordered(executor: JobExecutor, workdir: Path) -> None:
    result = executor.execute(make_job("sleep 0.2", workdir), 61)
    assert result.start_time.tzinfo is not None
    assert result.start_time.utcoffset() == timedelta(0)
    assert result.start_time <= result.end_time
    assert 0.2 <= result.duration_seconds < 5


def test_a_result_records_every_field_the_store_keeps(executor: JobExecutor, workdir: Path) -> None:
    from jobfsm.daemon.finish import finish_of
    from jobfsm.model import Trigger
    from jobfsm.store import Claim
    from jobfsm.store.memory import MemoryStore

    result = executor.execute(make_job("echo out; echo err >&2; exit 4", workdir), 77)
    store = MemoryStore()
    run = store.claim_run(Claim("j", trigger=Trigger.MANUAL, node="n", started_at=result.start_time))
    assert run is not None
    recorded = store.finish_run(dataclasses.replace(finish_of(result), run_id=run.id))
    assert (recorded.exit_code, recorded.outcome, recorded.stdout_tail, recorded.stderr_tail) == (
        4, Outcome.FAILED, "out\n", "err\n"
    )
    assert recorded.ended_at == result.end_time and recorded.stdout_path == result.stdout_path


def test_launch_waits_for_many_runs_without_a_thread_each(workdir: Path) -> None:
    """A burst: 300 runs launched from one thread are each delivered exactly once, by one
    reaper thread (not a thread per run), and the reaper keeps no entry per finished run
    for the length of its (long) timeout."""
    executor = JobExecutor(workdir / "burst-logs", kill_grace_seconds=GRACE)
    results: dict[int, list[JobResult]] = {}
    lock = threading.Lock()
    all_done = threading.Event()
    count = 300

    def on_done(result: JobResult) -> None:
        with lock:
            results.setdefault(result.run_id, []).append(result)
            if len(results) == count:
                all_done.set()

    threads_before = threading.active_count()
    peak_threads = 0
    try:
        for run_id in range(count):
            job = make_job(("/bin/sh", "-c", f"echo {run_id}"), workdir, timeout_seconds=3600)
            assert executor.launch(job, run_id, on_done=on_done) is None
            peak_threads = max(peak_threads, threading.active_count())
        assert all_done.wait(60), f"only {len(results)} of {count} runs delivered"
        assert peak_threads <= threads_before + 1, "launch() started a thread per run"
        assert all(len(v) == 1 for v in results.values())
        assert {r[0].stdout for r in results.values()} == {f"{i}\n" for i in range(count)}
        assert all(r[0].status is Outcome.SUCCEEDED for r in results.values())
        reaper = executor._reaper
        assert reaper is not None
        assert len(reaper._timeouts) <= 64, "finished runs' timeouts are kept for an hour"
        assert executor.running() == []
    finally:
        executor.close()


def test_launch_returns_a_run_that_cannot_start_and_never_calls_back(workdir: Path) -> None:
    executor = JobExecutor(workdir / "logs")
    called: list[JobResult] = []
    result = executor.launch(make_job(("/bin/true",), workdir / "missing"), 1, on_done=called.append)
    assert result is not None and result.status is Outcome.NOT_STARTED
    assert result.message == f"working directory '{workdir / 'missing'}' does not exist"
    assert called == []
    executor.close()


def test_an_unreadable_output_file_reads_as_a_reason_not_an_exception(tmp_path: Path) -> None:
    """The result of a run must be recorded even when its output cannot be read back."""
    assert read_tail(tmp_path, 1024) == "[output not readable: Is a directory]"
    assert read_tail(tmp_path / "missing.out", 1024) == ""


def test_a_run_whose_result_cannot_be_collected_is_still_delivered_and_the_rest_go_on(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault in collecting one result (forced here: it cannot be caused for real) must not
    leave that run undelivered, its job 'running' for ever, nor stop the reaper."""
    executor = JobExecutor(workdir / "fault-logs")
    real_outcome = executor._outcome

    def outcome(run: object, job: JobConfig, leftovers: int) -> tuple[Outcome, int | None, int | None, str]:
        if job.name == "broken":
            raise RuntimeError("disk on fire")
        return real_outcome(run, job, leftovers)  # type: ignore[arg-type]

    monkeypatch.setattr(executor, "_outcome", outcome)
    results: dict[str, JobResult] = {}
    all_done = threading.Event()

    def on_done(result: JobResult) -> None:
        results[result.job_name] = result
        if len(results) == 3:
            all_done.set()

    try:
        for run_id, name in enumerate(["before", "broken", "after"]):
            assert executor.launch(make_job(("/bin/true",), workdir, name=name), run_id, on_done=on_done) is None
        assert all_done.wait(30), f"delivered: {sorted(results)}"
    finally:
        executor.close()
    assert results["before"].status is Outcome.SUCCEEDED
    assert results["after"].status is Outcome.SUCCEEDED
    broken = results["broken"]
    assert broken.status is Outcome.FAILED and broken.exit_code == 0
    assert broken.message == "the daemon could not collect this run's result: disk on fire"
    assert executor.running() == []


def test_reap_now_handles_ended_runs_on_the_calling_thread_while_the_reaper_is_paused(
    workdir: Path,
) -> None:
    """A burst pauses the reaper and collects ended runs itself between its chunks: their
    results must come on the burst's thread, each once, and none from the paused reaper."""
    executor = JobExecutor(workdir / "reap-now-logs")
    delivered: list[tuple[int, int]] = []

    def on_done(result: JobResult) -> None:
        delivered.append((result.run_id, threading.get_ident()))

    def exited(pid: int) -> bool:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    try:
        with executor.reaping_paused():
            for run_id in range(5):
                assert executor.launch(make_job(("/bin/true",), workdir), run_id, on_done=on_done) is None
            pids = [executor._runs[run_id].proc.pid for run_id in range(5)]
            wait_for(lambda: all(exited(pid) for pid in pids), 30, "the five runs to exit")
            executor.reap_now()
            assert sorted(run_id for run_id, _ in delivered) == list(range(5))
            assert {thread for _, thread in delivered} == {threading.get_ident()}
            assert executor.running() == []
    finally:
        executor.close()
