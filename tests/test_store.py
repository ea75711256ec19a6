"""
Tests for L{wazzap.persist.store}: the SQLite Database on real files in a
temporary directory (the store's contract, L{tests.contract_store}, and what
is SQLite's own), and the Store's worker thread with a reactor stand-in that
only carries results back to the test's thread.
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
    APPLICATION_ID,
    SCHEMA_VERSION,
    STORE_THREADS,
    Database,
    Store,
    StoreError,
    default_db_path,
)
from tests.contract_store import *  # noqa: F401,F403 (the contract's tests run here)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "wazzap.sqlite3")


@pytest.fixture
def db(path):
    database = Database.open(path)
    yield database
    database.close()


@pytest.fixture
def open_db(path):
    """
    Open more connections to the test's file; all are closed at the end.
    """
    opened = []

    def open_one(create=True):
        opened.append(Database.open(path, create=create))
        return opened[-1]

    yield open_one
    for database in opened:
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
