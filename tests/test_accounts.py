"""``courseport users`` and ``courseport app-password``: accounts kept as hashes, shown safely."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error, cli_at, db_path


@pytest.fixture
def home_with_store(home: Path) -> Path:
    assert cli_at(home, "init").returncode == 0
    return home


def test_add_list_create_revoke(home_with_store: Path) -> None:
    home = home_with_store
    proc = cli_at(home, "users", "add", "Ada@Example.com", "--admin", input="a long sign-in password\n")
    assert proc.returncode == 0 and proc.stdout == "added ada@example.com (admin)\n"
    assert cli_at(home, "users", "add", "bob@example.com", input="another password\n").returncode == 0
    assert cli_at(home, "users", "list").stdout == "ada@example.com\tadmin\nbob@example.com\tlearner\n"
    created = cli_at(home, "app-password", "create", "--email", "ada@example.com", "--name", "laptop")
    assert created.returncode == 0
    token = created.stdout.splitlines()[-1]
    assert len(token.replace(" ", "")) == 24 and token.count(" ") == 5
    listed = cli_at(home, "app-password", "list").stdout.splitlines()
    assert len(listed) == 1 and "\tada@example.com\tlaptop\t" in listed[0] and "last used never" in listed[0]
    ident = listed[0].split("\t")[0]
    stored = db_path(home).read_bytes() + (Path(f"{db_path(home)}-wal").read_bytes()
                                          if Path(f"{db_path(home)}-wal").exists() else b"")
    for secret in (token, token.replace(" ", ""), "a long sign-in password"):
        assert secret.encode() not in stored
    proc = cli_at(home, "app-password", "revoke", "--email", "ada@example.com", ident)
    assert proc.returncode == 0 and "revoked 'laptop'" in proc.stdout
    assert cli_at(home, "app-password", "list").stdout == ""


@pytest.mark.parametrize("args, input, says", [
    (("users", "add", "not-an-email"), "password123\n", "is not an email address"),
    (("users", "add", "a@example.com"), "short\n", "8 to 1024 characters"),
    (("users", "add", "a@example.com"), "", "no password on stdin"),
    (("app-password", "create", "--email", "nobody@example.com"), "", "has no account"),
    (("app-password", "revoke", "--email", "nobody@example.com", "x"), "", "no app-specific password"),
])
def test_refusals_are_one_line(home_with_store: Path, args: tuple, input: str, says: str) -> None:
    before = db_path(home_with_store).read_bytes()
    line = assert_one_line_error(cli_at(home_with_store, *args, input=input))
    assert says in line
    assert db_path(home_with_store).read_bytes() == before


def test_an_account_is_added_once(home_with_store: Path) -> None:
    assert cli_at(home_with_store, "users", "add", "a@example.com", input="password123\n").returncode == 0
    line = assert_one_line_error(cli_at(home_with_store, "users", "add", "A@example.com", input="password456\n"))
    assert "already has an account" in line


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=st.text(max_size=80), name=st.text(max_size=120))
def test_hostile_identities_are_refused_or_shown_on_one_line(store, email: str, name: str) -> None:
    """Whatever an email or a name holds, it is refused in one line, or kept and listed
    on one line of printable text (no newline, tab or terminal escape to forge a row)."""
    from courseport.server.accounts import AccountError, Accounts

    accounts = Accounts(store)
    try:
        account = accounts.add_user(email, "password123")
    except AccountError as exc:
        assert "\n" not in str(exc)
        return
    try:
        info, _ = accounts.create_app_password(account.email, name)
    except AccountError as exc:
        assert "\n" not in str(exc)
    else:
        assert info.name.isprintable() and info.email.isprintable()
    assert account.email.isprintable() and "\t" not in account.email
    for kind in ("CourseportAccount", "CourseportAppPassword"):  # the next example starts empty
        store.delete_multi([entity.key for entity in store.query(kind, "_courseport_accounts")])


@pytest.mark.parametrize("email", ["a:b@example.com", "a@exa:mple.com", "a\x1b[31m@example.com", "a\n@example.com",
                                   "@example.com", "a@", "a@b@c"])
def test_emails_that_could_forge_a_sign_in_or_a_listing_are_refused(store, email: str) -> None:
    from courseport.server.accounts import AccountError, Accounts

    with pytest.raises(AccountError, match="is not an email address"):
        Accounts(store).add_user(email, "password123")


@pytest.mark.parametrize("args", [("users", "list"), ("users", "add", "a@example.com"),
                                  ("app-password", "list"), ("app-password", "create", "--email", "a@example.com")])
def test_account_commands_need_a_store(home: Path, args: tuple) -> None:
    line = assert_one_line_error(cli_at(home, *args, input="password123\n"))
    assert "courseport init" in line
    assert list(home.iterdir()) == []  # nothing was created


def test_roles_change_and_accounts_go_with_their_passwords(home_with_store: Path) -> None:
    home = home_with_store
    assert cli_at(home, "users", "add", "ada@example.com", input="a long sign-in password\n").returncode == 0
    proc = cli_at(home, "users", "role", "Ada@Example.com", "admin")
    assert proc.returncode == 0 and proc.stdout == "ada@example.com is now an admin\n"
    assert cli_at(home, "users", "list").stdout == "ada@example.com\tadmin\n"
    assert cli_at(home, "app-password", "create", "--email", "ada@example.com").returncode == 0
    assert cli_at(home, "users", "role", "ada@example.com", "learner").stdout == "ada@example.com is now a learner\n"
    proc = cli_at(home, "users", "remove", "ada@example.com")
    assert proc.returncode == 0 and "removed ada@example.com" in proc.stdout
    assert cli_at(home, "users", "list").stdout == "" and cli_at(home, "app-password", "list").stdout == ""
    for args in (("users", "remove", "ada@example.com"), ("users", "role", "nobody@example.com", "admin")):
        assert "has no account" in assert_one_line_error(cli_at(home, *args))
