"""The ``notify`` field of a job file: what it means, and what a wrong one is told."""

from __future__ import annotations

import pytest

from jobfsm.config.loader import validate_document
from jobfsm.model import DEFAULT_NOTIFY_ON, JobConfig, Notify, NotifyEvent
from tests.conftest import job_doc


def test_left_out_means_the_default_events_to_the_daemons_addresses() -> None:
    config = JobConfig.from_dict(job_doc("a"))
    assert config.notify == Notify()
    assert config.notify.on == DEFAULT_NOTIFY_ON and config.notify.webhook is None
    assert "notify" not in config.to_dict(full=False)


def test_a_full_notify_round_trips() -> None:
    doc = job_doc("a", notify={"on": ["failure", "long_running"], "webhook": "https://hooks.example/x",
                               "email": ["ops@example.com"], "long_running_seconds": 600})
    assert validate_document(doc).valid
    config = JobConfig.from_dict(doc)
    assert config.notify.on == (NotifyEvent.FAILURE, NotifyEvent.LONG_RUNNING)
    assert config.notify.email == ("ops@example.com",)
    assert JobConfig.from_dict(config.to_dict(full=False)) == config


def test_an_empty_on_silences_the_job() -> None:
    config = JobConfig.from_dict(job_doc("a", notify={"on": []}))
    assert config.notify.on == ()
    assert config.to_dict(full=False)["notify"] == {"on": []}


@pytest.mark.parametrize(
    ("notify", "path", "said"),
    [
        ({"on": ["fail"]}, "$.notify.on[0]", "'failure', 'recovery'"),
        ({"on": ["failure", "failure"]}, "$.notify.on", "non-unique"),
        ({"webhook": "ftp://x"}, "$.notify.webhook", "https://"),
        ({"email": ["not-an-address"]}, "$.notify.email[0]", "e-mail address"),
        ({"long_running_seconds": 0}, "$.notify.long_running_seconds", "minimum of 1"),
        ({"slack": "#ops"}, "$.notify", "'slack' was unexpected"),
    ],
    ids=["unknown-event", "repeated-event", "not-http", "bad-address", "zero-seconds", "unknown-key"],
)
def test_a_wrong_notify_names_its_field(notify: dict, path: str, said: str) -> None:
    report = validate_document(job_doc("a", notify=notify), "a.json")
    assert not report.valid
    assert [p.json_path for p in report.errors] == [path], report.errors
    assert said in report.errors[0].message
