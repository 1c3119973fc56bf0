"""The sign-in throttle and the session rules on their own, with a fake clock, plus the options of
``jobfsm admin`` that set them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.admin.security import Revocations, SessionManager
from jobfsm.admin.throttle import SignInThrottle
from jobfsm.cli import run


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


PAIRS = st.tuples(st.sampled_from(["alice", "Alice", "bob", "eve"]), st.sampled_from(["10.0.0.1", "10.0.0.2"]))


@settings(max_examples=200)
@given(st.lists(st.tuples(PAIRS, st.booleans(), st.floats(0, 400)), max_size=60))
def test_only_a_pairs_own_failures_make_it_wait_and_never_beyond_the_cap(
    steps: list[tuple[tuple[str, str], bool, float]],
) -> None:
    clock = Clock()
    throttle = SignInThrottle(monotonic=clock)
    failures: dict[tuple[str, str], int] = {}  # the model: failures in a row per pair
    for (user, address), ok, pause in steps:
        clock.now += pause
        key = (user.casefold(), address)
        if throttle.wait(user, address) > 0:
            continue  # refused before the password is checked: counts nothing
        if ok:
            throttle.succeeded(user, address)
            failures.pop(key, None)
        else:
            failures[key] = failures.get(key, 0) + 1
            throttle.failed(user, address)
        for (u, a), count in failures.items():
            wait = throttle.wait(u, a)
            assert wait <= throttle.max_delay
            if count <= throttle.free_failures:
                assert wait == 0
        for u, a in [("bob", "10.0.0.9"), ("nobody", "10.0.0.1")]:  # never failed: never waits
            assert throttle.wait(u, a) == 0


def test_the_delay_doubles_after_the_free_failures() -> None:
    throttle = SignInThrottle(free_failures=3, base_delay=1, max_delay=300)
    assert [throttle.delay_after(n) for n in range(1, 13)] == [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert throttle.delay_after(13) == throttle.delay_after(10_000) == 300


def test_a_spray_of_names_cannot_grow_the_table_forever() -> None:
    throttle = SignInThrottle(max_entries=100)
    for i in range(1_000):
        throttle.failed(f"user{i}", "10.0.0.1")
    assert len(throttle) <= 100
    assert throttle.wait("user999", "10.0.0.1") == 0  # within its free failures, but remembered
    throttle.failed("user999", "10.0.0.1")
    throttle.failed("user999", "10.0.0.1")
    throttle.failed("user999", "10.0.0.1")
    assert throttle.wait("user999", "10.0.0.1") > 0


def test_a_revocation_is_seen_by_another_process_and_survives_a_bad_file(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "admin-revoked.json"
    one = SessionManager("s3cret", wall=clock, revocations=Revocations(path))
    two = SessionManager("s3cret", wall=clock, revocations=Revocations(path))  # another admin process
    cookie = one.issue("alice")
    assert two.read(cookie) is not None
    one.revoke(cookie)
    assert two.read(cookie) is None
    assert path.stat().st_mode & 0o077 == 0
    path.write_text("{not json")
    assert two.read(cookie) is None  # what it knew stays revoked
    clock.now += 9 * 3600  # expired anyway; the next revocation prunes it from the file
    other = one.issue("victor")
    ended = one.revoke(other)
    assert ended is not None
    assert list(json.loads(path.read_text())["revoked"]) == [ended.sid]


def test_a_cookie_from_the_future_or_without_a_last_use_is_refused() -> None:
    clock = Clock()
    sessions = SessionManager("s3cret", wall=clock)
    cookie = sessions.issue("alice")
    clock.now -= 3600
    assert sessions.read(cookie) is None
    old_style = sessions._serializer.dumps({"u": "alice", "s": "x", "t": int(clock.now)})  # no "a"
    assert sessions.read(old_style) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["admin", "--forwarded-allow-ips", "10.0.0.1,proxy.local"], "'proxy.local' is not an IP address or network"),
        (["admin", "--idle-timeout", "5"], "--idle-timeout must be at least 60"),
    ],
    ids=["not-an-address", "idle-too-short"],
)
def test_bad_admin_options_are_one_line_and_exit_2(argv: list[str], message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(argv, out, err) == 2
    assert message in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1
