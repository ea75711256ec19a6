"""
Tests for C{python -m wazzap.admin}, run as a real subprocess on a database
in a temporary directory.
"""

import pytest

from tests.support import admin_cli
from wazzap.persist.store import ADDRESS, NICKNAME, Database

DAY = 24 * 60 * 60
FAR_FUTURE = 4_000_000_000


def admin(*arguments, env=None):
    """
    Run the admin command; return (exit status, stdout, stderr).
    """
    process = admin_cli(*arguments, env=env)
    return process.returncode, process.stdout, process.stderr


@pytest.fixture
def path(tmp_path):
    """
    A database with two accounts, some logins and two bans (one expired).
    """
    path = str(tmp_path / "wazzap.sqlite3")
    with Database.open(path) as db:
        db.create_account("Alice", "hash", at=0)
        db.create_account("bob", "hash", at=DAY)
        session = db.session_started("alice", "127.0.0.1", 60)
        db.session_ended(session, 180, "quit")
        db.session_started("Alice", "::1", 300)
        db.add_ban("Mallory", NICKNAME, None, "spam", "Alice", 10)
        db.add_ban("10.0.0.1", ADDRESS, FAR_FUTURE, "", None, 20)
        db.add_ban("10.0.0.2", ADDRESS, 30, "expired", None, 20)
    return path


def test_list(path):
    """list shows every account with its admin flag and creation date."""
    status, out, err = admin("--db", path, "list")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "NICKNAME  ADMIN  CREATED",
        "Alice     no     1970-01-01 00:00",
        "bob       no     1970-01-02 00:00",
    ]


def test_grant_and_revoke(path):
    """grant and revoke change the admin flag, whatever the case typed."""
    assert admin("--db", path, "grant", "ALICE") == (0, "Alice is now an admin\n", "")
    with Database.open(path) as db:
        assert db.get_account("alice").is_admin
    assert admin("--db", path, "revoke", "alice") == (0, "Alice is no longer an admin\n", "")
    with Database.open(path) as db:
        assert not db.get_account("alice").is_admin


@pytest.mark.parametrize("command", ["grant", "revoke"])
def test_grant_missing_account(path, command):
    """Granting or revoking for an unknown nickname is a one-line error and status 1."""
    status, out, err = admin("--db", path, command, "zed")
    assert (status, out) == (1, "")
    assert err == "python -m wazzap.admin: no account named zed\n"


def test_bans(path):
    """bans lists the bans in force, not the expired ones."""
    status, out, err = admin("--db", path, "bans")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["TARGET", "KIND", "UNTIL", "BY", "REASON"]
    assert lines[1].split() == ["Mallory", "nickname", "permanent", "Alice", "spam"]
    assert lines[2].split() == ["10.0.0.1", "address", "2096-10-02", "07:06", "-", "-"]
    assert len(lines) == 3


def test_unban(path):
    """unban lifts a ban once; a second time is an error."""
    assert admin("--db", path, "unban", "mallory") == (0, "mallory is no longer banned\n", "")
    status, out, err = admin("--db", path, "unban", "mallory")
    assert (status, out, err) == (1, "", "python -m wazzap.admin: no ban on mallory\n")


def test_history(path):
    """history lists logins newest first, and --limit keeps the latest."""
    status, out, err = admin("--db", path, "history", "ALICE")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "LOGIN             LOGOUT            ADDRESS    REASON",
        "1970-01-01 00:05  online            ::1        -",
        "1970-01-01 00:01  1970-01-01 00:03  127.0.0.1  quit",
    ]
    status, out, err = admin("--db", path, "history", "alice", "--limit", "1")
    assert status == 0 and len(out.splitlines()) == 2


def test_history_never_logged_in(path):
    """An account without logins is said so; an unknown nickname is an error."""
    assert admin("--db", path, "history", "bob") == (0, "bob has never logged in\n", "")
    status, out, err = admin("--db", path, "history", "zed")
    assert (status, out) == (1, "")
    assert "zed" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["frobnicate"],
        ["grant"],
        ["history", "alice", "--limit", "0"],
        ["history", "alice", "--limit", "x"],
    ],
)
def test_usage_errors(path, arguments):
    """Bad usage is argparse's error and status 2."""
    status, out, err = admin("--db", path, *arguments)
    assert (status, out) == (2, "")
    assert "usage:" in err


def test_missing_database(tmp_path):
    """A --db that does not exist is an error, and no file is created."""
    path = tmp_path / "typo.sqlite3"
    status, out, err = admin("--db", str(path), "list")
    assert (status, out) == (1, "")
    assert err == "python -m wazzap.admin: no database at %s\n" % (path,)
    assert not path.exists()


def test_garbage_database(tmp_path):
    """A file that is not a database is a one-line error and status 1."""
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not a database at all\n" * 200)
    status, out, err = admin("--db", str(path), "list")
    assert (status, out) == (1, "")
    assert "not a SQLite database" in err and len(err.splitlines()) == 1


def test_default_database(tmp_path):
    """Without --db the database under XDG_DATA_HOME is used."""
    data = tmp_path / "data"
    (data / "wazzap").mkdir(parents=True)
    with Database.open(str(data / "wazzap" / "wazzap.sqlite3")) as db:
        db.create_account("carol", "hash", at=0)
    status, out, err = admin("list", env={"XDG_DATA_HOME": str(data)})
    assert (status, err) == (0, "")
    assert "carol" in out


def test_empty_database(tmp_path):
    """An empty database lists no accounts and no bans."""
    path = str(tmp_path / "empty.sqlite3")
    Database.open(path).close()
    assert admin("--db", path, "list") == (0, "no accounts\n", "")
    assert admin("--db", path, "bans") == (0, "no active bans\n", "")


def test_add_creates_the_database_and_an_admin_account(tmp_path):
    """add registers an account whose password verifies, creating the database first."""
    from wazzap.persist.passwords import argon2_hasher

    path = str(tmp_path / "new.sqlite3")
    status, out, err = admin(
        "--db", path, "add", "Root_1", "--admin", env={"WAZZAP_PASSWORD": "a long secret"}
    )
    assert (status, out, err) == (0, "Root_1 is registered as an admin\n", "")
    with Database.open(path) as db:
        account = db.get_account("root_1")
    assert account.is_admin
    assert argon2_hasher().verify(account.password_hash, "a long secret")


def test_add_refuses_bad_passwords_names_and_duplicates(path):
    """add refuses a short password, an invalid nickname and a registered one."""
    short = admin("--db", path, "add", "carol", env={"WAZZAP_PASSWORD": "short"})
    assert short[0] == 1 and "8 to 128 characters" in short[2]
    invalid = admin("--db", path, "add", "no way", env={"WAZZAP_PASSWORD": "long enough"})
    assert invalid[0] == 1 and "letters, digits" in invalid[2]
    taken = admin("--db", path, "add", "ALICE", env={"WAZZAP_PASSWORD": "long enough"})
    assert taken[0] == 1 and "already registered" in taken[2]


def test_add_without_a_password_says_how_to_give_one(path):
    """add with no terminal and no WAZZAP_PASSWORD fails with a hint, not a traceback."""
    status, out, err = admin("--db", path, "add", "carol")
    assert status == 1
    assert "set WAZZAP_PASSWORD" in err and "Traceback" not in err


def test_every_command_is_summed_up_in_a_sentence():
    """Each command in the help reads as a sentence, ending in a full stop."""
    from wazzap.admin import parser

    commands = next(action for action in parser()._actions if action.dest == "command")
    summaries = {choice.dest: choice.help for choice in commands._choices_actions}
    assert "who" in summaries
    assert [name for name, summary in summaries.items() if not summary.endswith(".")] == []
