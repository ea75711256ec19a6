"""
The store in one SQLite file: the embedded default (C{--db PATH}).

Every write is one statement in autocommit mode, in a write-ahead log with
C{synchronous=NORMAL}: it is in the operating system's hands before the
method returns, so a server killed outright (SIGKILL) loses nothing it
acknowledged.  FULL would also survive a power cut, at one fsync per write:
with a session row written at every login, that capped joins at a few
hundred a second, and WAL with NORMAL is SQLite's own advice for this mix.
Room history is the exception to one statement a write: its lines come in
batches, one transaction each (L{SqlDatabase.write_history}), and a SIGKILL
loses at most the batch not yet written.  The writes of several statements
(leaving an offline message: checks, then the insert; trimming a room's
history) are one transaction too, committed before they return.
"""

import os
import sqlite3
from contextlib import contextmanager

from wazzap.persist.sql import APPLICATION_ID, SqlDatabase, StoreError

DATABASE_FILE_NAME = "wazzap.sqlite3"
#: How long a statement waits for another process (say the admin command)
#: holding the write lock before failing.
BUSY_TIMEOUT_SECONDS = 5

# MIGRATIONS[i] takes the schema from version i to version i + 1 (PRAGMA
# user_version).  Released entries never change: a new version is a new entry
# at the end, applied to existing files the next time they are opened.
MIGRATIONS = [
    (
        """
        CREATE TABLE accounts (
            nickname_key TEXT PRIMARY KEY,
            nickname TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            nickname_key TEXT NOT NULL,
            nickname TEXT NOT NULL,
            address TEXT NOT NULL,
            login_at REAL NOT NULL,
            logout_at REAL,
            reason TEXT
        )
        """,
        "CREATE INDEX sessions_by_nickname ON sessions (nickname_key, login_at)",
        "CREATE INDEX open_sessions ON sessions (id) WHERE logout_at IS NULL",
        """
        CREATE TABLE bans (
            target_key TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('nickname', 'address')),
            until REAL,
            reason TEXT NOT NULL,
            banned_by TEXT,
            banned_at REAL NOT NULL
        )
        """,
    ),
    (
        # Mutes outlive the connection and the server: an account or a
        # nickname (one key space: a registered nickname is its account's key).
        """
        CREATE TABLE mutes (
            target_key TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('account', 'nickname')),
            until REAL,
            muted_by TEXT,
            muted_at REAL NOT NULL
        )
        """,
    ),
    (
        # What rooms said (wazzap.persist.history), in chunks: the lines of
        # a room written in one batch, as a list of (id, unix time, event
        # packed as wazzap.core.events.pack makes it), pickled (see _dumps).
        # A row per batch rather than per line keeps the cost of history
        # off the chat's busiest rooms.  Ids grow with time across every
        # room, so a read position is one id.
        """
        CREATE TABLE room_history (
            room_key TEXT NOT NULL,
            first_id INTEGER NOT NULL,
            last_id INTEGER NOT NULL,
            last_at REAL NOT NULL,
            lines INTEGER NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (room_key, first_id)
        )
        """,
        # The rooms a registered user was in when they last left, and the
        # last line each had then: what "since you left" starts after.
        """
        CREATE TABLE read_positions (
            account_key TEXT NOT NULL,
            ordinal INTEGER NOT NULL,
            room TEXT NOT NULL,
            last_line INTEGER NOT NULL,
            reading INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (account_key, ordinal)
        )
        """,
        # A deleted account's read positions go with it: a new owner of
        # the nickname starts afresh.
        """
        CREATE TRIGGER read_positions_go_with_their_account AFTER DELETE ON accounts
        BEGIN
            DELETE FROM read_positions WHERE account_key = OLD.nickname_key;
        END
        """,
    ),
    (
        # Private messages waiting for a registered user who was offline
        # (wazzap.persist.memos), oldest first by id.  A sender is known by
        # nickname: guests may leave messages too.
        """
        CREATE TABLE memos (
            id INTEGER PRIMARY KEY,
            recipient_key TEXT NOT NULL,
            recipient TEXT NOT NULL,
            sender_key TEXT NOT NULL,
            sender TEXT NOT NULL,
            text TEXT NOT NULL,
            style TEXT NOT NULL DEFAULT '',
            sent_at REAL NOT NULL
        )
        """,
        "CREATE INDEX memos_by_recipient ON memos (recipient_key, sender_key)",
        "CREATE INDEX memos_by_sender ON memos (sender_key)",
        # Whatever deletes an account (/unregister, the admin command, a
        # future path) takes the messages waiting for it along, in the same
        # statement: a new owner of the nickname never reads them.
        """
        CREATE TRIGGER memos_go_with_their_account AFTER DELETE ON accounts
        BEGIN
            DELETE FROM memos WHERE recipient_key = OLD.nickname_key;
        END
        """,
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path():
    """
    Where the database lives unless told otherwise:
    C{$XDG_DATA_HOME/wazzap/wazzap.sqlite3}, or under C{~/.local/share} when
    that is unset or not absolute (as the XDG specification asks).
    """
    data_home = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data_home):
        data_home = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "wazzap", DATABASE_FILE_NAME)


def _check_access(path, create):
    """
    Raise L{StoreError} for the problems the filesystem can tell us about
    before SQLite gives a vaguer message for them.
    """
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        raise StoreError("database %s is a directory, not a file" % (path,))
    if not os.path.isdir(parent):
        raise StoreError("cannot open database %s: directory %s does not exist" % (path, parent))
    if os.path.exists(path):
        if os.path.getsize(path) == 0:
            # SQLite would take an empty file for a new database and every
            # account, admin and ban would vanish without a word: only a
            # missing file is created.
            raise StoreError(
                "database %s is an empty file: restore it from a backup, "
                "or delete it to start a new database" % (path,)
            )
        if not os.access(path, os.R_OK):
            raise StoreError("cannot open database %s: the file is not readable" % (path,))
        if not os.access(path, os.W_OK):
            raise StoreError("cannot open database %s: the file is read-only" % (path,))
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(
                "cannot open database %s: directory %s is not writable "
                "(SQLite keeps its journal next to the database)" % (path, parent)
            )
    elif not create:
        raise StoreError("no database at %s" % (path,))
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(
            "cannot create database %s: directory %s is not writable" % (path, parent)
        )


def _describe(error):
    """
    A short explanation of an sqlite3 error for a StoreError message.
    """
    text = str(error)
    if "readonly" in text:
        return "the file is read-only"
    if "not a database" in text or "malformed" in text:
        return "not a SQLite database, or corrupt (%s)" % (text,)
    if "locked" in text or "busy" in text:
        return "locked by another process for more than %d seconds" % (BUSY_TIMEOUT_SECONDS,)
    if "full" in text:
        return "the disk is full"
    if "disk I/O" in text:
        return "the disk failed to read or write (disk I/O error)"
    if "closed" in text:
        return "the database is closed"
    return text


class SqliteDatabase(SqlDatabase):
    """
    The store's synchronous API over one sqlite3 connection.

    Not safe for concurrent use: the admin command uses it from its only
    thread, and L{wazzap.persist.store.Store} from its single worker thread.
    """

    def __init__(self, connection, path, created=False):
        SqlDatabase.__init__(self, path, created)
        self._connection = connection

    @classmethod
    def open(cls, path=None, create=True):
        """
        Open (and, with C{create}, create) the database at C{path}, bringing
        its schema up to date.  C{None} or L{default_db_path} is the default
        location, whose directory is created if missing; C{":memory:"} is a
        private in-memory database.  Raise L{StoreError} if it cannot be used.
        """
        default = os.path.abspath(default_db_path())
        if path is None:
            path = default
        path = os.fspath(path)
        if path != ":memory:":
            path = os.path.abspath(os.path.expanduser(path))
            if path == default and create:
                try:
                    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                except OSError as e:
                    raise StoreError("cannot create the directory for %s: %s" % (path, e.strerror))
            _check_access(path, create)
        created = path == ":memory:" or not os.path.exists(path)
        try:
            # Autocommit (isolation_level=None): each write is committed by
            # the statement itself; the migration opens its own transaction.
            connection = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as e:
            raise StoreError("cannot open database %s: %s" % (path, _describe(e)))
        database = cls(connection, path, created)
        try:
            database._prepare()
        except sqlite3.Error as e:
            connection.close()
            raise StoreError("cannot open database %s: %s" % (path, _describe(e)))
        except BaseException:
            connection.close()
            raise
        return database

    def _prepare(self):
        execute = self._connection.execute
        # quick_check reads every page, so damage is reported at start-up
        # rather than in the middle of somebody's login.
        problems = [row[0] for row in execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise StoreError(
                "database %s is corrupt: %s" % (self.path, "; ".join(problems[:3]))
            )
        version = execute("PRAGMA user_version").fetchone()[0]
        application_id = execute("PRAGMA application_id").fetchone()[0]
        if version == 0:
            if execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreError("%s is a SQLite database, but not wazzap's" % (self.path,))
        elif application_id != APPLICATION_ID:
            raise StoreError("%s is a SQLite database, but not wazzap's" % (self.path,))
        elif version > SCHEMA_VERSION:
            raise StoreError(
                "database %s has schema version %d, newer than this wazzap knows (%d): "
                "upgrade wazzap" % (self.path, version, SCHEMA_VERSION)
            )
        # WAL lets the admin command read and write while the server runs.
        execute("PRAGMA journal_mode = WAL")
        execute("PRAGMA synchronous = NORMAL")
        # Accounts and bans are a small working set, and session rows are
        # written, not read back: a 512 KiB page cache instead of SQLite's 2 MiB
        # keeps the server's memory for the people connected.
        execute("PRAGMA cache_size = -512")
        if version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self):
        execute = self._connection.execute
        # IMMEDIATE takes the write lock first, so two processes opening a new
        # file at once cannot both apply the same migration.
        execute("BEGIN IMMEDIATE")
        try:
            version = execute("PRAGMA user_version").fetchone()[0]
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    execute(statement)
            execute("PRAGMA application_id = %d" % (APPLICATION_ID,))
            execute("PRAGMA user_version = %d" % (SCHEMA_VERSION,))
            execute("COMMIT")
        except BaseException:
            execute("ROLLBACK")
            raise

    def schema_version(self):
        return self._query("PRAGMA user_version")[0][0]

    def close(self):
        """
        Close the connection; calling it again does nothing.
        """
        self._connection.close()

    def _statement(self, sql, parameters=(), writes=False):
        try:
            cursor = self._connection.execute(sql, parameters)
            return cursor.fetchall(), cursor.rowcount
        except sqlite3.Error as e:
            doing = "cannot write to database" if writes else "database"
            raise StoreError("%s %s: %s" % (doing, self.path, _describe(e)))

    def server_number(self):
        """
        A number no server that started on this file before got: servers on
        one machine may share a SQLite file when Redis makes them one
        (C{--redis}).  The table is made on first use, outside the schema's
        versions: an older wazzap that finds it leaves it alone.
        """
        with self._transaction() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS server_numbers "
                "(number INTEGER PRIMARY KEY AUTOINCREMENT)"
            )
            return connection.execute("INSERT INTO server_numbers DEFAULT VALUES").lastrowid

    @contextmanager
    def _transaction(self):
        """
        L{SqlDatabase._transaction}, IMMEDIATE: it takes the write lock
        first, so its reads and writes see one state of the file whatever
        another process (the admin command) does meanwhile.
        """
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StoreError("cannot write to database %s: %s" % (self.path, _describe(e)))
