"""A loop that comes to a burst late (the host slept, the store was out) records every fire
that was due, as each job's ``catch_up`` says: the first job of the burst too, which starts
before the rest is sorted out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from jobfsm.model import RunStatus
from tests.scheduler_support import T0, Rig

MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize("jobs", [1, 3])
def test_every_fire_of_a_late_burst_runs_with_catch_up_all(tmp_path: Path, jobs: int) -> None:
    rig = Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", jobs, catch_up="all", overlap="allow")
    try:
        first = T0.replace(second=0) + MINUTE
        fires = [first + i * MINUTE for i in range(4)]
        rig.at(fires[-1] + timedelta(seconds=10))  # four fires due at once, the oldest 3 min late
        rig.assert_each_fire_once(fires)
        ran = {(r.job, r.scheduled_for) for r in rig.runs() if r.status is not RunStatus.SKIPPED}
        assert ran == {(name, fire) for name in rig.names for fire in fires}, "catch_up: all runs each one"
    finally:
        rig.close()
