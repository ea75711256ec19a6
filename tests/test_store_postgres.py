"""
The store on a real PostgreSQL (L{tests.servers.PostgresServer}): the
contract every backend keeps (L{tests.contract_store}), then what is
PostgreSQL's own: its schema table, the guard against another program's
database, several servers migrating a new database at once, the pool, and
one-line errors for a bad URL or a server that does not answer.
"""

import threading

import pytest
from twisted.internet.task import Clock

from tests.contract_store import *  # noqa: F401,F403 (the contract's tests run here)
from tests.doubles import SynchronousStore, ThreadedReactor, started_threads
from tests.servers import POSTGRES_PASSWORD, postgres_drop_connections, postgres_execute
from tests.support import free_port
from wazzap.core import events
from wazzap.core.rooms import LOBBY, room_key
from wazzap.persist import postgres
from wazzap.persist.history import LINE_ID_SERVER_BITS, HistoryLog
from wazzap.persist.store import STORE_THREADS, Store, StoreError, open_database


@pytest.fixture
def open_db(postgres_url):
    """
    Open connections to the test's database; all are closed at the end.
    """
    opened = []

    def open_one(create=True):
        opened.append(open_database(postgres_url, create=create))
        return opened[-1]

    yield open_one
    for database in opened:
        database.close()


@pytest.fixture
def db(open_db):
    return open_db()


def test_schema_is_marked_and_versioned(db, postgres_url):
    """A new database gets wazzap's schema table, at the current version."""
    assert db.schema_version() == postgres.SCHEMA_VERSION == len(postgres.MIGRATIONS)
    assert postgres_execute(postgres_url, "SELECT application_id, version FROM wazzap_schema") == [
        (postgres.APPLICATION_ID, postgres.SCHEMA_VERSION)
    ]


def test_the_path_has_no_password(db, postgres_server):
    """Messages name the database by a URL with the password left out."""
    assert POSTGRES_PASSWORD not in db.path
    assert db.path.startswith("postgresql://wazzap@127.0.0.1:%d/" % (postgres_server.port,))


def test_password_from_the_environment(postgres_server, postgres_url, monkeypatch):
    """Without a password in the URL, PGPASSWORD gives it, as libpq reads it."""
    url = postgres_url.replace(":" + POSTGRES_PASSWORD + "@", "@")
    monkeypatch.setenv("PGPASSWORD", POSTGRES_PASSWORD)
    with open_database(url) as database:
        assert database.create_account("alice", "hash", at=1)


def test_another_programs_database_is_refused(postgres_url):
    """A database with tables but no wazzap schema is refused, and left as it was."""
    postgres_execute(postgres_url, "CREATE TABLE theirs (x INTEGER)")
    with pytest.raises(StoreError, match="a PostgreSQL database, but not wazzap's"):
        open_database(postgres_url)
    assert postgres_execute(postgres_url, "SELECT to_regclass('accounts')") == [(None,)]


def test_a_newer_schema_is_refused(db, postgres_url):
    """A schema newer than this wazzap knows is refused with advice to upgrade."""
    postgres_execute(postgres_url, "UPDATE wazzap_schema SET version = version + 1")
    with pytest.raises(StoreError, match="newer than this wazzap knows"):
        open_database(postgres_url)


def test_without_create_an_empty_database_is_refused(postgres_url):
    """The admin command's reading commands do not make a schema in an empty database."""
    with pytest.raises(StoreError, match="no wazzap database at postgresql://"):
        open_database(postgres_url, create=False)
    assert postgres_execute(postgres_url, "SELECT to_regclass('wazzap_schema')") == [(None,)]


def test_servers_migrating_a_new_database_at_once(postgres_url):
    """Eight connections opening one new database at once leave one schema, made once."""
    start = threading.Barrier(8)
    opened, failures = [], []

    def open_one():
        try:
            start.wait(10)
            opened.append(open_database(postgres_url))
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert failures == [] and len(opened) == 8
        assert sum(database.created for database in opened) == 1
        assert postgres_execute(postgres_url, "SELECT version FROM wazzap_schema") == [
            (postgres.SCHEMA_VERSION,)
        ]
        opened[0].create_account("alice", "hash", at=1)
        assert opened[-1].get_account("alice").created_at == 1
    finally:
        for database in opened:
            database.close()


def test_memo_limits_hold_across_connections(db, open_db):
    """Servers leaving memos for one recipient at once never keep more than its limit."""
    db.create_account("alice", "hash", at=1)
    others = [open_db() for _ in range(4)]
    start = threading.Barrier(len(others))
    outcomes = []

    def leave(database, index):
        start.wait(10)
        for n in range(5):
            sender = "s%d-%d" % (index, n)
            outcomes.append(database.leave_memo(sender, "alice", "hi", "", n, 7, 5)[0])

    threads = [threading.Thread(target=leave, args=(d, i)) for i, d in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 20
    assert len(db.memos_for("alice")) == 7 == outcomes.count("kept")


@pytest.mark.parametrize(
    "url, reason",
    [
        ("postgresql://wazzap@127.0.0.1:%(free)d/x", "Connection refused"),
        ("postgresql://wazzap@127.0.0.1:port/x", 'invalid integer value "port"'),
        ("postgresql://wazzap:wrong@127.0.0.1:%(port)d/postgres", "password authentication failed"),
    ],
)
def test_open_errors_are_one_line(postgres_server, url, reason):
    """A bad URL, a server not there or a wrong password is one line naming the database."""
    url %= {"free": free_port(), "port": postgres_server.port}
    with pytest.raises(StoreError) as raised:
        open_database(url)
    message = str(raised.value)
    assert message.startswith("cannot open database postgresql://wazzap@127.0.0.1:")
    assert reason in message and "\n" not in message and "wrong" not in message


def test_store_over_postgres_runs_calls_in_order(postgres_url):
    """Through the Store, calls on PostgreSQL run in the order made, on the store's thread."""
    reactor = ThreadedReactor()
    threads = started_threads(reactor, STORE_THREADS, "wazzap-store")
    try:
        store = Store.open(postgres_url, threads)
        started = store.session_started("alice", "::1", 1)
        ended = started.addCallback(lambda session: store.session_ended(session, 2, "quit"))
        created = [store.create_account("user%d" % (i,), "hash", at=i) for i in range(5)]
        admin = store.set_admin("user4", True)
        found = store.get_account("USER4")
        closed = store.close()
        assert reactor.wait(found).is_admin
        assert [reactor.wait(d) for d in created] == [True] * 5
        assert reactor.wait(admin) is True and reactor.wait(ended) is True
        reactor.wait(closed)
        with pytest.raises(StoreError, match="closed"):
            reactor.wait(store.get_account("alice"))
    finally:
        reactor.wait(threads.stopService())
    with open_database(postgres_url) as database:
        assert database.last_seen("alice").logout_at == 2


def test_reads_survive_lost_connections_and_writes_fail_once(db, postgres_url):
    """After PostgreSQL drops the pool's connections, reads go on and a write fails in one line, once."""
    db.create_account("alice", "hash", at=1)
    postgres_drop_connections(postgres_url)
    assert db.get_account("alice").created_at == 1
    assert db.list_accounts()[0].nickname == "alice"
    db.get_account("alice")
    postgres_drop_connections(postgres_url)
    with pytest.raises(StoreError) as raised:
        db.set_admin("alice", True)
    assert str(raised.value).startswith("cannot write to database postgresql://")
    assert "\n" not in str(raised.value)
    assert db.set_admin("alice", True)


class PostgresSynchronousStore(SynchronousStore):
    """
    A L{SynchronousStore} over a database of the tests' PostgreSQL.
    """

    def __init__(self, url):
        self.database = open_database(url)


def test_two_servers_history_in_one_room_keeps_both(postgres_url):
    """Two servers recording one room on one database keep every line, with ids their own and in time order."""
    clock = Clock()
    clock.advance(1_800_000_000)
    stores = [PostgresSynchronousStore(postgres_url) for _ in range(2)]
    try:
        east, west = [HistoryLog.open(store, clock, [LOBBY], 7, 20) for store in stores]
        east.record("#mine", events.Said("carol", "red", "east's own room"))
        clock.advance(1)
        west = HistoryLog.open(stores[1], clock, [LOBBY], 7, 20)
        for index in range(3):
            east.record(LOBBY, events.Said("alice", "red", "east %d" % (index,)))
            west.record(LOBBY, events.Said("bob", "red", "west %d" % (index,)))
            clock.advance(0.01)
        clock.advance(1)
        ((count, lines),) = stores[0].database.room_lines([(room_key(LOBBY), 10, 0, None)])
        assert count == 6
        assert [events.unpack(line[2]).text for line in lines] == [
            "east 0", "west 0", "east 1", "west 1", "east 2", "west 2",
        ]
        assert len({line[0] % (1 << LINE_ID_SERVER_BITS) for line in lines}) == 2
        assert stores[1].database.room_lines([(room_key("#mine"), 10, 0, None)])[0][0] == 1
    finally:
        for store in stores:
            store.close()
