"""Tests of jobfsm.joblog: the two rotating log files, one record per line, real files."""

from __future__ import annotations

import contextlib
import itertools
import logging
import logging.handlers
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.errors import JobfsmError, LogDirectoryError
from jobfsm.joblog import JOBS_LOG, MAIN_LOG, JobLogger, escape
from jobfsm.model import JobConfig, Outcome
from jobfsm.runs.executor import JobExecutor, JobResult
from tests.conftest import fill

LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00) "
    r"(?P<level>INFO|WARNING|ERROR|CRITICAL) (?P<component>\S+) (?P<message>.*)$"
)
UNESCAPE = re.compile(r'\\(\\|n|"|x[0-9a-f]{2}|u[0-9a-f]{4})')


def unescape(text: str) -> str:
    """The inverse of escape() (plus the \\" of quoted fields), to prove nothing is lost."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in ("\\", '"'):
            return code
        if code == "n":
            return "\n"
        return chr(int(code[1:], 16))

    return UNESCAPE.sub(one, text)


def field(line: str, name: str) -> str:
    """A quoted field of a record, unescaped."""
    match = re.search(rf' {name}="((?:[^"\\]|\\.)*)"', line)
    assert match, f"no {name}= in {line!r}"
    return unescape(match.group(1))


def records(path: Path) -> list[re.Match[str]]:
    out = []
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        match = LINE.match(line)
        assert match, f"malformed log line {line!r}"
        out.append(match)
    return out


def fake_result(
    *,
    name: str = "job",
    run_id: int = 1,
    stdout: str = "",
    stderr: str = "",
    message: str = "",
    status: Outcome = Outcome.SUCCEEDED,
    exit_code: int | None = 0,
) -> JobResult:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return JobResult(
        job_name=name, run_id=run_id, start_time=now, end_time=now, exit_code=exit_code,
        stdout=stdout, stderr=stderr, duration_seconds=0.25, status=status, signal=None,
        message=message, stdout_path=None, stderr_path=None,
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("joblog")


@pytest.fixture(scope="module")
def counter() -> Iterator[int]:
    return itertools.count(1)


@pytest.fixture(scope="module")
def joblogger(root: Path) -> Iterator[JobLogger]:
    logger = JobLogger(root / "shared", max_bytes=1 << 30)
    yield logger
    logger.close()


@pytest.fixture(scope="module")
def executor(root: Path) -> JobExecutor:
    return JobExecutor(root / "shared")


job_names = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,30}", fullmatch=True)


# Property 10: run start and completion logged
@settings(max_examples=100, deadline=None)
@given(name=job_names, code=st.integers(min_value=0, max_value=255), manual=st.booleans())
def test_every_run_start_and_completion_is_in_the_jobs_log(
    joblogger: JobLogger,
    executor: JobExecutor,
    root: Path,
    counter: Iterator[int],
    name: str,
    code: int,
    manual: bool,
) -> None:
    run_id = next(counter)
    job = JobConfig(
        name=name, schedule="* * * * *", working_directory=str(root), enabled=True,
        command=("/bin/sh", "-c", f"echo run {run_id}; exit {code}"),
    )
    trigger = "manual" if manual else "schedule"
    scheduled = None if manual else datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    joblogger.job_start(name, run_id, trigger=trigger, scheduled_for=scheduled,
                        command=job.command_text)
    result = executor.execute(job, run_id)
    joblogger.job_completion(result, trigger=trigger)

    mine = [m for m in records(joblogger.jobs_path) if m["component"] == f"job:{name}"]
    starts = [m for m in mine if m["message"].startswith(f"run {run_id} started: ")]
    ends = [m for m in mine if m["message"].startswith(f"run {run_id} finished: ")]
    assert len(starts) == 1 and len(ends) == 1
    assert f"trigger={trigger}" in starts[0]["message"]
    assert field(starts[0]["message"], "command") == job.command_text
    if scheduled:
        assert "scheduled_for=2026-05-01T12:00:00+00:00" in starts[0]["message"]
    end = ends[0]["message"]
    status = "succeeded" if code == 0 else "failed"
    assert f" status={status} " in end
    assert f" exit_code={code} " in end
    assert re.search(r" duration=\d+\.\d{3}s ", end)
    assert field(end, "stdout") == f"run {run_id}\n"
    assert ends[0]["level"] == ("INFO" if code == 0 else "WARNING")
    assert datetime.fromisoformat(ends[0]["time"]).utcoffset() == timedelta(0)
    assert f"run {run_id} " not in joblogger.main_path.read_text()


segments = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="/\x00"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", "..") and len(s.encode()) <= 200)


# Property 11: both log files created
@settings(max_examples=100, deadline=None)
@given(parts=st.lists(segments, min_size=1, max_size=3))
def test_both_log_files_are_created_and_written_separately(
    root: Path, counter: Iterator[int], parts: list[str]
) -> None:
    folder = root.joinpath("p11", str(next(counter)), *parts)
    assert not folder.exists()
    logger = JobLogger(folder)
    try:
        assert (folder / MAIN_LOG).is_file()
        assert (folder / JOBS_LOG).is_file()
        logger.info("hello main")
        logger.job_skipped("a-job", 3, reason="still running")
    finally:
        logger.close()
    main, jobs = records(folder / MAIN_LOG), records(folder / JOBS_LOG)
    assert [(m["level"], m["component"], m["message"]) for m in main] == [
        ("INFO", "daemon", "hello main")
    ]
    assert [(m["component"], m["message"]) for m in jobs] == [
        ("job:a-job", 'run 3 skipped: reason="still running"')
    ]


# Property 12: rotation bounded
@settings(max_examples=100, deadline=None)
@given(
    max_bytes=st.integers(min_value=200, max_value=3000),
    count=st.integers(min_value=1, max_value=80),
    output=st.text(max_size=150),
)
def test_rotation_keeps_at_most_five_bounded_backups(
    root: Path, counter: Iterator[int], max_bytes: int, count: int, output: str
) -> None:
    folder = root / "p12" / str(next(counter))
    logger = JobLogger(folder, max_bytes=max_bytes, backup_count=5)
    try:
        for run_id in range(count):
            logger.job_completion(fake_result(run_id=run_id, stdout=output), trigger="schedule")
    finally:
        logger.close()
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    backups = sorted(n for n in files if n.startswith(JOBS_LOG + "."))
    assert set(backups) <= {f"{JOBS_LOG}.{i}" for i in range(1, 6)}
    lines = [line for data in files.values() for line in data.split(b"\n")[:-1]]
    longest_record = max(len(line) + 1 for line in lines)
    for name, data in files.items():
        assert len(data) <= max_bytes + longest_record, f"{name} is {len(data)} bytes"
    newest = files[JOBS_LOG].decode().split("\n")[-2]
    assert f" run {count - 1} finished: " in newest  # rotation never loses the latest record
    total = sum(len(d) for n, d in files.items() if n.startswith(JOBS_LOG))
    if total < max_bytes:
        assert not backups


controls = st.text(
    alphabet=st.one_of(
        st.characters(),  # any character but surrogates
        st.sampled_from("\n\r\x00\x1b\x7f\x85\u2028\u2029\\\"\t\x0b\x0c\x1c"),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
    ),
    max_size=200,
)


# Escape property: job output with newlines and control characters cannot forge log lines
@settings(max_examples=100, deadline=None)
@given(out=controls, err=controls, message=controls)
def test_output_with_control_characters_stays_on_one_line(
    joblogger: JobLogger, counter: Iterator[int], out: str, err: str, message: str
) -> None:
    before = joblogger.jobs_path.stat().st_size
    run_id = next(counter)
    joblogger.job_completion(
        fake_result(run_id=run_id, stdout=out, stderr=err, message=message,
                    status=Outcome.FAILED, exit_code=1),
        trigger="schedule",
    )
    with joblogger.jobs_path.open("rb") as f:
        f.seek(before)
        written = f.read().decode("utf-8")
    assert written.endswith("\n")
    assert written.count("\n") == 1
    assert len(written.splitlines()) == 1
    assert all(ch >= " " and not "\x7f" <= ch <= "\x9f" for ch in written[:-1])
    line = written[:-1]
    assert LINE.match(line)
    assert f" run {run_id} finished: " in line
    assert field(line, "stdout") == out
    assert field(line, "stderr") == err
    assert field(line, "message") == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a\nb", "a\\nb"),
        ("back\\slash", "back\\\\slash"),
        ("\r\t\x00\x1b\x7f\x85", "\\x0d\\x09\\x00\\x1b\\x7f\\x85"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("été ✓", "été ✓"),
        (None, "-"),
        (42, "42"),
    ],
    ids=["plain", "newline", "backslash", "controls", "separators", "unicode", "none", "int"],
)
def test_escape(text: object, expected: str) -> None:
    assert escape(text) == expected


# -- the rest of the API ----------------------------------------------------------------


def test_main_log_records(tmp_path: Path) -> None:
    with JobLogger(tmp_path) as logger:
        logger.startup(version="0.1.0", node="host-1", jobs=4, pid=1234)
        logger.config_error("jobs/x.json", "$.schedule: bad\nexpression")
        logger.schedule_error("nightly", "never fires")
        logger.info("reloaded 4 jobs")
        logger.error("store unreachable")
        logger.fatal("cannot bind")
        logger.shutdown(reason="SIGTERM")
    got = [(m["level"], m["component"], m["message"]) for m in records(tmp_path / MAIN_LOG)]
    assert got == [
        ("INFO", "daemon", "started: version=0.1.0 node=host-1 pid=1234 jobs=4"),
        ("ERROR", "loader", "jobs/x.json: $.schedule: bad\\nexpression"),
        ("ERROR", "scheduler", "job nightly: never fires"),
        ("INFO", "daemon", "reloaded 4 jobs"),
        ("ERROR", "daemon", "store unreachable"),
        ("CRITICAL", "daemon", "cannot bind"),
        ("INFO", "daemon", 'stopped: reason="SIGTERM"'),
    ]
    assert (tmp_path / JOBS_LOG).read_text() == ""


def test_jobs_log_records(tmp_path: Path) -> None:
    with JobLogger(tmp_path) as logger:
        logger.state_change("nightly", event="fire", source="idle", dest="running")
        logger.state_change("nightly", event="disable", source="failed", dest="disabled",
                            user="alice")
        logger.job_skipped("nightly", None, reason="overlap=skip and run 3 is running")
        logger.job_start(
            "nightly", 5, trigger="catch_up",
            scheduled_for=datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2))),
            command="echo hi",
        )
    got = [(m["component"], m["message"]) for m in records(tmp_path / JOBS_LOG)]
    assert got == [
        ("job:nightly", "state idle -> running: event=fire user=-"),
        ("job:nightly", "state failed -> disabled: event=disable user=alice"),
        ("job:nightly", 'fire skipped: reason="overlap=skip and run 3 is running"'),
        ("job:nightly",
         'run 5 started: trigger=catch_up scheduled_for=2026-03-29T00:30:00+00:00 command="echo hi"'),
    ]
    assert (tmp_path / MAIN_LOG).read_text() == ""


def test_log_directory_under_a_file_is_a_log_directory_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "logs"
    with pytest.raises(LogDirectoryError, match=re.escape(repr(str(target)))) as info:
        JobLogger(target)
    assert isinstance(info.value, JobfsmError) and isinstance(info.value, OSError)
    assert "--logs" in str(info.value)


def test_unwritable_log_file_is_a_log_directory_error(tmp_path: Path) -> None:
    (tmp_path / MAIN_LOG).mkdir()  # a folder where the file should be: open() fails, even as root
    with pytest.raises(LogDirectoryError, match=re.escape(repr(str(tmp_path)))):
        JobLogger(tmp_path)


def test_two_loggers_on_two_folders_do_not_mix_nor_reach_the_root_logger(
    tmp_path: Path,
) -> None:
    seen: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    catcher = Catch()
    logging.getLogger().addHandler(catcher)
    registered = set(logging.Logger.manager.loggerDict)
    try:
        with JobLogger(tmp_path / "a") as a, JobLogger(tmp_path / "b") as b:
            a.info("only in a")
            b.info("only in b")
            a.job_skipped("x", 1, reason="a")
            b.job_skipped("y", 2, reason="b")
    finally:
        logging.getLogger().removeHandler(catcher)
    assert seen == []
    assert set(logging.Logger.manager.loggerDict) == registered
    assert [m["message"] for m in records(tmp_path / "a" / MAIN_LOG)] == ["only in a"]
    assert [m["message"] for m in records(tmp_path / "b" / MAIN_LOG)] == ["only in b"]
    assert [m["component"] for m in records(tmp_path / "a" / JOBS_LOG)] == ["job:x"]
    assert [m["component"] for m in records(tmp_path / "b" / JOBS_LOG)] == ["job:y"]


def test_close_releases_the_files_and_silences_the_logger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = JobLogger(tmp_path)
    logger.info("before")
    logger.close()
    logger.info("after")
    logger.job_skipped("x", None, reason="after")
    assert [m["message"] for m in records(tmp_path / MAIN_LOG)] == ["before"]
    assert (tmp_path / JOBS_LOG).read_text() == ""
    assert capsys.readouterr().err == ""  # not even logging's last-resort handler


# -- the writer: rotation, flushing, threads, close ---------------------------------------


def line_bytes(message: str) -> int:
    """The size on disk of an ``info(message)`` line: the timestamp is always 29 characters."""
    return len(f"{'0' * 29} INFO daemon {message}\n".encode())


def numbered(path: Path) -> list[int]:
    """The numbers of ``info("line N ...")`` records in one file, in order."""
    return [int(m["message"].split()[1]) for m in records(path)]


def messages_in(path: Path) -> list[str]:
    """The messages of the records in one file, in order."""
    return [m["message"] for m in records(path)]


@pytest.mark.parametrize(
    ("extra", "per_file"), [(1, 3), (0, 2)], ids=["room-for-three", "three-would-reach-limit"]
)
def test_rotation_at_the_size_limit_names_backups_and_never_splits_a_line(
    tmp_path: Path, extra: int, per_file: int
) -> None:
    message = "line {:02d} " + "é" * 20  # two bytes a character: sizes are counted in bytes
    size = line_bytes(message.format(0))
    max_bytes = 3 * size + extra  # a line that would bring the file to max_bytes rotates first
    with JobLogger(tmp_path, max_bytes=max_bytes, backup_count=5) as logger:
        for n in range(1, 7 * per_file + 1):
            logger.info(message.format(n))
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(MAIN_LOG))
    assert names == [MAIN_LOG] + [f"{MAIN_LOG}.{i}" for i in range(1, 6)]
    last = 7 * per_file
    for age in range(6):  # .5 is the oldest kept; the first two files' lines are gone
        path = tmp_path / (MAIN_LOG + (f".{age}" if age else ""))
        data = path.read_bytes()
        assert len(data) == per_file * size < max_bytes
        newest = last - age * per_file
        assert numbered(path) == list(range(newest - per_file + 1, newest + 1))


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=40),
    room=st.integers(min_value=1, max_value=400),
    backups=st.integers(min_value=1, max_value=5),
)
def test_rotation_puts_every_line_where_rotating_file_handler_did(
    root: Path, counter: Iterator[int], lengths: list[int], room: int, backups: int
) -> None:
    messages = [f"line {n} " + "x" * k for n, k in enumerate(lengths)]  # ASCII: chars == bytes
    max_bytes = max(line_bytes(m) for m in messages) + room  # no line alone reaches the limit
    ours, theirs = root / "p-rot" / str(next(counter)), root / "p-rot" / str(next(counter))
    with JobLogger(ours, max_bytes=max_bytes, backup_count=backups) as logger:
        for message in messages:
            logger.info(message)
    theirs.mkdir(parents=True)
    handler = logging.handlers.RotatingFileHandler(
        theirs / MAIN_LOG, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("2026-01-01T00:00:00.000+00:00 INFO daemon %(message)s"))
    reference = logging.Logger("reference", logging.INFO)
    reference.addHandler(handler)
    for message in messages:
        reference.info(message)
    handler.close()
    layout = {p.name: numbered(p) for p in ours.iterdir() if p.name.startswith(MAIN_LOG)}
    expected = {p.name: numbered(p) for p in theirs.iterdir()}
    assert layout == expected


def test_a_file_that_is_not_regular_is_never_rotated(tmp_path: Path) -> None:
    (tmp_path / JOBS_LOG).symlink_to("/dev/null")
    with JobLogger(tmp_path, max_bytes=200) as logger:
        for run_id in range(20):
            logger.job_skipped("x", run_id, reason="a reason long enough to pass 200 bytes soon")
    assert sorted(p.name for p in tmp_path.iterdir()) == [JOBS_LOG, MAIN_LOG]


def test_each_line_is_in_the_file_as_soon_as_it_is_written(tmp_path: Path) -> None:
    with JobLogger(tmp_path) as logger:
        logger.info("one")
        assert [m["message"] for m in records(tmp_path / MAIN_LOG)] == ["one"]
        logger.job_skipped("x", None, reason="two")
        assert len(records(tmp_path / JOBS_LOG)) == 1


def test_buffered_defers_the_flush_to_the_end_of_the_outermost_block(tmp_path: Path) -> None:
    with JobLogger(tmp_path) as logger:
        logger.info("before")
        with logger.buffered():
            logger.info("outer")
            with logger.buffered():
                logger.info("inner")
                logger.job_skipped("x", 1, reason="inner")
            # leaving the inner block flushes nothing: another reader still sees the old file
            assert messages_in(tmp_path / MAIN_LOG) == ["before"]
            assert (tmp_path / JOBS_LOG).read_bytes() == b""
            logger.job_skipped("x", 2, reason="outer")
        assert messages_in(tmp_path / MAIN_LOG) == ["before", "outer", "inner"]
        assert [m["message"] for m in records(tmp_path / JOBS_LOG)] == [
            'run 1 skipped: reason="inner"', 'run 2 skipped: reason="outer"'
        ]
        logger.info("after")  # flushed per line again
        assert messages_in(tmp_path / MAIN_LOG)[-1] == "after"


def test_buffered_block_ended_by_an_exception_still_flushes(tmp_path: Path) -> None:
    with JobLogger(tmp_path) as logger:
        with pytest.raises(RuntimeError, match="boom"), logger.buffered():
            logger.info("kept")
            raise RuntimeError("boom")
        assert messages_in(tmp_path / MAIN_LOG) == ["kept"]
        logger.info("next")
        assert messages_in(tmp_path / MAIN_LOG) == ["kept", "next"]


def test_lines_from_eight_threads_are_all_there_and_whole(tmp_path: Path) -> None:
    threads, per_thread = 8, 400
    logger = JobLogger(tmp_path, max_bytes=32 * 1024, backup_count=50)
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        # half the threads in (overlapping) buffered blocks, half flushing every line
        with logger.buffered() if t % 2 else contextlib.nullcontext():
            for i in range(per_thread):
                logger.job_start(f"t{t}", i, trigger="schedule", scheduled_for=None,
                                 command=f"echo {t} {i} " + "z" * (i % 50))
                logger.info(f"t{t} i{i}")

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    try:
        # read before close(): every buffered block has ended, so everything is in the files
        jobs = [m for p in tmp_path.glob(JOBS_LOG + "*") for m in records(p)]
        main = [m for p in tmp_path.glob(MAIN_LOG + "*") for m in records(p)]
    finally:
        logger.close()
    assert len(list(tmp_path.glob(JOBS_LOG + ".*"))) > 2  # rotated several times meanwhile
    got = sorted(
        (m["component"], int(m["message"].split()[1]), field(m["message"], "command"))
        for m in jobs
    )
    assert got == sorted(
        (f"job:t{t}", i, f"echo {t} {i} " + "z" * (i % 50))
        for t in range(threads) for i in range(per_thread)
    )
    assert sorted(m["message"] for m in main) == sorted(
        f"t{t} i{i}" for t in range(threads) for i in range(per_thread)
    )


def test_close_is_idempotent_and_every_call_after_it_is_a_silent_no_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = JobLogger(tmp_path)
    with logger.buffered():
        logger.info("in a block")
        logger.close()  # flushes even inside a block
    assert messages_in(tmp_path / MAIN_LOG) == ["in a block"]
    logger.close()
    with logger.buffered():
        logger.startup(version="1", node="n", jobs=0, pid=1)
        logger.shutdown(reason="r")
        logger.config_error("p", "m")
        logger.schedule_error("j", "m")
        logger.error("m")
        logger.fatal("m")
        logger.info("m")
        logger.job_start("j", 1, trigger="manual", scheduled_for=None, command="c")
        logger.job_completion(fake_result(), trigger="manual")
        logger.job_skipped("j", None, reason="r")
        logger.state_change("j", event="e", source="a", dest="b")
    with logger:
        pass
    assert messages_in(tmp_path / MAIN_LOG) == ["in a block"]
    assert (tmp_path / JOBS_LOG).read_bytes() == b""
    assert capsys.readouterr() == ("", "")


def test_timestamps_are_the_time_of_writing(tmp_path: Path) -> None:
    with JobLogger(tmp_path) as logger:
        now = datetime.now(UTC)
        before = now.replace(microsecond=now.microsecond // 1000 * 1000)  # lines show ms
        for _ in range(3):
            logger.info("now")
        after = datetime.now(UTC)
    times = [datetime.fromisoformat(m["time"]) for m in records(tmp_path / MAIN_LOG)]
    assert all(before <= t <= after for t in times), (before, times, after)


def test_a_line_longer_than_the_limit_is_written_whole_and_an_empty_file_never_rotated(
    tmp_path: Path,
) -> None:
    with JobLogger(tmp_path, max_bytes=100) as logger:
        logger.info("line 1 " + "a" * 200)
        assert not (tmp_path / f"{MAIN_LOG}.1").exists()
        logger.info("line 2 " + "b" * 200)
    assert numbered(tmp_path / f"{MAIN_LOG}.1") == [1]
    assert numbered(tmp_path / MAIN_LOG) == [2]
    assert not (tmp_path / f"{MAIN_LOG}.2").exists()


def test_the_cached_date_and_time_of_a_past_second_is_not_reused(tmp_path: Path) -> None:
    with JobLogger(tmp_path) as logger:
        second = int(datetime.now(UTC).timestamp())
        logger._stamp = (second - 1, "1999-12-31T23:59:59")  # white box: as if a second passed
        logger.info("now")
    (line,) = records(tmp_path / MAIN_LOG)
    assert line["time"] >= datetime.fromtimestamp(second, UTC).isoformat(timespec="milliseconds")


def test_a_full_disk_is_reported_once_and_its_end_once(
    small_disk: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logs folder on a real tmpfs that fills up: lines are lost, the daemon is not, and
    stderr says so once (not once per line, even when short lines still fit now and then), then
    once more when writing has worked for a while."""
    logger = JobLogger(small_disk)
    filler = fill(small_disk)
    for i in range(200):
        logger.info(f"line {i} " + "x" * (200 if i % 3 else 1))
    said = capsys.readouterr().err
    assert said.count("cannot write the log") == 1, said
    assert "' can be written again" not in said, said
    filler.unlink()
    monkeypatch.setattr("jobfsm.joblog.RECOVERED_AFTER_SECONDS", 0.0)  # a minute later
    logger.info("back")
    assert capsys.readouterr().err.count("' can be written again") == 1
    logger.close()
    assert "back" in (small_disk / "scheduler_main.log").read_text()
