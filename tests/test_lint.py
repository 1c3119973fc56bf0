"""The linter of ``jobfsm validate`` (jobfsm/config/lint.py): DST gaps and folds, timeouts longer
than the interval, months without the listed days, crowded minutes; and how ``validate`` shows
them (text, ``--strict``, ``--format github``, ``--format json``). The date is pinned."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm import cron
from jobfsm.cli import run
from jobfsm.config import lint as lint_module
from jobfsm.config.lint import MAX_SAME_MINUTE, Rule, lint_job, lint_jobs
from jobfsm.cron import next_fire
from jobfsm.model import JobConfig
from jobfsm.problems import Severity

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GAP, FOLD = Rule.DST_GAP.value, Rule.DST_FOLD.value


def job(schedule: str, timezone: str = "UTC", name: str = "x", **fields: Any) -> JobConfig:
    doc = {"name": name, "schedule": schedule, "timezone": timezone, "command": "true",
           "working_directory": "/tmp", "enabled": True, **fields}
    return JobConfig.from_dict(doc)


def rules(config: JobConfig, now: datetime = NOW) -> set[str | None]:
    return {p.rule for p in lint_job(config, "jobs/x.json", now)}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


# -- DST -----------------------------------------------------------------------------------

DST_TABLE = [
    ("30 2 * * *", "Europe/Berlin", {GAP, FOLD}, "daily-0230-berlin-both"),
    ("30 2 * 3 *", "Europe/Berlin", {GAP}, "march-only-gap"),
    ("30 2 * 10 *", "Europe/Berlin", {FOLD}, "october-only-fold"),
    ("30 2 * * *", "America/New_York", {GAP}, "new-york-0230-gap-only"),
    ("30 1 * * *", "America/New_York", {FOLD}, "new-york-0130-fold-only"),
    ("30 2 * * *", "UTC", set(), "utc-never"),
    ("30 2 * * *", "Asia/Tokyo", set(), "zone-without-dst"),
    ("0 12 * * *", "Europe/Berlin", set(), "noon-none"),
    ("30 2 * * mon", "Europe/Berlin", set(), "mondays-miss-the-sunday-changes"),
    ("*/15 * * * *", "Europe/Berlin", set(), "every-15-minutes-keeps-its-interval"),
    ("0 * * * *", "Europe/Berlin", set(), "hourly-keeps-its-interval"),
    ("30 * * * *", "Europe/Berlin", {GAP}, "half-past-every-hour-gains-a-0300-fire"),
    ("0 */2 * * *", "Europe/Berlin", {GAP, FOLD}, "every-2-hours-fires-twice-in-the-fold"),
    ("* 2 * * *", "Europe/Berlin", {GAP, FOLD}, "every-minute-of-hour-2"),
    ("0 0 * * *", "America/Santiago", {GAP}, "midnight-gap-santiago"),
    ("15 2 * * *", "Australia/Lord_Howe", {GAP}, "half-hour-shift-lord-howe"),
]


@pytest.mark.parametrize(
    ("schedule", "timezone", "expected"), [row[:3] for row in DST_TABLE], ids=[row[3] for row in DST_TABLE]
)
def test_dst_warnings_table(schedule: str, timezone: str, expected: set[str]) -> None:
    found = lint_job(job(schedule, timezone), "jobs/x.json", NOW)
    dst = [p for p in found if p.rule in (GAP, FOLD)]
    assert {p.rule for p in dst} == expected
    for problem in dst:
        assert problem.severity is Severity.WARNING and problem.json_path == "$.schedule"
        assert timezone in problem.message and "set timezone to 'UTC'" in problem.message


def test_gap_says_when_and_where_the_fire_runs_instead() -> None:
    [gap] = [p for p in lint_job(job("30 2 * * *", "Europe/Berlin"), "jobs/nightly.json", NOW) if p.rule == GAP]
    assert str(gap) == (
        "jobs/nightly.json: $.schedule: warning: 2027-03-28 02:30 does not exist in Europe/Berlin "
        "(clocks jump from 02:00 to 03:00); the fire runs at 03:00 CEST; to avoid it, schedule "
        "it outside 02:00-03:00 local time or set timezone to 'UTC'"
    )
    # ... which is what the scheduler's cron math does on that day
    fire = next_fire("30 2 * * *", "Europe/Berlin", datetime(2027, 3, 27, 23, 0, tzinfo=UTC))
    assert fire.astimezone(UTC) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)  # 03:00 CEST


def test_fold_says_it_runs_once_or_twice() -> None:
    [once] = [p for p in lint_job(job("30 2 * * *", "Europe/Berlin"), "f", NOW) if p.rule == FOLD]
    assert once.message.startswith(
        "2027-10-31 02:30 happens twice in Europe/Berlin (clocks go back from 03:00 to 02:00); "
        "it fires once, at the first (CEST)"
    )
    [both] = [p for p in lint_job(job("0 */2 * * *", "Europe/Berlin"), "f", NOW) if p.rule == FOLD]
    assert "it fires at both (CEST and CET)" in both.message


def test_a_gap_swallowing_many_fire_times_counts_them() -> None:
    [gap] = [p for p in lint_job(job("*/10 2 * * *", "Europe/Berlin"), "f", NOW) if p.rule == GAP]
    assert gap.message.startswith("2027-03-28 02:00-02:50 (6 fire times) do not exist in Europe/Berlin")
    assert "they all run at 03:00 CEST, as one fire" in gap.message


def test_only_changes_within_the_next_year() -> None:
    # DST starts on 29 March only in some years (2026, then 2037): within a year of January 2026
    # the 29 March 02:30 fire falls into the gap; from December 2026 on, not for a decade.
    config = job("30 2 29 3 *", "Europe/Berlin")
    assert rules(config, datetime(2026, 1, 1, tzinfo=UTC)) == {GAP}
    assert rules(config, NOW) == set()


# -- timeout and overlap -------------------------------------------------------------------

TIMEOUT_TABLE = [
    ("*/5 * * * *", 600, "skip", 300, "every-5-minutes-600s"),
    ("*/5 * * * *", 300, "skip", None, "timeout-equal-to-interval"),
    ("*/5 * * * *", 600, "queue", None, "queue-runs-them-later"),
    ("*/5 * * * *", 600, "allow", None, "allow-runs-them-at-once"),
    ("0 9,17 * * *", 40_000, "skip", 28_800, "shortest-of-uneven-gaps"),
    ("0 22,2 * * *", 20_000, "skip", 14_400, "gap-across-midnight"),
    ("0 0 * * mon,tue", 100_000, "skip", 86_400, "consecutive-weekdays"),
    ("0 0 * * mon", 100_000, "skip", None, "weekly"),
    ("@daily", 86_400, "skip", None, "daily-a-day"),
]


@pytest.mark.parametrize(
    ("schedule", "timeout", "overlap", "at_most"),
    [row[:4] for row in TIMEOUT_TABLE], ids=[row[4] for row in TIMEOUT_TABLE],
)
def test_timeout_longer_than_the_interval_with_skip(
    schedule: str, timeout: int, overlap: str, at_most: int | None
) -> None:
    found = [p for p in lint_job(job(schedule, timeout_seconds=timeout, overlap=overlap), "f", NOW)
             if p.rule == Rule.TIMEOUT_SKIPS_FIRES]
    if at_most is None:
        assert found == []
        return
    [problem] = found
    assert problem.json_path == "$.timeout_seconds"
    assert f"set timeout_seconds to at most {at_most:,}, or overlap to 'queue'" in problem.message


def test_the_default_timeout_is_not_warned_about() -> None:
    # an every-5-minutes job that says nothing of its timeout (3600 s) keeps quiet: every frequent
    # job would be warned about, for a limit its author never chose
    assert rules(job("*/5 * * * *")) == set()


# -- months that lack the day --------------------------------------------------------------

MONTHS_TABLE = [
    ("0 0 31 * *", "never fires in February, April, June, September and November (no day 31 there), "
                   "so in 7 of the 12 months it lists", "day-31"),
    ("0 0 30 * *", "never fires in February (no day 30 there), so in 11 of the 12", "day-30"),
    ("0 0 30,31 1-6 *", "never fires in February (no day 30 or 31 there), so in 5 of the 6", "listed-months"),
    ("0 0 29 2 *", "fires in February only in leap years (on the 29th)", "february-29"),
    ("0 0 31 1,3 *", None, "months-that-have-it"),
    ("0 0 31 * mon", None, "weekdays-fire-every-month"),
    ("0 0 */2 * *", None, "step-over-days"),
    ("0 0 1-31 * *", None, "every-day-range"),
    ("0 0 28 2 *", None, "february-28"),
]


@pytest.mark.parametrize(
    ("schedule", "expected"), [row[:2] for row in MONTHS_TABLE], ids=[row[2] for row in MONTHS_TABLE]
)
def test_months_without_the_listed_days(schedule: str, expected: str | None) -> None:
    found = [p for p in lint_job(job(schedule), "f", NOW) if p.rule == Rule.SKIPPED_MONTHS]
    if expected is None:
        assert found == []
        return
    [problem] = found
    assert problem.json_path == "$.schedule" and expected in problem.message
    assert problem.message.endswith("use days from 1 to 28, or list only the months that have the day")


# -- crowded minutes -----------------------------------------------------------------------


def folder(*groups: tuple[int, str, str], enabled: bool = True) -> list[tuple[str, JobConfig]]:
    jobs = []
    for count, schedule, timezone in groups:
        for i in range(count):
            name = f"{schedule.replace(' ', '_').replace('*', 's').replace('/', 'e')}-{timezone.replace('/', '-').lower()}-{i}"
            jobs.append((f"jobs/{name}.json", job(schedule, timezone, name=name, enabled=enabled)))
    return jobs


def crowd(jobs: list[tuple[str, JobConfig]], **kwargs: int) -> list[Any]:
    return [p for p in lint_jobs(jobs, NOW, **kwargs) if p.rule == Rule.CROWDED_MINUTE]


def test_more_than_the_limit_in_one_minute_warns_each_of_them() -> None:
    jobs = folder((MAX_SAME_MINUTE + 1, "0 * * * *", "UTC"), (5, "7 * * * *", "UTC"))
    found = crowd(jobs)
    assert {p.path for p in found} == {path for path, c in jobs if c.schedule == "0 * * * *"}
    assert found[0].message.startswith(
        f"{MAX_SAME_MINUTE + 1} enabled jobs are due at 2026-12-03 13:00 UTC, this one among them"
    )
    assert "stagger them with a different minute, e.g. '1 * * * *'" in found[0].message
    assert crowd(folder((MAX_SAME_MINUTE, "0 * * * *", "UTC"))) == []


def test_crowds_are_counted_in_real_time_across_zones_and_schedules() -> None:
    # 12:00 UTC: Berlin's 13:00, Kolkata's 17:30, and UTC's own hourly and every-5-minutes jobs
    jobs = folder(
        (3, "0 13 * * *", "Europe/Berlin"), (3, "30 17 * * *", "Asia/Kolkata"),
        (3, "0 * * * *", "UTC"), (2, "*/5 * * * *", "UTC"),
    )
    tomorrow = "2026-12-04 12:00 UTC"
    found = crowd(jobs, max_same_minute=10)
    assert len(found) == 11 and all(f"11 enabled jobs are due at {tomorrow}" in p.message for p in found)
    [example] = {p.message.split("e.g. ")[1] for p in found if "kolkata" in p.path}
    assert example == "'31 17 * * *'"  # a free minute in the job's own zone
    assert crowd(jobs, max_same_minute=11) == []


def test_disabled_jobs_do_not_crowd() -> None:
    jobs = folder((40, "0 * * * *", "UTC"), enabled=False)
    assert crowd(jobs) == []


def test_the_limit_is_the_daemons_default_worker_count() -> None:
    from jobfsm.daemon.process import DEFAULT_MAX_WORKERS

    assert MAX_SAME_MINUTE == DEFAULT_MAX_WORKERS


# -- jobfsm validate -----------------------------------------------------------------------


@pytest.fixture
def lint_folder(write_job, jobs_dir: Path) -> Path:
    write_job("nightly", schedule="30 2 * * *", timezone="Europe/Berlin")
    write_job("often", schedule="*/5 * * * *", timeout_seconds=600)
    write_job("monthly", schedule="0 0 31 * *")
    return jobs_dir


def test_validate_shows_warnings_and_strict_fails_on_them(lint_folder: Path) -> None:
    code, out, _ = cli("validate", str(lint_folder), "--as-of", "2026-12-03T12:00")
    assert code == 0
    assert f"{lint_folder / 'often.json'}: $.timeout_seconds: warning: timeout of 600 s" in out
    assert out.endswith("3 files checked: 3 valid, 0 invalid (0 errors, 4 warnings)\n")
    code, out, _ = cli("validate", "--strict", str(lint_folder), "--as-of", "2026-12-03T12:00")
    assert code == 1 and out.endswith("(0 errors, 4 warnings) — warnings fail with --strict\n")


def test_validate_github_annotates_warnings(lint_folder: Path) -> None:
    code, out, _ = cli("validate", "--format", "github", str(lint_folder), "--as-of", "2026-12-03T12:00")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4 and all(line.startswith("::warning file=") for line in lines)
    assert lines[1] == (
        f"::warning file={lint_folder / 'nightly.json'},title=DST gap (jobfsm validate)::$.schedule: "
        "2027-03-28 02:30 does not exist in Europe/Berlin (clocks jump from 02:00 to 03:00); the fire "
        "runs at 03:00 CEST; to avoid it, schedule it outside 02:00-03:00 local time or set "
        "timezone to 'UTC'"
    )
    assert ",title=timeout longer than the interval (jobfsm validate)::$.timeout_seconds: " in lines[3]


def test_validate_json_lists_warnings_with_their_rule(lint_folder: Path) -> None:
    code, out, _ = cli("validate", "--format", "json", "--strict", str(lint_folder), "--as-of", "2026-12-03T12:00")
    assert code == 1
    doc = json.loads(out)
    by_name = {Path(f["path"]).name: f for f in doc["files"]}
    assert [w["rule"] for w in by_name["nightly.json"]["warnings"]] == [GAP, FOLD]
    assert by_name["monthly.json"]["warnings"][0]["rule"] == "skipped-months"
    assert all(f["valid"] is False and f["errors"] == [] for f in doc["files"])


def test_validate_crowded_minute_option(write_job, jobs_dir: Path) -> None:
    for i in range(4):
        write_job(f"top-{i}", schedule="0 * * * *")
    code, out, _ = cli("validate", str(jobs_dir), "--max-same-minute", "3", "--strict")
    assert code == 1 and out.count("4 enabled jobs are due at") == 4
    assert cli("validate", str(jobs_dir), "--strict")[0] == 0


def test_validate_bad_as_of_is_a_usage_error(lint_folder: Path) -> None:
    code, _, err = cli("validate", str(lint_folder), "--as-of", "yesterday")
    assert code == 2 and err.startswith("jobfsm validate: error: --as-of 'yesterday' is not an ISO 8601 time")


def test_invalid_files_are_not_linted(write_job, jobs_dir: Path) -> None:
    write_job("broken", schedule="30 2 * * *", timezone="Europe/Berlin", overlap="never")
    code, out, _ = cli("validate", str(jobs_dir), "--as-of", "2026-12-03T12:00")
    assert code == 1 and "warning" not in out.splitlines()[0] and "(1 error, 0 warnings)" in out


# -- properties: what the linter says agrees with the scheduler's cron math ------------------

DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]


@st.composite
def expressions(draw: st.DrawFn) -> str:
    """Five-field expressions firing at most a few times an hour (a week of them stays quick)."""
    minute = draw(st.one_of(
        st.integers(0, 59).map(str),
        st.lists(st.integers(0, 59), min_size=2, max_size=4, unique=True).map(lambda v: ",".join(map(str, v))),
        st.sampled_from([5, 10, 15, 20, 30]).map(lambda n: f"*/{n}"),
    ))
    hour = draw(st.one_of(
        st.just("*"), st.integers(0, 23).map(str), st.sampled_from(["*/2", "*/3", "1-3", "0,2,23", "22-2"]),
    ))
    day = draw(st.sampled_from(["*", "*", "1", "15", "28-31", "*/2", "13"]))
    month = draw(st.sampled_from(["*", "*", "3", "10", "3,4,10,11", "jan-jun"]))
    weekday = draw(st.sampled_from(["*", "*", "0", "mon-fri", "sat,sun", "5"]))
    expr = f"{minute} {hour} {day} {month} {weekday}"
    try:
        cron.validate_expression(expr)
    except cron.CronError:
        expr = f"{minute} {hour} * * *"
    return expr


@settings(max_examples=100, deadline=None)
@given(expressions(), st.sampled_from(["UTC", "Asia/Tokyo", *DST_ZONES]))
def test_crowd_counting_sees_the_fires_the_scheduler_will_fire(expr: str, tz: str) -> None:
    # a week in December: no zone drawn here changes its offset then
    start = int(NOW.timestamp()) // 60
    end = start + 7 * 1440
    counted = lint_module._fire_minutes(cron.expand(expr), ZoneInfo(tz), start, end, {})
    fired = cron.fires_between(expr, tz, NOW, NOW + timedelta(days=7))
    assert sorted(counted) == [int(f.timestamp()) // 60 for f in fired]


def _changing_days(tz: str, now: datetime) -> list[datetime]:
    """UTC midnights of the days within a year of ``now`` on which ``tz`` changes its offset."""
    zone = ZoneInfo(tz)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    for _ in range(367):
        if day.astimezone(zone).utcoffset() != (day + timedelta(days=1)).astimezone(zone).utcoffset():
            out.append(day)
        day += timedelta(days=1)
    return out


@settings(max_examples=100, deadline=None)
@given(expressions(), st.sampled_from(DST_ZONES))
def test_dst_warnings_are_the_fires_dst_changes(expr: str, tz: str) -> None:
    """Each DST warning names a fire the cron math changes, and says what it does to it; a
    change the linter keeps quiet about is one that changes nothing."""
    warned = {p.message[:10]: p for p in lint_job(job(expr, tz), "f", NOW) if p.rule in (GAP, FOLD)}
    changed: dict[str, list[cron.Fire]] = {}
    for day in _changing_days(tz, NOW):
        for fire in cron.iter_fires(expr, tz, day - timedelta(hours=14)):
            if fire.at > day + timedelta(days=1, hours=14):
                break
            if fire.note and NOW < fire.at <= NOW + lint_module.DST_HORIZON:
                changed.setdefault(fire.wall.date().isoformat(), []).append(fire)
    for date_text, problem in warned.items():
        fires = changed.get(date_text)
        assert fires, f"{problem.message} but cron changes no fire that day"
        first = fires[0]
        assert problem.message.startswith(f"{date_text} {first.wall:%H:%M}")
        if problem.rule == GAP:
            assert f"at {first.at:%H:%M} {first.at.tzname()}" in problem.message
    spec = cron.expand(expr)
    for date_text, fires in changed.items():
        if date_text in warned:
            continue
        fire = fires[0]
        gap = fire.at.replace(tzinfo=None) != fire.wall
        if gap:  # quiet only when the gap's fire is one the schedule has anyway
            after = fire.at.replace(tzinfo=None)
            assert spec.day_matches(after.date()) and after.hour in spec.hours and after.minute in spec.minutes
        else:  # quiet only for a '*' hour: it fires in both halves
            assert spec.wildcard_hour and len(spec.hours) == 24
