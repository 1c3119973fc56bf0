"""Accounts of the admin page: the users file, password hashes, and the CLI around them."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfsm.admin.accounts import AccountError, Accounts, Role, check_password, hash_password
from jobfsm.cli import run


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return Accounts(tmp_path / "logs" / "users.json")


def test_add_verify_list_remove(accounts: Accounts) -> None:
    accounts.add("alice", "correct horse", "admin")
    accounts.add("bob", "battery staple", Role.VIEWER)
    assert [(a.username, a.role) for a in accounts.list()] == [("alice", Role.ADMIN), ("bob", Role.VIEWER)]
    assert accounts.verify("alice", "correct horse") is not None
    assert accounts.verify("alice", "battery staple") is None
    assert accounts.verify("nobody", "correct horse") is None
    assert accounts.role_of("bob") is Role.VIEWER
    accounts.remove("bob")
    assert accounts.role_of("bob") is None
    with pytest.raises(AccountError, match="no account named 'bob'"):
        accounts.remove("bob")


def test_file_is_private_and_holds_no_password(accounts: Accounts) -> None:
    accounts.add("alice", "s3cret-passphrase", "admin")
    mode = stat.S_IMODE(accounts.path.stat().st_mode)
    assert mode == 0o600
    text = accounts.path.read_text()
    assert "s3cret-passphrase" not in text
    record = json.loads(text)["users"]["alice"]["password"]
    assert record["algorithm"] == "scrypt"
    assert (record["n"], record["r"], record["p"]) == (2**14, 8, 1)
    assert len(record["salt"]) >= 20  # 16 random bytes, base64


def test_same_password_gets_different_salts(accounts: Accounts) -> None:
    accounts.add("a", "same", "viewer")
    accounts.add("b", "same", "viewer")
    users = json.loads(accounts.path.read_text())["users"]
    assert users["a"]["password"]["salt"] != users["b"]["password"]["salt"]
    assert users["a"]["password"]["hash"] != users["b"]["password"]["hash"]


def test_replacing_an_account_changes_password_and_role(accounts: Accounts) -> None:
    accounts.add("alice", "old", "viewer")
    accounts.add("alice", "new", "admin")
    assert accounts.verify("alice", "old") is None
    account = accounts.verify("alice", "new")
    assert account is not None and account.role is Role.ADMIN


@pytest.mark.parametrize(
    ("username", "password", "role", "match"),
    [
        ("alice", "", "admin", "empty password"),
        ("../etc", "pw", "admin", "invalid username"),
        ("", "pw", "admin", "invalid username"),
        ("alice", "pw", "root", "invalid role"),
    ],
    ids=["empty-password", "path-name", "empty-name", "bad-role"],
)
def test_bad_accounts_are_refused(accounts: Accounts, username: str, password: str, role: str, match: str) -> None:
    with pytest.raises(AccountError, match=match):
        accounts.add(username, password, role)
    assert not accounts.path.exists()


def test_corrupt_file_is_reported_with_a_fix(accounts: Accounts) -> None:
    accounts.path.parent.mkdir(parents=True)
    accounts.path.write_text("{not json")
    with pytest.raises(AccountError, match="users add"):
        accounts.list()


@settings(max_examples=100, deadline=None)
@given(password=st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",)), max_size=40), other=st.text(max_size=40))
def test_hash_accepts_only_its_password(password: str, other: str) -> None:
    # Low cost parameters for speed; they are stored with the hash, as real ones are.
    record = hash_password(password, n=2**4, r=8, p=1)
    assert check_password(password, record)
    assert check_password(other, record) is (other == password)


def test_a_password_padded_with_nul_never_matches(accounts: Accounts) -> None:
    """scrypt, like HMAC, pads its key with NULs: "pw", "pw\0" and "pw\0\0" would hash alike."""
    accounts.add("ana", "secret", "admin")
    assert accounts.verify("ana", "secret") is not None
    assert accounts.verify("ana", "secret\0") is None and accounts.verify("ana", "secret\0\0") is None
    assert accounts.verify("ana", "\ud800") is None  # a lone surrogate, as a form may send it
    with pytest.raises(AccountError, match="NUL"):
        accounts.add("bob", "pw\0", "viewer")


# -- the CLI ---------------------------------------------------------------------------------


def cli(args: list[str], stdin_text: str = "", monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(args, out, err)
    return code, out.getvalue(), err.getvalue()


def test_users_add_list_remove_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = tmp_path / "logs"
    monkeypatch.setattr("sys.stdin", io.StringIO("pa55 word\n"))
    code, out, err = cli(["--logs", str(logs), "users", "add", "ops", "--role", "admin"])
    assert code == 0, err
    assert "ops" in out
    assert Accounts(logs / "users.json").verify("ops", "pa55 word") is not None
    code, out, _ = cli(["--logs", str(logs), "users", "list"])
    assert code == 0 and out == "ops\tadmin\n"
    code, out, _ = cli(["--logs", str(logs), "users", "remove", "ops"])
    assert code == 0
    assert Accounts(logs / "users.json").list() == []


def test_users_add_refuses_an_empty_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    code, _, err = cli(["--logs", str(tmp_path), "users", "add", "ops", "--role", "admin"])
    assert code == 1
    assert "empty password" in err
    assert not (tmp_path / "users.json").exists()


def test_users_add_prompts_twice_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter(["one", "two"])
    monkeypatch.setattr("sys.stdin", Tty())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, _, err = cli(["--logs", str(tmp_path), "users", "add", "ops", "--role", "viewer"])
    assert code == 1 and "differ" in err
    answers = iter(["same", "same"])
    code, _, err = cli(["--logs", str(tmp_path), "users", "add", "ops", "--role", "viewer"])
    assert code == 0, err
    assert Accounts(tmp_path / "users.json").role_of("ops") is Role.VIEWER


def test_users_file_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "elsewhere" / "accounts.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    code, _, err = cli(["users", "--users-file", str(target), "add", "ops", "--role", "admin"])
    assert code == 0, err
    assert Accounts(target).role_of("ops") is Role.ADMIN


def test_admin_refuses_to_start_without_accounts(tmp_path: Path) -> None:
    code, out, err = cli(["--logs", str(tmp_path / "logs"), "--jobs", str(tmp_path), "admin", "--port", "1"])
    assert code == 1
    assert "no accounts" in err
    assert "jobfsm users add NAME --role admin" in err
    assert out == ""
