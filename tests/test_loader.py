"""The loader: good jobs in, every bad file reported with file, JSON path and fix; never raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.config.loader import ConfigLoader, JobsDirectoryError, validate_document
from jobfsm.config.schema import compile_check, job_schema, property_schema, quick_valid, validator
from jobfsm.model import REQUIRED_FIELDS, JobConfig
from jobfsm.problems import Severity
from tests.conftest import job_doc
from tests.strategies import job_documents, names

BROKEN = st.sampled_from(
    [
        ("{", "invalid JSON"),
        ('{"name": "x",}', "invalid JSON"),
        ("[]", "one JSON object"),
        ("null", "one JSON object"),
        ('"text"', "one JSON object"),
        ("", "invalid JSON"),
    ]
)


def _load(tmp_path: Path, files: dict[str, str]) -> tuple:
    folder = tmp_path / "jobs"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return ConfigLoader(folder).load(), folder


# Property 2: loading many job files returns exactly the valid ones and reports every invalid one
@given(
    valid=st.lists(names, unique=True, max_size=6),
    broken=st.lists(st.tuples(names, BROKEN), max_size=4),
    data=st.data(),
)
def test_loader_returns_exactly_the_valid_jobs(tmp_path_factory, valid, broken, data) -> None:
    tmp_path = tmp_path_factory.mktemp("load")
    broken = [(n, b) for n, b in broken if n not in valid]
    broken = list(dict(broken).items())
    files = {f"{n}.json": json.dumps(data.draw(job_documents(name=n))) for n in valid}
    files.update({f"{n}.json": text for n, (text, _) in broken})
    result, _folder = _load(tmp_path, files)
    assert set(result.jobs) == set(valid)
    reported = {Path(p.path).name for p in result.errors}
    assert reported == {f"{n}.json" for n, _ in broken}
    for name, (_, expected) in broken:
        messages = [p.message for p in result.errors if Path(p.path).name == f"{name}.json"]
        assert any(expected in m for m in messages), messages


# Property 3: every required field missing is rejected, naming that field
@given(document=job_documents(), missing=st.sets(st.sampled_from(REQUIRED_FIELDS), min_size=1))
def test_missing_required_fields_are_each_named(document: dict, missing: set[str]) -> None:
    for key in missing:
        document.pop(key)
    report = validate_document(document, "x.json")
    assert report.config is None
    named = {p.json_path for p in report.errors if p.message == "required field is missing"}
    assert named == {f"$.{key}" for key in missing}


# Property 4: invalid JSON is rejected without stopping the others
@given(
    garbage=st.text(max_size=30).filter(lambda s: not _is_json(s)),
    good=st.lists(names, unique=True, min_size=1, max_size=4),
)
def test_invalid_json_does_not_stop_other_files(tmp_path_factory, garbage: str, good) -> None:
    tmp_path = tmp_path_factory.mktemp("garbage")
    files = {f"{n}.json": json.dumps(job_doc(n)) for n in good if n != "zz-broken"}
    files["zz-broken.json"] = garbage
    result, _ = _load(tmp_path, files)
    assert set(result.jobs) == {n for n in good if n != "zz-broken"}
    [problem] = [p for p in result.errors if p.path.endswith("zz-broken.json")]
    assert problem.json_path == "$"
    assert problem.message.startswith(("invalid JSON", "a job file must contain", "duplicate key"))


def _is_json(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict)


def test_empty_folder_loads_nothing(jobs_dir: Path) -> None:
    result = ConfigLoader(jobs_dir).load()
    assert result.jobs == {} and result.problems == []


def test_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JobsDirectoryError, match=r"cannot read jobs folder .*nope.*No such file"):
        ConfigLoader(tmp_path / "nope").load()


def test_invalid_json_reports_line_and_column(write_job, jobs_dir: Path) -> None:
    write_job("bad", raw='{\n  "name": "bad",\n  "schedule": @daily\n}')
    [problem] = ConfigLoader(jobs_dir).load().errors
    assert (problem.line, problem.column) == (3, 15)
    assert str(problem).startswith(f"{jobs_dir / 'bad.json'}:3:15: $: invalid JSON")


@pytest.mark.parametrize(
    ("fields", "path", "fragment"),
    [
        ({"schedul": "x"}, "$.schedul", "did you mean 'schedule'"),
        ({"schedule": "0 0 31 2 *"}, "$.schedule", "never fires: February has no day 31"),
        ({"schedule": "* * * * * *"}, "$.schedule", "exactly five"),
        ({"schedule": "61 * * * *"}, "$.schedule", "minute"),
        ({"timezone": "Europe/Berlln"}, "$.timezone", "did you mean 'Europe/Berlin'"),
        ({"overlap": "never"}, "$.overlap", "'never' is not one of 'skip', 'queue', 'allow'"),
        ({"timeout_seconds": 0}, "$.timeout_seconds", "minimum"),
        ({"working_directory": "relative"}, "$.working_directory", "absolute"),
        ({"command": []}, "$.command", "non-empty"),
        ({"enabled": "yes"}, "$.enabled", "boolean"),
        ({"env": {"A": 1}}, "$.env.A", "string"),
    ],
    ids=["unknown-key", "never-fires", "six-fields", "minute-range", "zone", "enum", "minimum",
         "relative-dir", "empty-command", "type", "env-value"],
)
def test_each_problem_names_its_field(write_job, jobs_dir: Path, fields, path, fragment) -> None:
    write_job("hello", **fields)
    result = ConfigLoader(jobs_dir).load()
    assert result.jobs == {}
    assert any(p.json_path == path and fragment in p.message for p in result.errors), result.errors


def test_stem_must_equal_name(write_job, jobs_dir: Path) -> None:
    (jobs_dir / "other.json").write_text(json.dumps(job_doc("hello")))
    [problem] = ConfigLoader(jobs_dir).load().errors
    assert problem.json_path == "$.name" and "rename the file to 'hello.json'" in problem.message


def test_path_like_names_are_rejected_by_the_schema() -> None:
    for bad in ("../etc/x", "a/b", "Upper", "", "-lead"):
        report = validate_document(job_doc(bad), "x.json")
        assert report.config is None
        assert any(p.json_path == "$.name" for p in report.errors), bad


def test_duplicate_keys_are_an_error(write_job, jobs_dir: Path) -> None:
    write_job("hello", raw='{"name": "hello", "name": "other"}')
    [problem] = ConfigLoader(jobs_dir).load().errors
    assert problem.message == "duplicate key 'name'; keep only one"


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    from jobfsm.config.loader import collect, validate_file

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "hello.json").write_text(json.dumps(job_doc("hello")))
    result = collect(validate_file(tmp_path / f / "hello.json") for f in ("a", "b"))
    assert list(result.jobs) == ["hello"]
    [problem] = result.errors
    assert "duplicate job name 'hello'" in problem.message


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\xef\xbb\xbf{}", "byte order mark"),
        ("{}".encode("utf-16"), "UTF-16"),
        (b'{"name": "caf\xe9"}', "not valid UTF-8"),
    ],
    ids=["utf8-bom", "utf16", "latin1"],
)
def test_encodings_other_than_utf8_get_a_clear_message(write_job, jobs_dir, raw, fragment) -> None:
    write_job("hello", raw=raw)
    [problem] = ConfigLoader(jobs_dir).load().errors
    assert fragment in problem.message


def test_missing_working_directory_is_only_a_warning(write_job, jobs_dir: Path) -> None:
    write_job("hello", working_directory="/nonexistent/jobfsm-test")
    result = ConfigLoader(jobs_dir).load()
    assert list(result.jobs) == ["hello"]
    [problem] = result.problems
    assert problem.severity is Severity.WARNING and problem.json_path == "$.working_directory"


def test_non_json_files_are_ignored(write_job, jobs_dir: Path) -> None:
    write_job("hello")
    (jobs_dir / "README.md").write_text("# notes")
    assert list(ConfigLoader(jobs_dir).load().jobs) == ["hello"]


def test_loaded_config_carries_the_file_values(write_job, jobs_dir: Path) -> None:
    write_job("hello", command=["/bin/echo", "a b"], timezone="Europe/Berlin", retries=2)
    config = ConfigLoader(jobs_dir).load().jobs["hello"]
    assert config == JobConfig(
        name="hello", schedule="*/5 * * * *", command=("/bin/echo", "a b"),
        working_directory="/tmp", enabled=True, timezone="Europe/Berlin", retries=2,
    )


def _nested(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = [value] if levels % 2 else {"A": value}
    return value


# What the operating system refuses (NUL, lone surrogates, too long) and what only looks like
# a value of the right type (integral floats, bools, huge ints), at and around every limit.
_hostile_text = st.text(alphabet=st.sampled_from("a/_ é\x00\ud800\udc80\udfff\U0001f600"), max_size=8)
_hostile_values = st.one_of(
    _hostile_text,
    st.sampled_from([
        "x" * 131_071, "x" * 131_072, "é" * 40_000, "/" + "d" * 4094, "/" + "d" * 4095, "/" + "é" * 2100,
        "d" * 1000, "d" * 1001, "s" * 255, "s" * 256, "/tmp\x00", "UTC\ud800", "skip\x00",
        10**30, -(10**30), 60.0, 3600.0, 1e300, -0.0, float("inf"), True, False, 0, 604_801,
    ]),
    st.lists(st.one_of(_hostile_text, st.integers(0, 3), st.none()), max_size=4),
    st.lists(_hostile_text, min_size=1, max_size=3).map(lambda rest: ["/bin/x", *rest]),
    st.dictionaries(
        st.sampled_from(["A", "B_1", "_", "\ud800", "1x", "a b", "A\x00"]),
        st.one_of(_hostile_text, st.integers(0, 3), st.sampled_from(["x" * 131_072])), max_size=3,
    ),
    st.integers(1, 40).map(_nested),
)
_odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 100_000), st.floats(allow_nan=False),
    st.text(max_size=12), st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=2),
    _hostile_values,
)


# The fast path of validation (per-value cache) must never accept what the schema rejects.
@settings(max_examples=100)
@given(document=job_documents(), key=st.sampled_from(sorted(job_schema()["properties"])), value=_odd_values)
def test_quick_validation_agrees_with_the_schema(document: dict, key: str, value: object) -> None:
    mutated = {**document, key: value}
    if quick_valid(mutated):
        assert validator().is_valid(mutated), f"the fast path accepted what the schema rejects: {mutated!r}"
    assert quick_valid(document) and validator().is_valid(document)


# The compiled checks behind the fast path: never True where jsonschema says no.
@given(key=st.sampled_from(sorted(job_schema()["properties"])), value=_odd_values)
def test_compiled_checks_never_accept_what_the_schema_rejects(key: str, value: object) -> None:
    from jsonschema import Draft202012Validator

    check = compile_check(property_schema(key))
    assert check is not None, f"{key}: the schema grew a keyword the fast path does not compile"
    if check(value):
        assert Draft202012Validator(property_schema(key)).is_valid(value), (key, value)


def test_compiled_checks_accept_the_example_jobs() -> None:
    for path in sorted((Path(__file__).resolve().parent.parent / "jobs").glob("*.json")):
        for key, value in json.loads(path.read_text()).items():
            check = compile_check(property_schema(key))
            assert check is not None and check(value), (path.name, key, value)
