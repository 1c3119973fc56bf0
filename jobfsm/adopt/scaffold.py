"""What ``jobfsm init`` writes: a jobs repository that works from its first commit.

- ``jobs/example.json``: one disabled job whose ``description`` explains it (JSON has no
  comments, and the schema allows no unknown key, so the description is where the comment goes);
- ``schemas/job.schema.json``: the schema this jobfsm ships, which the example's ``$schema``
  points at, so editors check the files as they are typed;
- ``deploy/jobfsm.service``: a systemd unit running ``jobfsm start`` in this folder with the
  ``jobfsm`` that wrote it (adjust the paths and the user where the repository is deployed);
- ``.github/workflows/jobfsm.yml``: CI that runs ``jobfsm validate --format github jobs/`` on
  every push and pull request (each problem an annotation on its line).
"""

from __future__ import annotations

from pathlib import Path

from jobfsm import __version__
from jobfsm.config.jobfiles import render_document
from jobfsm.config.schema import schema_text

EXAMPLE_NAME = "example"

EXAMPLE = {
    "$schema": "../schemas/job.schema.json",
    "name": EXAMPLE_NAME,
    "description": (
        "An example to copy: says hello at 06:00 Berlin time on weekdays. Disabled: "
        "'jobfsm enable example' switches it on, 'jobfsm run example' runs it now. The file name "
        "must equal name; 'jobfsm validate jobs/' checks every file; 'jobfsm next \"0 6 * * "
        "mon-fri\"' shows when a schedule fires. Delete this file once you have your own jobs."
    ),
    "schedule": "0 6 * * mon-fri",
    "timezone": "Europe/Berlin",
    "command": "echo \"hello from $JOBFSM_JOB, run $JOBFSM_RUN_ID\"",
    "working_directory": "/tmp",
    "enabled": False,
    "timeout_seconds": 300,
    "env": {"LANG": "C.UTF-8"},
    "overlap": "skip",
    "catch_up": "none",
    "retries": 0,
    "retry_delay_seconds": 60,
}

WORKFLOW = """\
# Checks every job file on each push and pull request; each problem is shown as an annotation
# on its line. Written by `jobfsm init`.
name: jobfsm
on:
  push:
    paths: ["jobs/**", ".github/workflows/jobfsm.yml"]
  pull_request:
    paths: ["jobs/**", ".github/workflows/jobfsm.yml"]
jobs:
  validate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      # The jobfsm this repository was made with; a wheel's path or a git URL works here too.
      - run: python -m pip install "jobfsm=={version}"
      - run: jobfsm validate --format github jobs/
"""

UNIT = """\
# systemd unit for the jobfsm daemon, written by `jobfsm init` for this folder and this jobfsm.
# Where the repository is deployed elsewhere, adjust WorkingDirectory, ExecStart and User. Install:
#   sudo cp deploy/jobfsm.service /etc/systemd/system/ && sudo systemctl daemon-reload
#   sudo systemctl enable --now jobfsm
[Unit]
Description=jobfsm scheduler daemon
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# Every job runs as this user (cron ran each user's jobs as that user).
User={user}
WorkingDirectory={folder}
Environment=JOBFSM_JOBS={folder}/jobs
Environment=JOBFSM_LOGS={folder}/logs
ExecStart={jobfsm} start --grace-seconds 60
# SIGTERM: no new runs; running jobs get --grace-seconds to finish, then are killed and recorded.
KillMode=mixed
TimeoutStopSec=90
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def files(folder: Path, *, jobfsm: str, user: str) -> dict[str, str]:
    """Relative path → text of every file ``jobfsm init`` writes in ``folder`` (absolute)."""
    return {
        f"jobs/{EXAMPLE_NAME}.json": render_document(EXAMPLE),
        "schemas/job.schema.json": schema_text(),
        "deploy/jobfsm.service": UNIT.format(folder=folder, jobfsm=jobfsm, user=user),
        ".github/workflows/jobfsm.yml": WORKFLOW.format(version=__version__),
    }

