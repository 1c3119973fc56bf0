"""The wall clock stepped an hour forward and back under a running scheduler (the injected
clock moves the wall time only; the monotonic clock does not jump): no burst of duplicate
fires, fires jumped over recorded as skipped in a few transactions, retries keep their delay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import event

from jobfsm.model import Outcome, RunStatus, Trigger
from tests.scheduler_support import MINUTE, Rig


def _rig(tmp_path: Path, n: int = 20, **fields: object) -> Rig:
    return Rig(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", n, **fields)


def test_an_hour_forward_runs_each_jobs_newest_fire_and_records_the_others_in_batches(tmp_path: Path) -> None:
    rig = _rig(tmp_path)
    rig.at(MINUTE)
    rig.runner.finish(rig.runner.tickets, MINUTE + timedelta(seconds=1))
    rig.scheduler.apply_results()
    commits = []
    event.listen(rig.store._engine, "commit", lambda conn: commits.append(1))  # type: ignore[attr-defined]
    rig.clock.step(hours=1)
    rig.scheduler.dispatch_due()
    fires = [MINUTE + timedelta(minutes=m) for m in range(61)]
    rig.assert_each_fire_once(fires)
    assert len(rig.runner.tickets) == 40, "more than one fire per job ran after the step"
    newest = fires[-1]
    assert {t.scheduled_for for t in rig.runner.tickets[20:]} == {newest}
    skipped = rig.store.list_runs(status=RunStatus.SKIPPED)
    assert len(skipped) == 20 * 59
    assert all("the wall clock jumped forward by 3600 s" in r.message for r in skipped)
    assert len(commits) <= 10, f"{len(commits)} transactions for {len(skipped)} skipped fires"
    assert "the wall clock jumped forward by 3600 s" in rig.main_log()
    rig.close()


def test_an_hour_back_runs_no_fire_again_and_waits_for_the_next_one(tmp_path: Path) -> None:
    rig = _rig(tmp_path)
    rig.at(MINUTE)
    rig.runner.finish(rig.runner.tickets, MINUTE + timedelta(seconds=1))
    rig.scheduler.apply_results()
    rig.clock.step(hours=-1)
    for _ in range(3):  # the wall clock is an hour behind: nothing is due, nothing runs again
        rig.clock.advance(minutes=1)
        rig.scheduler.dispatch_due()
    assert len(rig.runner.tickets) == 20
    assert "the wall clock jumped back by 3600 s" in rig.main_log()
    due = rig.scheduler.next_due()
    assert due == MINUTE + timedelta(minutes=1), f"the next fire moved to {due}"
    rig.close()


def test_a_retry_keeps_its_delay_when_the_wall_clock_steps(tmp_path: Path) -> None:
    for hours in (-1, 1):
        folder = tmp_path / f"step{hours}"
        folder.mkdir()
        rig = Rig(folder, f"sqlite:///{folder / 'store.db'}", 1, retries=1, retry_delay_seconds=60,
                  schedule="0 0 1 1 *")
        rig.at(MINUTE)
        run_id = rig.scheduler.store.request_trigger("job-000", user="ana", at=MINUTE).id
        rig.scheduler.poll_triggers()
        assert rig.runner.tickets, f"trigger {run_id} did not start"
        rig.runner.finish(rig.runner.tickets, MINUTE, Outcome.FAILED)
        rig.scheduler.apply_results()
        rig.clock.step(hours=hours)
        rig.scheduler.dispatch_due()  # notices the step
        rig.clock.advance(30)
        rig.scheduler.dispatch_due()
        assert len(rig.runner.tickets) == 1, f"the retry ran early after a {hours:+} h step"
        rig.clock.advance(31)
        rig.scheduler.dispatch_due()
        assert [t.trigger for t in rig.runner.tickets] == [Trigger.MANUAL, Trigger.RETRY], (
            f"the retry did not run 60 s after the failure across a {hours:+} h step")
        rig.close()
