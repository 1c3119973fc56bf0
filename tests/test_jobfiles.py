"""Job files: name checks, minimal edits that keep a file's style, atomic locked writes."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.config.jobfiles import (
    LOCK_FILE,
    JobFiles,
    apply_changes,
    check_name,
    render_document,
    version_of,
    write_atomic,
)
from jobfsm.config.loader import validate_document
from jobfsm.errors import ConcurrentModificationError, JobNotFoundError, ValidationError
from tests.strategies import job_documents

STYLES = {
    "two": lambda d: json.dumps(d, indent=2, ensure_ascii=False),
    "four": lambda d: json.dumps(d, indent=4, ensure_ascii=False),
    "tab": lambda d: json.dumps(d, indent="\t", ensure_ascii=False),
    "compact": lambda d: json.dumps(d, ensure_ascii=False),
    "ascii": lambda d: json.dumps(d, indent=2, ensure_ascii=True),
    "ours": lambda d: render_document(d).rstrip("\n"),
}
styles = st.sampled_from(sorted(STYLES))


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "X", "", "Upper", "-lead", ".hidden", "a" * 65, "spa ce", None, 7],
    ids=["dotdot", "slash", "upper1", "empty", "upper", "dash", "dot", "long", "space", "none", "int"],
)
def test_bad_names_are_refused_before_they_become_paths(name: Any, jobs_dir: Path) -> None:
    with pytest.raises(ValidationError, match="not a valid job name") as info:
        JobFiles(jobs_dir).path_for(name)
    assert [p.json_path for p in info.value.problems] == ["$.name"]


def test_good_name_becomes_a_file_in_the_folder(jobs_dir: Path) -> None:
    assert check_name("db_vacuum.v2-x") == "db_vacuum.v2-x"
    assert JobFiles(jobs_dir).path_for("a") == jobs_dir / "a.json"


changes_strategy = st.dictionaries(
    st.sampled_from(
        ["description", "timezone", "timeout_seconds", "env", "overlap", "catch_up", "retries",
         "retry_delay_seconds", "schedule", "command", "enabled", "$schema"]
    ),
    st.none() | st.just("new"),
    max_size=6,
)


@settings(max_examples=100)
@given(old=job_documents(), other=job_documents(), picks=changes_strategy, style=styles,
       newline=st.booleans())
def test_apply_changes_produces_exactly_the_new_document(
    old: dict[str, Any], other: dict[str, Any], picks: dict[str, str | None], style: str, newline: bool
) -> None:
    other = {**other, "$schema": "../schemas/job.schema.json"}
    new = dict(old)
    for key, what in picks.items():
        if what is None:
            if key not in ("schedule", "command", "enabled"):
                new.pop(key, None)
        elif key in other:
            new[key] = other[key]
    text = STYLES[style](old) + ("\n" if newline else "")
    out = apply_changes(text, old, new)
    assert json.loads(out) == new
    assert [k for k in json.loads(out) if k in old] == [k for k in old if k in new], (
        "kept keys keep their order"
    )
    assert out.endswith("\n") == newline
    assert not validate_document(json.loads(out), stem=old["name"]).errors
    # untouched members keep their exact text
    for key in old:
        if key in new and new[key] == old[key] and style != "compact":
            member = json.dumps({key: old[key]}, indent=None, ensure_ascii=style == "ascii")[1:-1]
            if "\n" not in STYLES[style]({key: old[key]}).strip()[1:-1].strip():
                assert member in out


@settings(max_examples=100)
@given(doc=job_documents(), style=st.sampled_from(["two", "four", "tab", "ours", "ascii"]))
def test_flipping_enabled_is_a_one_line_diff(doc: dict[str, Any], style: str) -> None:
    text = STYLES[style](doc) + "\n"
    new = {**doc, "enabled": not doc["enabled"]}
    out = apply_changes(text, doc, new)
    changed = [
        line for line in difflib.unified_diff(text.splitlines(), out.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == [
        f'-{_line_of(text, "enabled")}',
        f'+{_line_of(text, "enabled").replace(json.dumps(doc["enabled"]), json.dumps(not doc["enabled"]))}',
    ]


def _line_of(text: str, key: str) -> str:
    return next(line for line in text.splitlines() if line.lstrip().startswith(f'"{key}"'))


def test_new_keys_land_next_to_their_canonical_neighbour() -> None:
    old = {"name": "a", "schedule": "@daily", "command": "x", "working_directory": "/tmp",
           "enabled": True, "env": {"LANG": "C"}}
    text = '{\n    "name": "a",\n    "schedule": "@daily",\n    "command": "x",\n' \
           '    "working_directory": "/tmp",\n    "enabled": true,\n    "env": {"LANG": "C"}\n}\n'
    new = {**old, "timezone": "Europe/Berlin", "description": "d"}
    out = apply_changes(text, old, new)
    assert out == (
        '{\n    "name": "a",\n    "schedule": "@daily",\n    "command": "x",\n'
        '    "working_directory": "/tmp",\n    "enabled": true,\n    "description": "d",\n'
        '    "timezone": "Europe/Berlin",\n    "env": {"LANG": "C"}\n}\n'
    )


def test_removing_the_first_members_keeps_the_rest_clean() -> None:
    old = {"$schema": "s", "description": "d", "name": "a", "schedule": "@daily", "command": "x",
           "working_directory": "/tmp", "enabled": True}
    text = json.dumps(old, indent=2) + "\n"
    new = {k: v for k, v in old.items() if k not in ("$schema", "description")}
    assert apply_changes(text, old, new) == json.dumps(new, indent=2) + "\n"


def test_write_atomic_leaves_no_temp_files_and_versions_are_content_hashes(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert version_of(b"two") != version_of(b"one")
    assert version_of(b"two") == version_of(target.read_bytes())


def test_read_of_a_missing_job_and_stale_version(jobs_dir: Path) -> None:
    files = JobFiles(jobs_dir)
    with pytest.raises(JobNotFoundError, match="'nope'"):
        files.read("nope")
    (jobs_dir / "a.json").write_text("{}")
    current = files.read("a")
    with pytest.raises(ConcurrentModificationError, match="'a' was changed"):
        files.check_version(current, "0" * 64)
    files.check_version(current, current.version)
    files.check_version(current, None)


def test_folder_lock_excludes_another_process(jobs_dir: Path, tmp_path: Path) -> None:
    held = tmp_path / "held"
    script = (
        "import sys, time, pathlib\n"
        "from jobfsm.config.jobfiles import JobFiles\n"
        "with JobFiles(sys.argv[1]).locked():\n"
        "    pathlib.Path(sys.argv[2]).touch()\n"
        "    time.sleep(0.5)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(jobs_dir), str(held)],
                             cwd=Path(__file__).parent.parent)
    try:
        deadline = time.monotonic() + 30
        while not held.exists():
            assert time.monotonic() < deadline, "the child never took the lock"
            time.sleep(0.01)
        start = time.monotonic()
        with JobFiles(jobs_dir).locked():
            waited = time.monotonic() - start
        assert child.wait(timeout=30) == 0
    finally:
        child.kill()
        child.wait()
    assert waited > 0.2, "the lock did not make us wait for the other process"
    assert (jobs_dir / LOCK_FILE).exists()
    assert JobFiles(jobs_dir).names() == []  # the lock file is not a job


def test_names_lists_json_files_only(jobs_dir: Path) -> None:
    for name in ("b.json", "a.json", "notes.txt", ".a.json.123.tmp"):
        (jobs_dir / name).write_text("{}")
    os.mkdir(jobs_dir / "dir.json")
    assert JobFiles(jobs_dir).names() == ["a", "b"]
