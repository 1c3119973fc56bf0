"""``jobfsm import crontab``: a table of crontab lines and the job files they become, cron's
fire times kept (checked against cronsim, an independent implementation of Debian cron's
rules), the ``%`` rule run for real, and the command's files, messages and exit codes."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobfsm.adopt.crontab import parse_crontab
from jobfsm.adopt.names import name_for
from jobfsm.cli import run
from jobfsm.config.loader import validate_file
from jobfsm.cron import iter_fires

ROOT = Path(__file__).resolve().parent.parent
WRAP = "printf '%s' \"$1\" | \"$0\" -c \"$2\""


def home_of(user: str | None) -> str:
    return f"/home/{user or 'me'}"


def convert(text: str, *, user_column: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    result = parse_crontab(text, source="crontab", user_column=user_column, home_of=home_of)
    return [job.document for job in result.jobs], [str(p) for p in result.problems]


def job(line: int, text: str, **fields: Any) -> dict[str, Any]:
    """The document a line becomes: what the table states, plus what every import writes."""
    doc: dict[str, Any] = {
        "name": fields.pop("name"),
        "description": f"Imported from crontab line {line}: `{text}`" + fields.pop("described", ""),
        "schedule": fields.pop("schedule"),
    }
    if "timezone" in fields:
        doc["timezone"] = fields.pop("timezone")
    doc["command"] = fields.pop("command")
    doc["working_directory"] = fields.pop("working_directory", "/home/me")
    doc["enabled"] = False
    doc.update(fields)
    return doc


TABLE: list[tuple[str, str, bool, list[dict[str, Any]], list[str]]] = [
    ("five fields", "30 2 * * * /usr/local/bin/backup.sh --full", False,
     [job(1, "30 2 * * * /usr/local/bin/backup.sh --full", name="backup", schedule="30 2 * * *",
          command="/usr/local/bin/backup.sh --full")], []),
    ("tabs and ranges, lists, steps, names", "*/15\t9-17 1,15 jan-jun mon-fri  php /srv/app/artisan run", False,
     [job(1, "*/15\t9-17 1,15 jan-jun mon-fri  php /srv/app/artisan run", name="artisan",
          schedule="*/15 9-17 1,15 jan-jun mon-fri", command="php /srv/app/artisan run")], []),
    ("macros map to jobfsm's", "@daily cd /srv && ./report.py\n@HOURLY curl -fsS https://x.example/ping\n"
     "@annually /usr/bin/yearly-cleanup\n@midnight /bin/sync", False,
     [job(1, "@daily cd /srv && ./report.py", name="report", schedule="@daily", command="cd /srv && ./report.py"),
      job(2, "@HOURLY curl -fsS https://x.example/ping", name="curl", schedule="@hourly",
          command="curl -fsS https://x.example/ping"),
      job(3, "@annually /usr/bin/yearly-cleanup", name="yearly-cleanup", schedule="@annually",
          command="/usr/bin/yearly-cleanup"),
      job(4, "@midnight /bin/sync", name="sync", schedule="@midnight", command="/bin/sync")], []),
    ("names unique and valid", "0 * * * * nice -n 10 /opt/Bin/Sync_DB.sh\n5 * * * * /opt/bin/sync_db.sh\n"
     "10 * * * * >/dev/null 2>&1 ++\n15 * * * * VAR=1 timeout 30s python3 -u /x/Big.Report.PY", False,
     [job(1, "0 * * * * nice -n 10 /opt/Bin/Sync_DB.sh", name="sync_db", schedule="0 * * * *",
          command="nice -n 10 /opt/Bin/Sync_DB.sh"),
      job(2, "5 * * * * /opt/bin/sync_db.sh", name="sync_db-2", schedule="5 * * * *", command="/opt/bin/sync_db.sh"),
      job(3, "10 * * * * >/dev/null 2>&1 ++", name="job", schedule="10 * * * *", command=">/dev/null 2>&1 ++"),
      job(4, "15 * * * * VAR=1 timeout 30s python3 -u /x/Big.Report.PY", name="big.report", schedule="15 * * * *",
          command="VAR=1 timeout 30s python3 -u /x/Big.Report.PY")], []),
    ("% starts stdin, later % are newlines", "0 8 * * * mail -s Hi ops%line one%line two", False,
     [job(1, "0 8 * * * mail -s Hi ops%line one%line two", name="mail", schedule="0 8 * * *",
          command=["/bin/sh", "-c", WRAP, "/bin/sh", "line one\nline two", "mail -s Hi ops"])], []),
    (r"\% is a literal, in the command and in stdin", r"0 0 * * * date +\%Y-\%m-\%d > /tmp/d%50\% done\\x", False,
     [job(1, r"0 0 * * * date +\%Y-\%m-\%d > /tmp/d%50\% done\\x", name="date", schedule="0 0 * * *",
          command=["/bin/sh", "-c", WRAP, "/bin/sh", "50% done\\\\x", "date +%Y-%m-%d > /tmp/d"])], []),
    ("escaped % only: a plain command", r"0 0 * * * date +\%s", False,
     [job(1, r"0 0 * * * date +\%s", name="date", schedule="0 0 * * *", command="date +%s")], []),
    ("env lines scope the jobs after them", "A=1\n0 1 * * * one\nB = 'two words'\nA=3\n0 2 * * * two", False,
     [job(2, "0 1 * * * one", name="one", schedule="0 1 * * *", command="one", env={"A": "1"}),
      job(5, "0 2 * * * two", name="two", schedule="0 2 * * *", command="two",
          env={"A": "3", "B": "two words"})], []),
    ("CRON_TZ scopes the schedule's zone; TZ also stays in env",
     "0 6 * * * utc\nCRON_TZ=Europe/Berlin\n0 6 * * * berlin\nTZ=:America/New_York\n0 6 * * * still-berlin\n"
     "CRON_TZ=\n0 6 * * * new-york", False,
     [job(1, "0 6 * * * utc", name="utc", schedule="0 6 * * *", command="utc"),
      job(3, "0 6 * * * berlin", name="berlin", schedule="0 6 * * *", timezone="Europe/Berlin", command="berlin"),
      job(5, "0 6 * * * still-berlin", name="still-berlin", schedule="0 6 * * *", timezone="Europe/Berlin",
          command="still-berlin", env={"TZ": ":America/New_York"}),
      job(7, "0 6 * * * new-york", name="new-york", schedule="0 6 * * *", timezone="America/New_York",
          command="new-york", env={"TZ": ":America/New_York"})], []),
    ("TZ on its own, with no CRON_TZ ever set, is the schedule's zone and stays in env",
     "0 6 * * * utc\nTZ=:Asia/Kolkata\n0 6 * * * kolkata\nTZ=Europe/Lisbon\n0 6 * * * lisbon", False,
     [job(1, "0 6 * * * utc", name="utc", schedule="0 6 * * *", command="utc"),
      job(3, "0 6 * * * kolkata", name="kolkata", schedule="0 6 * * *", timezone="Asia/Kolkata",
          command="kolkata", env={"TZ": ":Asia/Kolkata"}),
      job(5, "0 6 * * * lisbon", name="lisbon", schedule="0 6 * * *", timezone="Europe/Lisbon",
          command="lisbon", env={"TZ": "Europe/Lisbon"})], []),
    ("SHELL: a list command through it; HOME: env and working directory; MAILTO: notify",
     'SHELL=/bin/bash\nHOME=/srv/app\nMAILTO="ops@example.com,dev@example.com"\n0 3 * * * ./nightly.sh %x',
     False,
     [job(4, "0 3 * * * ./nightly.sh %x", name="nightly", schedule="0 3 * * *",
          command=["/bin/sh", "-c", WRAP, "/bin/bash", "x", "./nightly.sh "], working_directory="/srv/app",
          env={"HOME": "/srv/app"}, notify={"email": ["ops@example.com", "dev@example.com"]})], []),
    ("SHELL without stdin", "SHELL=/bin/bash\n0 3 * * * echo {a,b}", False,
     [job(2, "0 3 * * * echo {a,b}", name="echo", schedule="0 3 * * *", command=["/bin/bash", "-c", "echo {a,b}"])],
     []),
    ("the user column: kept in the description, home of that user",
     "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n@weekly  www-data /usr/bin/php /srv/cron.php",
     True,
     [job(1, "17 * * * * root cd / && run-parts --report /etc/cron.hourly", name="cron.hourly",
          schedule="17 * * * *", command="cd / && run-parts --report /etc/cron.hourly",
          working_directory="/home/root", described=" (cron ran it as user 'root')"),
      job(2, "@weekly  www-data /usr/bin/php /srv/cron.php", name="cron", schedule="@weekly",
          command="/usr/bin/php /srv/cron.php", working_directory="/home/www-data",
          described=" (cron ran it as user 'www-data')")], []),
    ("what cannot be converted is named by its line",
     "# header\n@reboot /usr/bin/start-thing\n*/10 * * * * * /bin/six\n0 0 * * *\nBAD-NAME=1\n61 * * * * x\n"
     "0 0 31 2 * never\n@fortnightly x\n0 0 * * * %only-input\nCRON_TZ=Mars/Base\n0 0 * * * late\nhello world",
     False,
     [],
     ["line 2: @reboot runs once at boot; jobfsm fires on a clock, so this line is not converted "
      "(start it from a systemd unit instead)",
      "line 3: a sixth time field '*' (seconds or years are another cron's dialect: jobfsm has five "
      "fields); not converted",
      "line 4: no command after the schedule; not converted",
      "line 5: environment variable 'BAD-NAME' cannot be a job's env name (letters, digits and '_', "
      "not starting with a digit); not applied to the jobs after it",
      "line 6: $.schedule: minute field '61' is out of range (0-59); not converted",
      "line 7: $.schedule: ",
      "line 8: $.schedule: unknown macro '@fortnightly'",
      "line 9: the command is empty before its first '%' (standard input); not converted",
      "line 11: $.timezone: ",
      "line 12: not an environment setting nor a job line (five time fields, a command); not converted"]),
    ("system crontab: a sixth field and a missing user", "0 0 * * * * root x\n0 0 * * * /bin/x", True, [],
     ["line 1: a sixth time field '*'", "line 2: '/bin/x' is not a user name"]),
]


@pytest.mark.parametrize(("text", "user_column", "documents", "problems"),
                         [case[1:] for case in TABLE], ids=[case[0] for case in TABLE])
def test_crontab_lines_become_job_files(
    text: str, user_column: bool, documents: list[dict[str, Any]], problems: list[str]
) -> None:
    got, got_problems = convert(text, user_column=user_column)
    assert got == documents
    assert len(got_problems) == len(problems), got_problems
    for seen, expected in zip(got_problems, problems, strict=True):
        assert seen.startswith(expected), seen


def test_the_user_column_warns_that_jobfsm_runs_as_the_daemons_user() -> None:
    result = parse_crontab("MAILTO=root,ops@example.com\n0 0 * * * backup /x", user_column=True, home_of=home_of)
    [imported] = result.jobs
    assert imported.warnings == ("cron ran this as user 'backup'; jobfsm runs every job as the daemon's user",)
    assert imported.document["notify"] == {"email": ["ops@example.com"]}
    assert [str(w) for w in result.warnings] == [
        "line 1: warning: MAILTO root: a local user, not an e-mail address; left out of the 1 job(s) it "
        "applies to (add an address to their notify.email)",
    ]


def test_a_local_mailto_user_is_warned_about_once_per_mailto_line() -> None:
    text = ("MAILTO=root\n" + "".join(f"{i} * * * * /bin/job{i}\n" for i in range(6))
            + "61 * * * * /bin/refused\nMAILTO=ops@example.com\n0 1 * * * /bin/mailed\nMAILTO=admin\n")
    result = parse_crontab(text, home_of=home_of)
    assert [str(w) for w in result.warnings] == [
        "line 1: warning: MAILTO root: a local user, not an e-mail address; left out of the 6 job(s) it "
        "applies to (add an address to their notify.email)",
        "line 11: warning: MAILTO admin: a local user, not an e-mail address; not carried over (no job "
        "after it was converted)",
    ]
    assert all(job.warnings == () and "notify" not in job.document for job in result.jobs[:6])
    assert result.jobs[6].document["notify"] == {"email": ["ops@example.com"]}


def test_a_long_line_is_quoted_shortened_within_the_description_limit() -> None:
    command = "echo " + "x" * 2000
    [doc], _ = convert(f"0 0 * * * {command}")
    assert len(doc["description"]) <= 1000 and doc["description"].endswith("…`")
    assert doc["command"] == command


@pytest.mark.parametrize(("command", "name"), [
    ("test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )", "cron.daily"),
    ("/usr/bin/flock -n /tmp/x.lock /usr/local/bin/sync.sh", "sync"),
    ("sudo -u app bash -c 'echo hi'", "echo"),
    ("[ -f /etc/x ] && /usr/bin/do-it", "do-it"),
    ("'unbalanced", "unbalanced"),
    ("ÄÖÜ", "job"),
], ids=["anacron", "flock", "sudo-bash", "test-bracket", "unbalanced-quote", "no-ascii"])
def test_names_come_from_the_program_run(command: str, name: str) -> None:
    assert name_for(command) == name


# -- fire times -----------------------------------------------------------------------------

MACRO_MEANING = {  # crontab(5), written out here: not jobfsm's own table
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@st.composite
def cron_field(draw: st.DrawFn, low: int, high: int, names: list[str] | None = None, size: int | None = None) -> str:
    """One field; steps from 1 to the size of the field's cycle (what Vixie cron takes)."""
    size = size or high - low + 1
    def value(n: int) -> str:
        if names and draw(st.booleans()):
            return names[(n - low) % len(names)] if n <= low + len(names) - 1 else str(n)
        return str(n)

    items = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["star", "step", "number", "range", "range-step"]))
        if kind == "star":
            items.append("*")
        elif kind == "step":
            items.append(f"*/{draw(st.integers(1, size))}")
        elif kind == "number":
            items.append(value(draw(st.integers(low, high))))
        else:
            # a < b when stepped: cronsim reads 'a-a/n' as 'a/n' (a to the top), cron as just a
            a = draw(st.integers(low, high - 1 if kind == "range-step" else high))
            b = draw(st.integers(a + 1 if kind == "range-step" else a, high))
            step = f"/{draw(st.integers(1, size))}" if kind == "range-step" else ""
            items.append(f"{value(a)}-{value(b)}{step}")
    return ",".join(items)


@st.composite
def crontab_lines(draw: st.DrawFn) -> tuple[str, str]:
    """(a crontab line, its schedule in five fields), Vixie cron's syntax."""
    if draw(st.integers(0, 9)) == 0:
        macro = draw(st.sampled_from(sorted(MACRO_MEANING)))
        return f"{macro.upper() if draw(st.booleans()) else macro} /usr/bin/job", MACRO_MEANING[macro]
    fields = [
        draw(cron_field(0, 59)), draw(cron_field(0, 23)), draw(cron_field(1, 31)),
        draw(cron_field(1, 12, MONTHS)), draw(cron_field(0, 7, DAYS, size=7)),
    ]
    separators = [draw(st.sampled_from([" ", "\t", "  "])) for _ in fields]
    line = "".join(f + s for f, s in zip(fields, separators, strict=True)) + "/usr/bin/job --flag"
    numeric = [cron_numeric(f, names) for f, names in zip(fields, [None, None, None, MONTHS, DAYS], strict=True)]
    return line, " ".join(numeric)


def cron_numeric(field: str, names: list[str] | None) -> str:
    """cronsim reads names too, but only as whole items: give it numbers."""
    if not names:
        return field
    first = 1 if names is MONTHS else 0
    for i, name in enumerate(names):
        field = field.replace(name, str(i + first))
    return field


def near_dst(instant: datetime, tz: ZoneInfo) -> bool:
    """Whether a change of UTC offset lies within a day and a bit of ``instant``."""
    utc = instant.astimezone(UTC)
    span = timedelta(hours=26)
    return (utc - span).astimezone(tz).utcoffset() != (utc + span).astimezone(tz).utcoffset()


def away_from_dst(fires: Any, tz: ZoneInfo, count: int) -> list[float]:
    out: list[float] = []
    for _, fire in zip(range(count * 50), fires, strict=False):
        if not near_dst(fire, tz):
            out.append(fire.timestamp())
            if len(out) == count:
                break
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    line=crontab_lines(),
    zone=st.sampled_from(ZONES),
    after=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31)),
)
def test_import_keeps_the_fire_times(line: tuple[str, str], zone: str, after: datetime) -> None:
    # Property: crontab import preserves fire times
    text, cron_expr = line
    result = parse_crontab(f"CRON_TZ={zone}\n{text}\n", home_of=home_of)
    tz = ZoneInfo(zone)
    start = after.replace(tzinfo=tz, second=0, microsecond=0)
    try:
        reference = CronSim(cron_expr, start)
        first: datetime | None = next(reference)
    except CronSimError:  # no month has the day (cronsim's own check)
        first = None
    except StopIteration:  # no fire within cronsim's horizon (it searches 50 years)
        first = None
    if first is None:  # a schedule that never fires: jobfsm refuses it, and says so
        assert not result.jobs, (text, cron_expr)
        [problem] = result.problems
        assert "never fires" in problem.reason, problem
        return
    # cronsim fires it, so jobfsm must convert it: a refusal fails whatever it says
    assert result.jobs, (text, cron_expr, first, [str(p) for p in result.problems])
    [imported] = result.jobs
    doc = imported.document
    assert doc["timezone"] == zone
    ours = away_from_dst((f.at for f in iter_fires(doc["schedule"], doc["timezone"], start)), tz, 20)
    theirs = away_from_dst(_chain(first, reference), tz, 20)
    assert ours == theirs, (text, cron_expr, zone, start)


def _chain(first: datetime, rest: Any) -> Any:
    yield first
    yield from rest


# -- the % rule, run for real -----------------------------------------------------------------


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_percent_input_reaches_the_command_as_cron_gives_it(tmp_path: Path) -> None:
    """The converted command, run by jobfsm itself (``jobfsm run``, a real process), reads the
    bytes cron would give it on stdin: later % as newlines, \\% as %, no newline added."""
    crontab = tmp_path / "crontab"
    crontab.write_text("SHELL=/bin/bash\n0 0 * * * cat > \"$OUT\"; echo \"ran \\%s\"%a%b\\%c%\n")
    jobs = tmp_path / "jobs"
    env = {**os.environ, "OUT": str(tmp_path / "stdin.bin")}
    subprocess.run([sys.executable, "-m", "jobfsm", "import", "crontab", str(crontab), "--out", str(jobs),
                    "--enabled"], check=True, capture_output=True, env=env, timeout=60)
    ran = subprocess.run([sys.executable, "-m", "jobfsm", "--jobs", str(jobs), "--logs", str(tmp_path / "logs"),
                          "run", "cat"], capture_output=True, text=True, env=env, timeout=60)
    assert ran.returncode == 0, ran.stderr + ran.stdout
    assert (tmp_path / "stdin.bin").read_bytes() == b"a\nb%c\n"
    assert "ran %s" in ran.stdout


# -- the command ---------------------------------------------------------------------------

SYSTEM_CRONTAB = """\
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
MAILTO=ops@example.com

17 *    * * *   root    cd / && run-parts --report /etc/cron.hourly
25 6    * * *   root    test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )
@reboot         root    /usr/local/bin/warm-cache
"""


def test_import_writes_valid_disabled_files_and_names_what_it_could_not(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text(SYSTEM_CRONTAB)
    jobs = tmp_path / "jobs"
    code, out, err = cli("import", "crontab", str(crontab), "--out", str(jobs), "--user-column")
    assert code == 1  # the @reboot line
    assert sorted(p.name for p in jobs.glob("*.json")) == ["cron.daily.json", "cron.hourly.json"]
    for path in jobs.glob("*.json"):
        report = validate_file(path)
        assert report.valid and report.config is not None and report.config.enabled is False
    hourly = json.loads((jobs / "cron.hourly.json").read_text())
    assert hourly["env"] == {"PATH": "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"}
    assert hourly["notify"] == {"email": ["ops@example.com"]}
    assert "(cron ran it as user 'root')" in hourly["description"]
    assert "warning: cron ran this as user 'root'; jobfsm runs every job as the daemon's user" in out
    assert err.splitlines() == [
        "line 7: @reboot runs once at boot; jobfsm fires on a clock, so this line is not converted "
        "(start it from a systemd unit instead): '@reboot         root    /usr/local/bin/warm-cache'"
    ]
    assert f"2 of 3 crontab job line(s) written to '{jobs}'; 1 not converted (named above)" in out
    assert "1. jobfsm enable NAME" in out and "2. remove its line from the crontab" in out
    assert f"jobfsm --jobs {jobs} enable cron.hourly" in out


def test_the_summary_counts_job_lines_and_environment_lines_apart(tmp_path: Path) -> None:
    """Every line is counted once: a job line written or not converted, an environment line not
    applied (a bad environment line is no job line, so it cannot be one 'not converted')."""
    crontab = tmp_path / "crontab"
    crontab.write_text("BAD-NAME=1\n0 0 * * * /bin/one\n")
    code, out, err = cli("import", "crontab", str(crontab), "--out", str(tmp_path / "a"))
    assert code == 1 and err.startswith("line 1: environment variable 'BAD-NAME'")
    assert f"1 of 1 crontab job line(s) written to '{tmp_path / 'a'}'; 1 environment line(s) not applied " \
           "(named above)\n" in out
    crontab.write_bytes(b"BAD-NAME=1\n0 0 * * * /bin/one\nFOO=caf\xe9\n@reboot /bin/x\n0 1 * * * /bin/two\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.json").write_text("mine\n")
    code, out, err = cli("import", "crontab", str(crontab), "--out", str(tmp_path / "b"))
    assert code == 1
    assert f"1 of 3 crontab job line(s) written to '{tmp_path / 'b'}'; 2 not converted, 2 environment line(s) " \
           "not applied (named above)\n" in out
    assert "line 3: not UTF-8 text; not applied to the jobs after it" in err
    result = parse_crontab("BAD-NAME=1\nA=caf\udce9\n0 0 * * * /bin/one\n61 * * * * x\n", home_of=home_of)
    assert (result.lines, len(result.jobs), [p.environment for p in result.problems]) == (2, 1, [True, True, False])


def test_each_line_is_reported_in_crontab_order_and_a_local_mailto_once(tmp_path: Path) -> None:
    """stdout (written, warnings) and stderr (not converted) read as one stream, as in a terminal."""
    crontab = tmp_path / "crontab"
    crontab.write_text("@reboot /bin/boot\n0 0 * * * /bin/first\nMAILTO=root\n61 * * * * /bin/bad\n"
                       "0 1 * * * /bin/second\n0 2 * * * /bin/taken\n0 3 * * * /bin/third\n")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "taken.json").write_text("mine\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBFSM_")}
    done = subprocess.run([sys.executable, "-m", "jobfsm", "import", "crontab", "crontab"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert done.returncode == 1, done.stdout
    numbered = [line.split(":")[0] for line in done.stdout.splitlines() if line.startswith("line ")]
    assert numbered == [f"line {n}" for n in range(1, 8)], done.stdout
    assert done.stdout.count("MAILTO root") == 1
    assert ("line 3: warning: MAILTO root: a local user, not an e-mail address; left out of the 3 job(s) it "
            "applies to (add an address to their notify.email)\n") in done.stdout
    assert "\nFor example: jobfsm enable first\n" in done.stdout  # ./jobs is where jobfsm looks anyway


def test_the_enable_example_names_the_folder_only_when_jobfsm_would_not_look_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOBFSM_JOBS", raising=False)
    (tmp_path / "crontab").write_text("0 1 * * * /bin/backup\n")
    examples = {}
    for out_dir in ("jobs", "./jobs2", str(tmp_path / "jobs3")):
        if out_dir == "./jobs2":
            monkeypatch.setenv("JOBFSM_JOBS", str(tmp_path / "jobs2"))
        code, out, _ = cli("import", "crontab", "crontab", "--out", out_dir)
        assert code == 0, out
        examples[out_dir] = out.splitlines()[-1]
    assert examples == {
        "jobs": "For example: jobfsm enable backup",
        "./jobs2": "For example: jobfsm enable backup",  # JOBFSM_JOBS says it
        str(tmp_path / "jobs3"): f"For example: jobfsm --jobs {tmp_path / 'jobs3'} enable backup",
    }


def test_nothing_is_written_over_an_existing_file(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("0 1 * * * /bin/backup\n0 2 * * * /bin/report\n")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "backup.json").write_text("mine\n")
    code, out, err = cli("import", "crontab", str(crontab), "--out", str(jobs))
    assert code == 1
    assert (jobs / "backup.json").read_text() == "mine\n"
    assert (jobs / "report.json").exists()
    assert f"line 1: '{jobs / 'backup.json'}' exists; not written over" in err
    assert "1 of 2 crontab job line(s) written" in out


def test_all_converted_exit_0_and_enabled_says_to_remove_the_lines(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("*/5 * * * * /bin/ping-it\n")
    code, out, err = cli("import", "crontab", str(crontab), "--jobs", str(tmp_path / "jobs"), "--enabled")
    assert (code, err) == (0, "")
    assert json.loads((tmp_path / "jobs" / "ping-it.json").read_text())["enabled"] is True
    assert "remove their lines from the crontab now" in out


def test_system_crontab_found_by_its_users(tmp_path: Path) -> None:
    crontab = tmp_path / "cron.d-like"
    crontab.write_text("0 1 * * * root /bin/backup\n@daily root /bin/x\n")
    code, out, _ = cli("import", "crontab", str(crontab), "--out", str(tmp_path / "jobs"))
    assert code == 0
    assert "as a system crontab, with a user column (every line names a user of this host" in out
    assert json.loads((tmp_path / "jobs" / "backup.json").read_text())["command"] == "/bin/backup"


def test_stdin_and_bad_paths(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    done = subprocess.run([sys.executable, "-m", "jobfsm", "import", "crontab", "-", "--out", str(jobs)],
                          input="0 0 * * * /bin/from-stdin\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "read stdin as a user crontab" in done.stdout
    assert (jobs / "from-stdin.json").exists()
    code, _, err = cli("import", "crontab", str(tmp_path / "missing"))
    assert code == 2
    assert err == f"jobfsm import crontab: error: cannot read '{tmp_path / 'missing'}': No such file or directory\n"
    code, _, err = cli("import", "crontab")
    assert code == 2 and "FILE|-" in err and "Traceback" not in err


def test_a_user_that_is_also_a_program_is_no_evidence_of_a_user_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [u.pw_name for u in pwd.getpwall() if u.pw_name != "root" and re.fullmatch(r"[a-z_][a-z0-9_-]*", u.pw_name)]
    if not users:
        pytest.skip("this host has no user besides root")
    user = users[0]
    crontab = tmp_path / "crontab"
    crontab.write_text(f"0 7 * * 1 {user} --flag\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    code, out, _ = cli("import", "crontab", str(crontab), "--out", str(tmp_path / "a"))
    assert "as a system crontab" in out  # a user of this host, and no such program
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / user).write_text("#!/bin/sh\n")
    (tmp_path / "bin" / user).chmod(0o755)
    code, out, _ = cli("import", "crontab", str(crontab), "--out", str(tmp_path / "b"))
    assert (code, "as a user crontab" in out) == (0, True), out
    assert json.loads((tmp_path / "b" / f"{user}.json").read_text())["command"] == f"{user} --flag"


def test_hostile_lines_are_named_not_tracebacks(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_bytes(b"0 0 * * * echo " + b"x" * 200_000 + b"\n0 0 * * * a\x00b\n0 0 * * * caf\xe9\n"
                        b"\x00\x01 junk\n0 0 * * * one\xe2\x80\xa8two\n")
    code, out, err = cli("import", "crontab", str(crontab), "--out", str(tmp_path / "jobs"))
    assert code == 1
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["line 1", "line 2", "line 3", "line 4"]
    assert "$.command: is 200,005 characters long" in lines[0] and len(lines[0]) < 400
    assert "NUL" in lines[1] and "not UTF-8" in lines[2] and "Traceback" not in err
    # U+2028 ends no line for cron: the command keeps it
    assert json.loads((tmp_path / "jobs" / "one-two.json").read_text())["command"] == "one\u2028two"
    assert "1 of 5 crontab job line(s) written" in out


GARBAGE = [["a" * 100_000], ["a/" * 3000], ["crontab", "--out", "b" * 300], ["--enabled=3"], ["nothing"],
           ["\u202e\ufeff"], ["--user-column", "--no-such"]]


@pytest.mark.parametrize("garbage", GARBAGE, ids=[str(i) for i in range(len(GARBAGE))])
@pytest.mark.parametrize("command", [["import", "crontab"], ["import"], ["init"]])
def test_garbage_arguments_are_one_line(tmp_path: Path, command: list[str], garbage: list[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crontab").write_text("0 0 * * * /bin/x\n")
    code, _, err = cli(*command, *garbage)
    if code == 0:  # a folder name init takes as given
        assert command == ["init"] and (tmp_path / garbage[0] / "jobs" / "example.json").exists()
        return
    assert code in (1, 2), (command, garbage, code)
    assert len(err.splitlines()) == 1 and err.startswith("jobfsm") and "Traceback" not in err, err[:500]
