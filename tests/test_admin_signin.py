"""Sign-in and session hardening over real HTTP: uvicorn on 127.0.0.1, a real service and SQLite
file. The audit of sign-ins, sessions that stay signed out across a restart and end when idle,
the per (user, address) throttle, forwarded addresses, and the headers and origins of answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jobfsm.admin.throttle import SignInThrottle
from tests.admin_support import PASSWORDS, AdminServer, admin_server, call, login

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    root = tmp_path_factory.mktemp("admin-signin")
    with admin_server(root, idle_timeout=300) as srv:
        yield srv


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    """A server that trusts X-Forwarded-For from 127.0.0.1 (a proxy on the same host)."""
    root = tmp_path_factory.mktemp("admin-proxied")
    with admin_server(root, forwarded_allow_ips=["127.0.0.1"]) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh_limits(request: pytest.FixtureRequest) -> None:
    for name in ("server", "proxied"):
        if name in request.fixturenames:
            srv = request.getfixturevalue(name)
            srv.app.state.jobfsm_limiter.clear()
            srv.wall[0] = 0.0


def attempt(server: AdminServer, user: str, password: str, forwarded: str | None = None) -> requests.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return requests.post(
        server.url + "/login", data={"username": user, "password": password},
        headers=headers, allow_redirects=False, timeout=30,
    )


def sign_ins(server: AdminServer) -> list[tuple[str, str, str, str]]:
    """(user, outcome, address, reason) of every sign-in entry in the store, oldest first."""
    return [
        (e.user, e.outcome, e.details.get("address", ""), e.details.get("reason", ""))
        for e in reversed(server.service.list_audit()) if e.action == "sign-in"
    ]


# -- audit ------------------------------------------------------------------------------------


def test_sign_ins_are_audited_with_user_address_and_outcome_but_never_the_password(server: AdminServer) -> None:
    before = len(sign_ins(server))
    assert attempt(server, "alice", "hunter2-wrong-guess").status_code == 401
    assert attempt(server, "alice-pass-typed-as-name", "any-guess-at-all").status_code == 401
    assert attempt(server, "alice", PASSWORDS["alice"]).status_code == 303
    assert sign_ins(server)[before:] == [
        ("alice", "denied", "127.0.0.1", "wrong user name or password"),
        ("(unknown)", "denied", "127.0.0.1", "wrong user name or password"),
        ("alice", "allowed", "127.0.0.1", ""),
    ]
    audit_log = (server.logs / "audit.log").read_text()
    lines = [json.loads(line) for line in audit_log.splitlines()]
    assert [(e["user"], e["outcome"]) for e in lines if e["action"] == "sign-in"][-3:] == [
        ("alice", "denied"), ("(unknown)", "denied"), ("alice", "allowed"),
    ]
    stored = json.dumps([e.to_dict() for e in server.service.list_audit()], default=str)
    for secret in ("hunter2-wrong-guess", "any-guess-at-all", PASSWORDS["alice"], "alice-pass-typed-as-name"):
        assert secret not in audit_log and secret not in stored


def test_signing_out_is_audited(server: AdminServer) -> None:
    session = login(server, "victor")
    session.get(server.url + "/logout", allow_redirects=False, timeout=30)
    newest = server.service.list_audit()[0]
    assert (newest.user, newest.action, newest.outcome) == ("victor", "sign-out", "allowed")


# -- sessions ---------------------------------------------------------------------------------


def test_a_signed_out_cookie_stays_dead_after_the_admin_restarts(tmp_path: Path) -> None:
    keep = {"secret_file": tmp_path / "logs" / "admin-secret", "revocations_file": tmp_path / "logs" / "admin-revoked.json"}
    with admin_server(tmp_path, **keep) as first:
        ended, kept = login(first, "alice"), login(first, "victor")
        ended_cookie = ended.cookies["jobfsm_session"]
        ended.get(first.url + "/logout", allow_redirects=False, timeout=30)
        assert requests.get(first.url + "/config", cookies={"jobfsm_session": ended_cookie}, timeout=30).status_code == 401
    with admin_server(tmp_path, **keep) as second:  # the same folder: a restart
        assert kept.get(second.url + "/config", timeout=30).status_code == 200  # same secret
        again = requests.get(second.url + "/config", cookies={"jobfsm_session": ended_cookie}, timeout=30)
        assert again.status_code == 401
        event, _ = call(requests.Session(), second, "dashboard", [None])
        assert event == "http 401"


def test_an_idle_session_ends_and_use_keeps_it_alive(server: AdminServer) -> None:
    session = login(server, "alice")
    first_cookie = session.cookies["jobfsm_session"]
    server.wall[0] = 200.0  # idle timeout 300 s: still alive, and the answer renews the cookie
    response = session.get(server.url + "/config", timeout=30)
    assert response.status_code == 200
    assert "jobfsm_session=" in response.headers.get("set-cookie", "")
    assert session.cookies["jobfsm_session"] != first_cookie
    server.wall[0] = 400.0  # 400 s after sign-in, 200 s after the last use
    assert session.get(server.url + "/config", timeout=30).status_code == 200
    stale = requests.get(server.url + "/config", cookies={"jobfsm_session": first_cookie}, timeout=30)
    assert stale.status_code == 401  # the copy that was not used for 400 s has ended
    server.wall[0] = 800.0  # nothing for 400 s
    assert session.get(server.url + "/config", timeout=30).status_code == 401


# -- throttle ---------------------------------------------------------------------------------


def test_failures_delay_that_user_from_that_address_more_and_more(server: AdminServer) -> None:
    free = SignInThrottle().free_failures
    assert [attempt(server, "alice", f"wrong{i}").status_code for i in range(free)] == [401] * free
    assert attempt(server, "alice", "wrong-again").status_code == 401  # this one imposes a wait
    waits = []
    for _ in range(3):
        refused = attempt(server, "alice", PASSWORDS["alice"])  # even the right password waits
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        server.wall[0] += waits[-1]
        assert attempt(server, "alice", "still-wrong").status_code == 401
    assert waits[0] < waits[1] < waits[2]  # a growing delay
    assert waits[2] <= 10  # not a lockout
    assert attempt(server, "victor", PASSWORDS["victor"]).status_code == 303  # same address, other user
    server.wall[0] += 60
    assert attempt(server, "alice", PASSWORDS["alice"]).status_code == 303
    assert attempt(server, "alice", "one-typo").status_code == 401  # a success started her afresh
    assert attempt(server, "alice", PASSWORDS["alice"]).status_code == 303
    assert ("alice", "denied", "127.0.0.1", "throttled") in sign_ins(server)


def test_rotating_x_forwarded_for_does_not_escape_the_throttle(server: AdminServer) -> None:
    codes = [attempt(server, "alice", f"guess{i}", forwarded=f"203.0.113.{i}").status_code for i in range(30)]
    assert codes.count(401) <= SignInThrottle().free_failures + 1
    assert codes[-1] == 429
    assert {address for _, _, address, _ in sign_ins(server)[-30:]} == {"127.0.0.1"}  # not the forged ones


def test_a_configured_proxy_gives_the_client_address(proxied: AdminServer) -> None:
    free = SignInThrottle().free_failures
    for i in range(free + 1):
        assert attempt(proxied, "alice", f"wrong{i}", forwarded="198.51.100.7").status_code == 401
    assert attempt(proxied, "alice", PASSWORDS["alice"], forwarded="198.51.100.7").status_code == 429
    # alice at her own desk, through the same proxy, is not held up by the guesser
    assert attempt(proxied, "alice", PASSWORDS["alice"], forwarded="198.51.100.8").status_code == 303
    assert sign_ins(proxied)[-1] == ("alice", "allowed", "198.51.100.8", "")


# -- headers and origins -----------------------------------------------------------------------


def test_page_has_a_policy_with_its_nonce_on_every_script(server: AdminServer) -> None:
    session = login(server, "alice")
    page = session.get(server.url + "/", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    tags = re.findall(r"<script\b[^>]*>", page.text)
    assert tags and all(f'nonce="{nonce.group(1)}"' in tag for tag in tags)
    again = session.get(server.url + "/", headers={"Accept": "text/html"}, timeout=30)
    assert again.headers["content-security-policy"] != policy  # a fresh nonce per answer


def test_answers_with_job_data_are_not_cached(server: AdminServer) -> None:
    session = login(server, "alice")
    for path in ("/", "/config", "/gradio_api/info", "/login"):
        response = session.get(server.url + path, timeout=30)
        assert response.headers.get("cache-control") == "no-store", path
    post = session.post(server.url + "/gradio_api/call/dashboard", json={"data": [None]}, timeout=30)
    assert post.headers.get("cache-control") == "no-store"
    stream = session.get(server.url + f"/gradio_api/call/dashboard/{post.json()['event_id']}", timeout=60)
    assert stream.headers.get("cache-control") == "no-store"
    asset = re.search(r'src="\./(assets/[^"]+\.js)"', session.get(server.url + "/", timeout=30).text)
    assert asset is not None
    assert session.get(server.url + "/" + asset.group(1), timeout=30).headers.get("cache-control") != "no-store"


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:1", "http://127.0.0.1", "http://localhost:{port}", "null", "http://evil.example",
     "http://127.0.0.1:{port}.evil.example"],
    ids=["other-port", "default-port", "other-host-name", "null", "other-site", "suffix"],
)
def test_another_origin_cannot_use_the_cookie(server: AdminServer, origin: str) -> None:
    session = login(server, "alice")
    origin = origin.format(port=server.url.rsplit(":", 1)[1])
    response = session.get(server.url + "/config", headers={"Origin": origin}, timeout=30)
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert "components" not in response.text
    preflight = session.options(
        server.url + "/gradio_api/call/do_trigger",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"}, timeout=30,
    )
    assert "access-control-allow-origin" not in preflight.headers
    posted = session.post(server.url + "/gradio_api/call/dashboard", json={"data": [None]},
                          headers={"Origin": origin}, timeout=30)
    assert posted.status_code == 403


def test_the_pages_own_origin_is_served_also_behind_a_proxy(server: AdminServer) -> None:
    session = login(server, "alice")
    response = session.get(server.url + "/config", headers={"Origin": server.url}, timeout=30)
    assert response.status_code == 200 and "components" in response.text
    # behind a TLS proxy: the browser's https origin, the Host the proxy passes on
    cookie = session.cookies["jobfsm_session"]  # sent by hand: requests matches cookies to Host
    proxied = requests.get(server.url + "/config", timeout=30, headers={
        "Origin": "https://jobs.example.org", "Host": "jobs.example.org", "Cookie": f"jobfsm_session={cookie}"})
    assert proxied.status_code == 200
    foreign = requests.get(server.url + "/config", timeout=30, headers={
        "Origin": "https://evil.example", "Host": "jobs.example.org", "Cookie": f"jobfsm_session={cookie}"})
    assert foreign.status_code == 403 and "access-control-allow-origin" not in foreign.headers
