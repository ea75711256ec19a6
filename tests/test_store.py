"""
Tests for L{wazzap.persist.store}: the Database on real SQLite files in a temporary
directory, and the Store's worker thread with a reactor stand-in that only
carries results back to the test's thread.
"""

import os
import sqlite3
import tempfile
import threading

import pytest
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.python.failure import Failure

from tests.doubles import ThreadedReactor, started_threads
from wazzap.core.records import Account
from wazzap.failures import log_failure
from wazzap.persist import store
from wazzap.persist.store import (
    ADDRESS,
    APPLICATION_ID,
    NICKNAME,
    SCHEMA_VERSION,
    STORE_THREADS,
    Ban,
    Database,
    Session,
    Store,
    StoreError,
    default_db_path,
)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "wazzap.sqlite3")


@pytest.fixture
def db(path):
    database = Database.open(path)
    yield database
    database.close()


# Opening and the schema


def test_creates_schema(path):
    """A new file gets the current schema version, wazzap's application id and WAL."""
    Database.open(path).close()
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    finally:
        connection.close()
    assert {"accounts", "sessions", "bans"} <= tables


def test_migrations_are_ordered_additions():
    """Every schema version is one entry of statements in MIGRATIONS."""
    assert SCHEMA_VERSION == len(store.MIGRATIONS) >= 1
    assert all(isinstance(statements, tuple) for statements in store.MIGRATIONS)


def test_reopen_keeps_data(path):
    """What one connection wrote is there when the file is opened again."""
    with Database.open(path) as first:
        first.create_account("Alice", "hash", at=10)
        first.add_ban("10.0.0.1", ADDRESS, None, "spam", "Alice", 11)
    with Database.open(path) as second:
        assert second.get_account("alice") == Account("Alice", "hash", False, 10)
        assert second.schema_version() == SCHEMA_VERSION
        assert [b.target for b in second.active_bans(12)] == ["10.0.0.1"]


def test_newer_schema_refused(path):
    """A file from a newer wazzap is refused rather than misread."""
    Database.open(path).close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = %d" % (SCHEMA_VERSION + 1,))
    connection.close()
    with pytest.raises(StoreError, match="newer"):
        Database.open(path)


def test_foreign_sqlite_file_refused(path):
    """Another program's SQLite database is refused instead of having tables added."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE recipes (name TEXT)")
    connection.commit()
    connection.close()
    with pytest.raises(StoreError, match="not wazzap's"):
        Database.open(path)


def test_missing_directory(tmp_path):
    """A path in a directory that does not exist is a clear error, and nothing is created."""
    path = tmp_path / "no" / "such" / "wazzap.sqlite3"
    with pytest.raises(StoreError, match="directory .* does not exist") as raised:
        Database.open(path)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "no").exists()


def test_directory_as_path(tmp_path):
    """A directory given as the database is a clear error."""
    with pytest.raises(StoreError, match="is a directory"):
        Database.open(tmp_path)


def test_missing_file_without_create(path):
    """With create=False a missing file is an error, not a new database."""
    with pytest.raises(StoreError, match="no database at"):
        Database.open(path, create=False)
    assert not os.path.exists(path)


def test_empty_file_refused(path):
    """An existing empty file is refused in one line saying what to do, and left as it is."""
    open(path, "wb").close()
    with pytest.raises(StoreError, match="is an empty file: restore it from a backup") as raised:
        Database.open(path)
    assert "\n" not in str(raised.value)
    assert os.path.getsize(path) == 0


def test_open_says_whether_it_created_the_file(path):
    """A missing file is created, and the Database says so; an existing one is only opened."""
    with Database.open(path) as database:
        assert database.created
    with Database.open(path) as database:
        assert not database.created


def test_garbage_file(path):
    """A file of garbage is reported as not a SQLite database."""
    with open(path, "wb") as f:
        f.write(os.urandom(8192))
    with pytest.raises(StoreError, match="not a SQLite database") as raised:
        Database.open(path)
    assert path in str(raised.value)
    assert "\n" not in str(raised.value)


def test_damaged_file(path):
    """A SQLite file with a damaged page fails the check made at open."""
    with Database.open(path) as database:
        for i in range(200):
            database.session_started("user%d" % (i,), "10.0.0.%d" % (i % 250,), i)
    with open(path, "r+b") as f:
        f.seek(4096 * 2)
        f.write(b"\xa5" * 4096)
    with pytest.raises(StoreError, match="corrupt") as raised:
        Database.open(path)
    assert "\n" not in str(raised.value)


def _as_nobody(function):
    """
    Run C{function} in a child process without root's privileges, which
    ignore file permissions; return what it returned or raised, as a string.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                result = "returned %r" % (function(),)
            except Exception as e:
                result = "%s: %s" % (type(e).__name__, e)
            os.write(writer, result.encode("utf-8"))
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        result = pipe.read().decode("utf-8")
    _, status = os.waitpid(pid, 0)
    assert status == 0, "the unprivileged child failed"
    return result


def test_read_only_file():
    """A read-only file in a read-only directory is refused with a clear message."""
    # Not tmp_path: pytest's directories are private to root, and as root the
    # open has to happen in a child that has given up root's privileges.
    directory = tempfile.mkdtemp(prefix="wazzap-test-")
    path = os.path.join(directory, "wazzap.sqlite3")
    try:
        with Database.open(path) as database:
            database.create_account("alice", "hash", at=1)
        os.chmod(path, 0o444)
        os.chmod(directory, 0o555)

        def open_it():
            Database.open(path).close()

        if os.geteuid() == 0:
            outcome = _as_nobody(open_it)
        else:
            try:
                open_it()
                outcome = "returned None"
            except StoreError as e:
                outcome = "StoreError: %s" % (e,)
        assert outcome.startswith("StoreError: ")
        assert "read-only" in outcome and path in outcome
    finally:
        os.chmod(directory, 0o755)
        os.chmod(path, 0o644)
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))
        os.rmdir(directory)


def test_default_path_xdg(monkeypatch, tmp_path):
    """The default path follows XDG_DATA_HOME when it is absolute."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_path() == str(tmp_path / "data" / "wazzap" / "wazzap.sqlite3")


def test_default_path_home(monkeypatch, tmp_path):
    """Without an absolute XDG_DATA_HOME the default path is under ~/.local/share."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert default_db_path() == str(tmp_path / ".local" / "share" / "wazzap" / "wazzap.sqlite3")


def test_default_path_directory_created(monkeypatch, tmp_path):
    """Opening the default path creates its directory; no other path gets that."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    Database.open(None).close()
    assert os.path.isfile(default_db_path())


# Accounts


def test_create_and_get_account(db):
    """An account is found under any case and keeps the nickname as typed."""
    assert db.create_account("Alice", "hash", at=5)
    assert db.get_account("ALICE") == Account("Alice", "hash", False, 5)
    assert db.get_account("bob") is None


def test_create_account_taken(db):
    """A nickname taken in another case cannot be created again."""
    assert db.create_account("Alice", "one", at=1)
    assert not db.create_account("alice", "two", at=2)
    assert db.get_account("alice").password_hash == "one"


def test_create_account_default_time(db):
    """Without a time the account is created now."""
    db.create_account("alice", "hash")
    assert db.get_account("alice").created_at > 1_600_000_000


def test_set_password(db):
    """The password hash can be replaced, for existing accounts only."""
    db.create_account("Alice", "old", at=1)
    assert db.set_password("aLiCe", "new")
    assert db.get_account("alice").password_hash == "new"
    assert not db.set_password("bob", "new")


def test_delete_account(db):
    """A deleted account is gone; deleting it again says so."""
    db.create_account("Alice", "hash", at=1)
    assert db.delete_account("ALICE")
    assert db.get_account("alice") is None
    assert not db.delete_account("alice")


def test_set_admin(db):
    """The admin flag can be set and cleared, for existing accounts only."""
    db.create_account("Alice", "hash", at=1)
    assert db.set_admin("alice", True)
    assert db.get_account("Alice").is_admin is True
    assert db.set_admin("ALICE", False)
    assert db.get_account("Alice").is_admin is False
    assert not db.set_admin("bob", True)


def test_list_accounts(db):
    """Accounts are listed case-insensitively by nickname."""
    db.create_account("bob", "b", at=2)
    db.create_account("Alice", "a", at=1)
    db.create_account("carol", "c", at=3)
    db.set_admin("carol", True)
    assert db.list_accounts() == [
        Account("Alice", "a", False, 1),
        Account("bob", "b", False, 2),
        Account("carol", "c", True, 3),
    ]


# Sessions


def test_sessions(db):
    """A session is recorded at login and closed once at logout."""
    first = db.session_started("Alice", "127.0.0.1", 100)
    assert db.last_seen("alice") == Session("Alice", "127.0.0.1", 100, None, None)
    assert db.session_ended(first, 160, "quit")
    assert not db.session_ended(first, 170, "again")
    assert db.last_seen("ALICE") == Session("Alice", "127.0.0.1", 100, 160, "quit")
    assert db.last_seen("bob") is None


def test_history(db):
    """History is newest first, limited, and only the nickname's own."""
    for i in range(5):
        session = db.session_started("alice" if i % 2 else "Alice", "::%d" % (i,), 10 * i)
        db.session_ended(session, 10 * i + 5, "quit")
    db.session_started("bob", "::9", 15)
    history = db.history("ALICE")
    assert [s.login_at for s in history] == [40, 30, 20, 10, 0]
    assert [s.nickname for s in history[:2]] == ["Alice", "alice"]
    assert [s.login_at for s in db.history("alice", limit=2)] == [40, 30]
    assert db.history("nobody") == []


def test_close_dangling_sessions(db):
    """Sessions a crashed server left open are closed; ended ones are untouched."""
    ended = db.session_started("alice", "::1", 1)
    db.session_ended(ended, 2, "quit")
    db.session_started("bob", "::2", 3)
    db.session_started("carol", "::3", 4)
    assert db.close_dangling_sessions(100, "server stopped") == 2
    assert db.last_seen("bob") == Session("bob", "::2", 3, 100, "server stopped")
    assert db.last_seen("alice").reason == "quit"
    assert db.close_dangling_sessions(200, "server stopped") == 0


def ended_sessions(db, count, login_at, duration=10):
    """Record C{count} sessions starting at C{login_at}, each ended C{duration} later."""
    for _ in range(count):
        db.session_ended(db.session_started("alice", "::1", login_at), login_at + duration, "quit")


def prune_all(db, ended_before, batch):
    """Prune in batches as the server does; return the rows deleted and the calls made."""
    deleted, calls, after_id = 0, 0, 0
    while after_id is not None:
        count, after_id = db.prune_sessions(ended_before, after_id, batch=batch)
        deleted, calls = deleted + count, calls + 1
    return deleted, calls


def test_prune_sessions_deletes_only_those_ended_before(db):
    """Pruning deletes sessions that ended before the cut-off, and keeps later and open ones."""
    still_open = db.session_started("bob", "::2", 5)
    ended_sessions(db, 7, login_at=10)
    ended_sessions(db, 3, login_at=100)
    assert prune_all(db, ended_before=50, batch=3) == (7, 3)
    assert [s.login_at for s in db.history("alice")] == [100, 100, 100]
    assert db.last_seen("bob").logout_at is None
    assert db.session_ended(still_open, 6, "quit")


def test_prune_sessions_stops_at_recent_ones(db):
    """Pruning stops at the first batch holding a session started after the cut-off."""
    ended_sessions(db, 4, login_at=10)
    ended_sessions(db, 100, login_at=100)
    assert prune_all(db, ended_before=50, batch=5) == (4, 1)
    assert len(db.history("alice", limit=1000)) == 100


def test_prune_sessions_of_an_empty_history(db):
    """Pruning an empty history deletes nothing, in one call."""
    assert prune_all(db, ended_before=50, batch=5) == (0, 1)


# Bans


def test_ban_expires(db):
    """A timed ban is found until it ends, and then no longer."""
    db.add_ban("Mallory", NICKNAME, 100, "spam", "alice", 10)
    ban = Ban("Mallory", NICKNAME, 100, "spam", "alice", 10)
    assert db.find_ban("mallory", "10.0.0.1", 99.5) == ban
    assert db.active_bans(99.5) == [ban]
    assert db.find_ban("mallory", "10.0.0.1", 100) is None
    assert db.active_bans(100) == []


def test_permanent_address_ban(db):
    """An address ban with no end is found for anyone from that address."""
    db.add_ban("2001:DB8::1", ADDRESS, None, "abuse", None, 10)
    assert db.find_ban("anyone", "2001:db8::1", 1e12).target == "2001:DB8::1"
    assert db.find_ban(None, "2001:db8::1", 1e12).until is None
    assert db.find_ban("anyone", "2001:db8::2", 1e12) is None


def test_ban_kinds_do_not_mix(db):
    """A nickname ban does not match an address of the same text, nor the reverse."""
    db.add_ban("alice", NICKNAME, None, "", None, 1)
    db.add_ban("10.0.0.1", ADDRESS, None, "", None, 1)
    assert db.find_ban("bob", "alice", 2) is None
    assert db.find_ban("10.0.0.1", "10.0.0.2", 2) is None


def test_find_ban_prefers_longest(db):
    """When both the nickname and the address are banned, the longer ban is reported."""
    db.add_ban("mallory", NICKNAME, 500, "nick", None, 1)
    db.add_ban("10.0.0.1", ADDRESS, 900, "address", None, 1)
    assert db.find_ban("mallory", "10.0.0.1", 2).reason == "address"
    db.add_ban("MALLORY", NICKNAME, None, "for ever", None, 3)
    assert db.find_ban("mallory", "10.0.0.1", 4).reason == "for ever"


def test_ban_replaced(db):
    """Banning a target again replaces its ban."""
    db.add_ban("mallory", NICKNAME, None, "first", "alice", 1)
    db.add_ban("Mallory", NICKNAME, 50, "second", "bob", 2)
    assert db.active_bans(3) == [Ban("Mallory", NICKNAME, 50, "second", "bob", 2)]


def test_remove_ban(db):
    """A ban can be lifted once, in any case."""
    db.add_ban("mallory", NICKNAME, None, "", None, 1)
    assert db.remove_ban("MALLORY")
    assert db.find_ban("mallory", "::1", 2) is None
    assert not db.remove_ban("mallory")


def test_bad_ban_kind(db):
    """A ban on anything but a nickname or an address is a programming error."""
    with pytest.raises(ValueError):
        db.add_ban("x", "planet", None, "", None, 1)


def test_write_to_closed_database(db):
    """Using a closed Database is a StoreError, not a bare sqlite3 error."""
    db.close()
    with pytest.raises(StoreError):
        db.get_account("alice")


@pytest.mark.parametrize(
    "sqlite_message, reason",
    [
        ("database or disk is full", "the disk is full"),
        ("database is locked", "locked by another process"),
        ("disk I/O error", "disk I/O error"),
    ],
)
def test_write_errors_say_why_in_words(db, monkeypatch, sqlite_message, reason):
    """A failed write is a one-line StoreError naming the file and the reason in words."""

    class FailingConnection:
        def execute(self, *args):
            raise sqlite3.OperationalError(sqlite_message)

        def close(self):
            pass

    monkeypatch.setattr(db, "_connection", FailingConnection())
    with pytest.raises(StoreError) as raised:
        db.create_account("alice", "hash")
    message = str(raised.value)
    assert message.startswith("cannot write to database %s: " % (db.path,))
    assert reason in message and "\n" not in message


def test_a_full_disk_is_one_line():
    """A write that fills the database is logged as one error line saying why, with no traceback."""
    database = Database.open(":memory:")
    execute = database._connection.execute
    execute("PRAGMA max_page_count = %d" % (execute("PRAGMA page_count").fetchone()[0] + 1,))
    events = []
    log = Logger(observer=events.append)
    try:
        for i in range(1000):
            database.create_account("user%d" % (i,), "x" * 1000)
    except StoreError:
        log_failure(Failure(), log, "/register")
    [event] = events
    assert event["log_level"] == LogLevel.error
    assert "log_failure" not in event
    text = formatEvent(event)
    assert text == "/register failed: cannot write to database :memory:: the disk is full"


def test_other_failures_keep_their_traceback():
    """A failure that is not the database's is a bug, logged with its traceback."""
    events = []
    try:
        1 / 0
    except ZeroDivisionError:
        log_failure(Failure(), Logger(observer=events.append), "serving alice")
    [event] = events
    assert event["log_level"] == LogLevel.critical
    assert event["log_failure"].check(ZeroDivisionError)


# The Store's thread


@pytest.fixture
def reactor():
    return ThreadedReactor()


@pytest.fixture
def threads(reactor):
    threads = started_threads(reactor, STORE_THREADS, "wazzap-store")
    yield threads
    if threads.running:
        reactor.wait(threads.stopService())


def test_store_runs_on_one_thread(path, reactor, threads):
    """Calls run in order on a single worker thread, not the caller's."""
    async_store = Store.open(path, threads)
    names = set()
    real_get = async_store.database.get_account

    def get_account(nickname):
        names.add(threading.current_thread().name)
        return real_get(nickname)

    async_store.database.get_account = get_account
    created = [async_store.create_account("user%d" % (i,), "hash", at=i) for i in range(5)]
    found = async_store.get_account("USER4")
    assert reactor.wait(found) == Account("user4", "hash", False, 4)
    assert [reactor.wait(d) for d in created] == [True] * 5
    assert len(names) == 1 and threading.current_thread().name not in names
    reactor.wait(async_store.close())


def test_store_errors_arrive_as_failures(path, reactor, threads):
    """A Database exception reaches the Deferred's errback."""
    async_store = Store.open(path, threads)
    with pytest.raises(ValueError):
        reactor.wait(async_store.add_ban("x", "planet", None, "", None, 1))
    reactor.wait(async_store.close())


def test_store_close(path, reactor, threads):
    """Close finishes queued writes, then closes the database and refuses later calls."""
    async_store = Store.open(path, threads)
    reactor.wait(async_store.session_started("alice", "::1", 1))
    written = async_store.create_account("alice", "hash", at=2)
    first, second = async_store.close(), async_store.close()
    assert reactor.wait(written) is True
    reactor.wait(first)
    reactor.wait(second)
    reactor.wait(async_store.close())
    with pytest.raises(StoreError, match="closed"):
        reactor.wait(async_store.get_account("alice"))
    with Database.open(path) as database:
        assert database.get_account("alice").created_at == 2


def test_store_close_lets_in_the_writes_that_follow_a_call_in_flight(path, reactor, threads):
    """A write made by the callback of a call in flight still gets in while the store closes."""
    async_store = Store.open(path, threads)
    started = async_store.session_started("alice", "::1", 1)
    ended = started.addCallback(lambda session: async_store.session_ended(session, 2, "quit"))
    closed = async_store.close()
    assert reactor.wait(ended) is True
    reactor.wait(closed)
    with pytest.raises(StoreError, match="closed"):
        reactor.wait(async_store.get_account("alice"))
    with Database.open(path) as database:
        assert database.last_seen("alice").logout_at == 2


def test_store_close_unused(path, reactor, threads):
    """A Store that was never used closes, and refuses calls after."""
    async_store = Store.open(path, threads)
    reactor.wait(async_store.close())
    with pytest.raises(StoreError, match="closed"):
        reactor.wait(async_store.list_accounts())


def test_store_open_error(tmp_path, threads):
    """Store.open raises the Database's StoreError at once."""
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(str(tmp_path / "missing" / "db.sqlite3"), threads)


def test_two_connections(path):
    """The admin command's writes are seen by a server holding the file open."""
    with Database.open(path) as server, Database.open(path, create=False) as admin:
        server.create_account("alice", "hash", at=1)
        assert admin.set_admin("alice", True)
        assert server.get_account("alice").is_admin
