"""
Accounts, login history, bans, mutes, room history and offline messages, in
one SQLite file (the default) or in a PostgreSQL database that several
servers share.

A database is the plain synchronous API (L{wazzap.persist.sql.SqlDatabase},
over L{wazzap.persist.sqlite} or L{wazzap.persist.postgres}); the admin
command uses it directly.  L{Store} offers the server the same methods
returning Deferreds, run one at a time on a single worker thread, so the
reactor never waits for the disk or the network.  L{open_database} picks the
backend from C{--db}: a URL (C{postgresql://} or C{postgres://}) or a path.
"""

from twisted.internet import defer
from twisted.python.failure import Failure

from wazzap.persist.sql import (
    ACCOUNT,
    ADDRESS,
    APPLICATION_ID,
    BAN_KINDS,
    HISTORY_CHUNK_LINES,
    HISTORY_LIMIT,
    MEMO_KEPT,
    MEMO_RECIPIENT_FULL,
    MEMO_SENDER_FULL,
    MEMO_UNREGISTERED,
    MUTE_KINDS,
    NICKNAME,
    PRUNE_BATCH_ROWS,
    Ban,
    Memo,
    Mute,
    Session,
    StoreError,
)
from wazzap.persist.sqlite import (
    BUSY_TIMEOUT_SECONDS,
    DATABASE_FILE_NAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteDatabase as Database,
    default_db_path,
)

# What the rest of wazzap imports from here, wherever it is defined.
__all__ = [
    "ACCOUNT",
    "ADDRESS",
    "APPLICATION_ID",
    "BAN_KINDS",
    "BUSY_TIMEOUT_SECONDS",
    "DATABASE_FILE_NAME",
    "HISTORY_CHUNK_LINES",
    "HISTORY_LIMIT",
    "MEMO_KEPT",
    "MEMO_RECIPIENT_FULL",
    "MEMO_SENDER_FULL",
    "MEMO_UNREGISTERED",
    "MIGRATIONS",
    "MUTE_KINDS",
    "NICKNAME",
    "PRUNE_BATCH_ROWS",
    "SCHEMA_VERSION",
    "STORE_THREADS",
    "Ban",
    "Database",
    "Memo",
    "Mute",
    "Session",
    "Store",
    "StoreError",
    "default_db_path",
    "is_database_url",
    "open_database",
]

#: The store's one thread (a L{wazzap.threads.ThreadPoolService} of this
#: size), whichever the backend: see L{Store}.
STORE_THREADS = 1
#: What C{--db} starts with to name a PostgreSQL database rather than a file.
DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(target):
    """
    Whether C{--db}'s C{target} names a PostgreSQL server rather than a SQLite file.
    """
    return isinstance(target, str) and target.startswith(DATABASE_URL_SCHEMES)


def open_database(target=None, create=True):
    """
    Open the database C{target} names, bringing its schema up to date: a
    PostgreSQL URL, or a SQLite file (L{Database.open} says which paths).
    Without C{create}, a database with no wazzap schema yet is refused
    rather than made.  Raise L{StoreError} if it cannot be used.
    """
    if is_database_url(target):
        # Imported here: psycopg costs a server on SQLite nothing.
        from wazzap.persist.postgres import PostgresDatabase

        return PostgresDatabase.open(target, create)
    return Database.open(target, create)


def _on_store_thread(name):
    """
    A L{Store} method running L{Database}'s method C{name} on the store's thread.
    """

    def method(self, *args, **kwargs):
        return self._run(name, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = "L{Database.%s} on the store's thread; returns a Deferred." % (name,)
    return method


class Store:
    """
    A database's methods returning Deferreds, run in order on one thread.

    The thread is a L{wazzap.threads.ThreadPoolService} of
    L{STORE_THREADS}, rather than L{twisted.enterprise.adbapi}: the same
    database code serves the admin command and the server, and one thread
    means calls that run in the order they were made, which the callers
    count on (a session's end after its start, an account's admin flag
    after its creation, history batches in the order of their line ids),
    and never wait for one another's locks.  On PostgreSQL a call is a
    round trip of a fraction of a millisecond on a local network, so one
    thread serves thousands a second (see L{wazzap.persist.postgres}).

    L{close} waits for the calls in flight, then closes the database on
    that thread; the service stops the thread after its users have stopped.
    """

    def __init__(self, database, threads):
        self.database = database
        self._threads = threads
        self._closing = None
        #: Calls made whose callers have not yet had the result.
        self._in_flight = 0

    @classmethod
    def open(cls, path, threads):
        """
        L{open_database} C{path} (a file or a URL), synchronously (it is
        meant for start-up, before the reactor runs), and wrap it; raise
        L{StoreError}.
        """
        return cls(open_database(path), threads)

    @property
    def path(self):
        return self.database.path

    def _run(self, name, *args, **kwargs):
        if self._closing is not None and not self._in_flight:
            return defer.fail(StoreError("database %s is closed" % (self.path,)))
        self._in_flight += 1
        caller = defer.Deferred()
        self._threads.run(getattr(self.database, name), *args, **kwargs).addBoth(
            self._deliver, caller
        )
        return caller

    def _deliver(self, result, caller):
        # The caller's callbacks run before the call stops counting as in
        # flight: a write they make in turn (the end of a session once its
        # start is recorded, an account's admin flag once it is created)
        # still gets in while the store is closing.
        if isinstance(result, Failure):
            caller.errback(result)
        else:
            caller.callback(result)
        self._in_flight -= 1
        if self._closing is not None and not self._in_flight:
            self._close_database()

    def close(self):
        """
        Let the calls in flight finish, with the calls their callers make
        when they get the results; then refuse new calls and close the
        database.  Return a Deferred that fires when all that is done;
        calling it again returns another for the same moment.
        """
        if self._closing is None:
            self._closing = _Outcome()
            if not self._in_flight:
                self._close_database()
        return self._closing.observe()

    def _close_database(self):
        self._threads.run(self.database.close).addBoth(self._closing.fire)

    get_account = _on_store_thread("get_account")
    create_account = _on_store_thread("create_account")
    set_password = _on_store_thread("set_password")
    delete_account = _on_store_thread("delete_account")
    set_admin = _on_store_thread("set_admin")
    list_accounts = _on_store_thread("list_accounts")
    session_started = _on_store_thread("session_started")
    session_ended = _on_store_thread("session_ended")
    close_dangling_sessions = _on_store_thread("close_dangling_sessions")
    prune_sessions = _on_store_thread("prune_sessions")
    last_seen = _on_store_thread("last_seen")
    history = _on_store_thread("history")
    add_ban = _on_store_thread("add_ban")
    remove_ban = _on_store_thread("remove_ban")
    active_bans = _on_store_thread("active_bans")
    find_ban = _on_store_thread("find_ban")
    add_mute = _on_store_thread("add_mute")
    remove_mute = _on_store_thread("remove_mute")
    active_mutes = _on_store_thread("active_mutes")
    write_history = _on_store_thread("write_history")
    room_lines = _on_store_thread("room_lines")
    read_positions = _on_store_thread("read_positions")
    prune_history_before = _on_store_thread("prune_history_before")
    crowded_rooms = _on_store_thread("crowded_rooms")
    prune_room_lines = _on_store_thread("prune_room_lines")
    leave_memo = _on_store_thread("leave_memo")
    memos_for = _on_store_thread("memos_for")
    memos_from = _on_store_thread("memos_from")
    delete_memos = _on_store_thread("delete_memos")
    take_back_memo = _on_store_thread("take_back_memo")


class _Outcome:
    """
    The result of something that happens once, for any number of observers.
    """

    def __init__(self):
        self._observers = []
        self._fired = False
        self._result = None

    def fire(self, result):
        self._fired, self._result = True, result
        observers, self._observers = self._observers, []
        for observer in observers:
            self._deliver(observer)

    def observe(self):
        observer = defer.Deferred()
        if self._fired:
            self._deliver(observer)
        else:
            self._observers.append(observer)
        return observer

    def _deliver(self, observer):
        if isinstance(self._result, Failure):
            observer.errback(self._result)
        else:
            observer.callback(self._result)
