"""The wheel works: ``python -m build`` makes one from a copy of this tree, it installs in a clean
virtual environment (its dependencies from the package index, as a user's would), and the
installed ``jobfsm`` validates, prints its schema and starts from what the wheel ships, run from
a folder far from this repository. Slow: a build and an install."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jobfsm import __version__
from jobfsm.config.schema import schema_text
from tests.conftest import job_doc, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "logs", "__pycache__", ".*cache", ".hypothesis",
)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("JOBFSM_", "PYTHON", "VIRTUAL_ENV"))}


def test_the_wheel_installs_and_runs_from_what_it_ships(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
                           capture_output=True, text=True, timeout=900, env=clean_env())
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = dist.glob("*.whl")
    assert wheel.name == f"jobfsm-{__version__}-py3-none-any.whl"  # the version's one place
    names = zipfile.ZipFile(wheel).namelist()
    assert "jobfsm/config/job.schema.json" in names and "jobfsm/py.typed" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=900, env=clean_env())
    assert installed.returncode == 0, installed.stderr[-3000:]

    home = tmp_path / "elsewhere"
    (home / "jobs").mkdir(parents=True)
    jobfsm = str(venv / "bin" / "jobfsm")

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([jobfsm, *argv], cwd=home, capture_output=True, text=True, timeout=120,
                              env=clean_env())

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import jobfsm; print(jobfsm.__file__)"],
                           cwd=home, capture_output=True, text=True, env=clean_env(), check=True).stdout
    assert where.startswith(str(venv)), where
    assert run("--version").stdout == f"jobfsm {__version__}\n"
    schema = run("schema")
    assert schema.returncode == 0 and json.loads(schema.stdout) == json.loads(schema_text())

    (home / "jobs" / "tick.json").write_text(json.dumps(job_doc("tick", schedule="0 0 1 1 *")))
    ok = run("validate", "jobs")
    assert ok.returncode == 0 and "1 file checked: 1 valid, 0 invalid" in ok.stdout, ok.stdout + ok.stderr
    (home / "jobs" / "bad.json").write_text(json.dumps(job_doc("bad", overlap="sometimes")))
    bad = run("validate", "jobs")
    assert bad.returncode == 1 and "jobs/bad.json: $.overlap: 'sometimes' is not one of" in bad.stdout
    (home / "jobs" / "bad.json").unlink()

    stderr = home / "start.err"
    with open(stderr, "w") as sink:
        daemon = subprocess.Popen([jobfsm, "start"], cwd=home, stdout=subprocess.DEVNULL, stderr=sink,
                                  env=clean_env())
    try:
        wait_for(lambda: "next fire:" in stderr.read_text(), 60, "the installed daemon to start",
                 lambda: stderr.read_text())
        assert "jobfsm start: loaded 1 job(s) from 'jobs': 1 enabled, 0 disabled, 0 invalid" in stderr.read_text()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
    assert (home / "logs" / "scheduler_main.log").exists()
