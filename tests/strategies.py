"""Hypothesis strategies for valid job documents and configs, shared by the test modules."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from jobfsm.model import CatchUp, JobConfig, NotifyEvent, Overlap

names = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,30}\Z", fullmatch=True)

schedules = st.sampled_from(
    [
        "* * * * *",
        "*/15 * * * *",
        "0 * * * *",
        "30 2 * * *",
        "0 9 * * mon-fri",
        "0 0 1 * *",
        "5,35 */2 * jan-jun *",
        "0 0 13 * fri",
        "@daily",
        "@hourly",
        "@weekly",
        "@monthly",
        "@yearly",
    ]
)
zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe"])
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
env_keys = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,15}\Z", fullmatch=True)
commands = st.one_of(
    text.filter(lambda s: s.strip() != "").map(lambda s: "echo " + s),
    st.lists(text, min_size=1, max_size=4).map(lambda parts: ["/bin/echo", *parts]),
)


@st.composite
def notify_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ``notify``: any subset of its keys, ``"on": []`` (silenced) included."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["on"] = draw(st.lists(st.sampled_from([e.value for e in NotifyEvent]), unique=True, max_size=5))
    if draw(st.booleans()):
        out["webhook"] = draw(st.sampled_from(["https://hooks.example/x", "http://127.0.0.1:9/h?a=1"]))
    if draw(st.booleans()):
        out["email"] = draw(st.lists(st.sampled_from(["ops@example.com", "dev@example.org"]), unique=True,
                                     min_size=1, max_size=2))
    if draw(st.booleans()):
        out["long_running_seconds"] = draw(st.integers(1, 31622400))
    return out


@st.composite
def job_documents(draw: st.DrawFn, name: str | None = None, minimal: bool = False) -> dict[str, Any]:
    """A schema-valid, semantically valid job document (working directory /tmp exists)."""
    doc: dict[str, Any] = {
        "name": name if name is not None else draw(names),
        "schedule": draw(schedules),
        "command": draw(commands),
        "working_directory": "/tmp",
        "enabled": draw(st.booleans()),
    }
    if minimal:
        return doc
    optional = {
        "description": text,
        "timezone": zones,
        "timeout_seconds": st.integers(1, 604800),
        "env": st.dictionaries(env_keys, text, max_size=4),
        "overlap": st.sampled_from([o.value for o in Overlap]),
        "catch_up": st.sampled_from([c.value for c in CatchUp]),
        "retries": st.integers(0, 100),
        "retry_delay_seconds": st.integers(0, 86400),
        "notify": notify_objects(),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            doc[key] = draw(strategy)
    return doc


job_configs = job_documents().map(JobConfig.from_dict)
