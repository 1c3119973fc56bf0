"""Bad input, generated: job documents from the schema's strategies, then mutated (wrong types,
huge and odd strings, control characters, deep nesting, invalid UTF-8), and garbage on every
command's arguments. Nothing crashes, nothing hangs, every problem names its file and field, and
the service leaves the folder as it was (the table is docs/reliability.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobfsm.config.loader import validate_file
from jobfsm.config.schema import job_schema
from jobfsm.errors import JobfsmError
from jobfsm.service import JobManagementService
from jobfsm.store.memory import MemoryStore
from tests.conftest import job_doc
from tests.strategies import job_documents
from tests.test_hostile_input import cli, globals_for, one_line

FIELDS = sorted(job_schema()["properties"])

ODD_TEXT = st.sampled_from([
    "", " ", "\x00", "\x1b[31mred", "a\nb", "\u202eevil", "\ufeff", "\ud800", "🕐" * 100, "x" * 1_000_000,
    "$(rm -rf /)", "<img src=x onerror=alert(1)>", "../../etc/passwd", "\\", "%", "0 0 31 2 *",
])
HOSTILE = st.one_of(
    ODD_TEXT,
    st.text(max_size=200),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(ODD_TEXT, st.integers()), max_size=5),
    st.dictionaries(st.text(max_size=10), st.one_of(ODD_TEXT, st.integers(), st.none()), max_size=5),
    st.integers(min_value=50, max_value=3000).map(lambda n: json.loads("[" * n + "]" * n) if n < 900 else "["),
)


def mutate(document: dict[str, Any], key: str, value: Any, drop: bool) -> dict[str, Any]:
    out = dict(document)
    if drop:
        out.pop(key, None)
    else:
        out[key] = value
    return out


def as_bytes(document: dict[str, Any], damage: int) -> bytes:
    text = json.dumps(document, ensure_ascii=False)
    raw = text.encode("utf-8", "surrogatepass")
    if damage == 1:  # invalid UTF-8 in the middle
        return raw[: len(raw) // 2] + b"\xff\xfe" + raw[len(raw) // 2 :]
    if damage == 2:  # cut short
        return raw[: len(raw) * 2 // 3]
    return raw


# Property: bad job files never crash validation, and every problem names its file and field.
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow, HealthCheck.data_too_large])
@given(document=job_documents(), key=st.sampled_from([*FIELDS, "unknown_key"]), value=HOSTILE,
       drop=st.booleans(), damage=st.sampled_from([0, 0, 0, 1, 2]))
def test_mutated_job_files_are_named_problems_never_crashes(tmp_path: Path, document: dict, key: str,
                                                            value: Any, drop: bool, damage: int) -> None:
    path = tmp_path / "jobs" / "x.json"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(as_bytes(mutate(document, key, value, drop), damage))
    report = validate_file(path)  # must not raise
    for problem in report.errors:
        assert problem.path.endswith("x.json"), problem
        assert problem.json_path.startswith("$"), problem
        assert problem.message and "\n" not in problem.message and len(problem.message) < 2_000, problem
    if damage:
        assert not report.valid


# Property: the service refuses every invalid document and leaves the folder unchanged.
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow, HealthCheck.data_too_large])
@given(document=job_documents(), key=st.sampled_from(FIELDS), value=HOSTILE, drop=st.booleans())
def test_the_service_refuses_invalid_documents_and_leaves_the_folder(tmp_path: Path, document: dict, key: str,
                                                                     value: Any, drop: bool) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir(exist_ok=True)
    existing = jobs / "existing.json"
    if not existing.exists():
        existing.write_text(json.dumps(job_doc("existing"), indent=2))
    before = job_files(jobs)
    service = JobManagementService(jobs, tmp_path / "logs", store=MemoryStore())
    candidate = mutate(document, key, value, drop)
    as_edit = {**candidate, "name": "existing"}
    if not validate_file_text(tmp_path, candidate):  # else the mutation happened to be valid
        with pytest.raises((JobfsmError, ValueError, LookupError)):
            service.create_job(candidate, "fuzz")
    if not validate_file_text(tmp_path, as_edit):
        with pytest.raises((JobfsmError, ValueError, LookupError)):
            service.edit_job("existing", as_edit, "fuzz", None)
        assert job_files(jobs) == before


def job_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".json"}


def validate_file_text(tmp_path: Path, document: dict[str, Any]) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir(exist_ok=True)
    name = document.get("name")
    stem = name if isinstance(name, str) and name and "/" not in name and "\x00" not in name else "probe"
    path = probe / f"{stem}.json"
    try:
        path.write_bytes(as_bytes(document, 0))
    except (OSError, ValueError):
        return False
    try:
        return validate_file(path).valid
    finally:
        path.unlink(missing_ok=True)


# -- garbage on every command ---------------------------------------------------------------

COMMANDS = ["validate", "next", "schema", "status", "history", "logs", "enable", "disable",
            "create", "delete", "audit", "users"]
GARBAGE = [
    ["--limit", "-1"], ["--limit", "ten"], ["-n", "100000000"], ["--since", "yesterday"],
    ["--until", "2026-13-45"], ["--after", "soon"], ["--run", "0"], ["--format", "xml"],
    ["--status", "exploded"], ["--no-such-option"], ["a" * 100_000], ["\u202e\ufeff"],
]  # (no NUL: the kernel cannot pass one in an argument)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", COMMANDS)
def test_garbage_arguments_are_one_line_never_a_traceback(tmp_path: Path, command: str) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "good.json").write_text(json.dumps(job_doc("good")))
    for garbage in GARBAGE:
        code, _out, err = cli(command, *garbage, *globals_for(tmp_path))
        if code == 0:
            continue  # garbage some command takes as a name or a path and answers for (e.g. validate)
        assert code in (1, 2), (command, garbage, code, err[-500:])
        line = one_line(err)
        assert line.startswith("jobfsm"), (command, garbage, line)


BAD_STORES = ["nosuch://x", "postgresql://nobody@127.0.0.1:1/x", "mysql://root@127.0.0.1/test",
              "sqlite:///" + "x" * 5000, "postgresql://[::1"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("url", BAD_STORES, ids=[u.encode("unicode_escape").decode() for u in BAD_STORES])
@pytest.mark.parametrize("command", ["status", "history", "audit"])
def test_bad_store_urls_are_one_line(tmp_path: Path, command: str, url: str) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "good.json").write_text(json.dumps(job_doc("good")))
    argv = [command, *(["good"] if command == "history" else []), *globals_for(tmp_path), "--store", url]
    code, _out, err = cli(*argv)
    assert code in (1, 2), (argv, code, err[-500:])
    assert one_line(err).startswith("jobfsm")


@pytest.mark.parametrize("stdin", ["", "not json", "[1, 2", '{"name": 1}', "\x00\x01", "[" * 10_000])
def test_create_from_garbage_on_stdin_is_one_line(tmp_path: Path, stdin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    (tmp_path / "jobs").mkdir()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8", "surrogatepass"))))
    code, _out, err = cli("create", "-", *globals_for(tmp_path))
    assert code == 1, err
    assert "Traceback" not in err
    assert all(": $" in line for line in err.splitlines()), err  # each problem names its field
    assert list((tmp_path / "jobs").iterdir()) == []
