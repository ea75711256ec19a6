"""
Accounts, login history, bans, mutes and room history, kept in one SQLite
file.

L{Database} is the plain synchronous API over the standard library's sqlite3;
the admin command uses it directly.  L{Store} offers the server the same
methods returning Deferreds, run one at a time on a single worker thread, so
the reactor never waits for the disk.

Every write is one statement in autocommit mode, in a write-ahead log with
C{synchronous=NORMAL}: it is in the operating system's hands before the
method returns, so a server killed outright (SIGKILL) loses nothing it
acknowledged.  FULL would also survive a power cut, at one fsync per write:
with a session row written at every login, that capped joins at a few
hundred a second, and WAL with NORMAL is SQLite's own advice for this mix.
Room history is the exception to one statement a write: its lines come in
batches, one transaction each (L{Database.write_history}), and a SIGKILL
loses at most the batch not yet written.  The one write of several
statements, leaving an offline message (checks, then the insert), is one
transaction too, committed before it returns.  Times are float unix seconds
passed in by the caller, so the server uses its clock and tests choose
their own.
"""

import io
import os
import pickle
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

from twisted.internet import defer
from twisted.python.failure import Failure

from wazzap.core.records import Account
from wazzap.failures import OperatorError

DATABASE_FILE_NAME = "wazzap.sqlite3"
#: The store's one thread (a L{wazzap.threads.ThreadPoolService} of this size).
STORE_THREADS = 1
#: How long a statement waits for another process (say the admin command)
#: holding the write lock before failing.
BUSY_TIMEOUT_SECONDS = 5
HISTORY_LIMIT = 20
#: Sessions looked at by one pruning statement: a few milliseconds of work,
#: so other writes queued meanwhile wait no longer than that.
PRUNE_BATCH_ROWS = 500
#: Marks the file as wazzap's ("WAZZ"), so another program's SQLite file is
#: refused instead of having our tables added to it.
APPLICATION_ID = 0x57415A5A

NICKNAME = "nickname"
ADDRESS = "address"
ACCOUNT = "account"
BAN_KINDS = (NICKNAME, ADDRESS)
#: A mute follows an account, whatever nickname it uses, or else a nickname.
MUTE_KINDS = (ACCOUNT, NICKNAME)

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

#: Lines of room history in one row at most: a burst's batch is written as
#: several rows, encoded one at a time.
HISTORY_CHUNK_LINES = 256
#: SQLite's largest integer, above every line id.
_MAX_ID = 2**63 - 1


def _dumps(lines):
    """
    A chunk of history lines (tuples of numbers, strings and None) as
    bytes: pickled, which costs a third of what JSON does, and the one cost
    of history that grows with how fast rooms talk.
    """
    return pickle.dumps(lines, protocol=5)


def _chunk_rows(chunks):
    """
    The rows of C{chunks}, each cut in pieces of at most
    L{HISTORY_CHUNK_LINES}, made one at a time as SQLite takes them: a
    large batch is never held encoded all at once.
    """
    for room_key, lines in chunks:
        for start in range(0, len(lines), HISTORY_CHUNK_LINES):
            piece = lines[start : start + HISTORY_CHUNK_LINES]
            yield room_key, piece[0][0], piece[-1][0], piece[-1][1], len(piece), _dumps(piece)


class _PlainUnpickler(pickle.Unpickler):
    """
    Reads pickles of plain values only: a chunk that names any class or
    function (which only a tampered file could) is refused, not run.
    """

    def find_class(self, module, name):
        raise pickle.UnpicklingError("history holds plain values, not %s.%s" % (module, name))


def _loads(data):
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except Exception as e:
        raise StoreError("a chunk of room history is unreadable: %s" % (e,))

_ACCOUNT_COLUMNS = "nickname, password_hash, is_admin, created_at"
_SESSION_COLUMNS = "nickname, address, login_at, logout_at, reason"
_BAN_COLUMNS = "target, kind, until, reason, banned_by, banned_at"
_MUTE_COLUMNS = "target, kind, until, muted_by, muted_at"
_MEMO_COLUMNS = "id, sender, recipient, text, style, sent_at"

#: What L{Database.leave_memo} did with a message.
MEMO_KEPT = "kept"
MEMO_UNREGISTERED = "unregistered"
MEMO_RECIPIENT_FULL = "recipient full"
MEMO_SENDER_FULL = "sender full"


class StoreError(OperatorError):
    """
    The database could not be opened or used; the message, one line, says
    which file and why.
    """


@dataclass(frozen=True)
class Session:
    nickname: str
    address: str
    login_at: float
    #: None while the session is open.
    logout_at: Optional[float]
    reason: Optional[str]


@dataclass(frozen=True)
class Ban:
    target: str
    #: L{NICKNAME} or L{ADDRESS}.
    kind: str
    #: Unix time the ban ends, or None for a permanent ban.
    until: Optional[float]
    reason: str
    by: Optional[str]
    at: float


@dataclass(frozen=True)
class Mute:
    target: str
    #: L{ACCOUNT} or L{NICKNAME}.
    kind: str
    #: Unix time the mute ends, or None until it is lifted.
    until: Optional[float]
    by: Optional[str]
    at: float


@dataclass(frozen=True)
class Memo:
    """
    A private message waiting for its recipient to log in.
    """

    id: int
    sender: str
    #: The recipient's account, as it was registered.
    recipient: str
    text: str
    #: The colour name it was sent in with C{/color}, or C{""}.
    style: str
    sent_at: float


def _key(name):
    # The same folding as wazzap.text.nickname_key: alice, Alice and ALICE are
    # one account.  Addresses are folded too, so IPv6 hex digits match.
    return name.lower()


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


class Database:
    """
    The synchronous API over one sqlite3 connection.

    Not safe for concurrent use: the admin command uses it from its only
    thread, and L{Store} from its single worker thread.
    """

    def __init__(self, connection, path, created=False):
        self._connection = connection
        self.path = path
        #: Whether L{open} made a new file, rather than opening one.
        self.created = created

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

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _query(self, sql, parameters=()):
        try:
            return self._connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as e:
            raise StoreError("database %s: %s" % (self.path, _describe(e)))

    def _write(self, sql, parameters=()):
        """
        Run one statement, committed when it returns; return its cursor.
        """
        try:
            return self._connection.execute(sql, parameters)
        except sqlite3.Error as e:
            raise StoreError("cannot write to database %s: %s" % (self.path, _describe(e)))

    # Accounts

    def get_account(self, nickname):
        """
        The L{Account} for C{nickname} in any case, or None.
        """
        rows = self._query(
            "SELECT %s FROM accounts WHERE nickname_key = ?" % (_ACCOUNT_COLUMNS,),
            (_key(nickname),),
        )
        return _account(rows[0]) if rows else None

    def create_account(self, nickname, password_hash, at=None):
        """
        Create an account, not an admin; False if the nickname, in any case,
        is taken.  C{at} is the creation time, now by default.
        """
        cursor = self._write(
            "INSERT OR IGNORE INTO accounts (nickname_key, nickname, password_hash, created_at) "
            "VALUES (?, ?, ?, ?)",
            (_key(nickname), nickname, password_hash, time.time() if at is None else at),
        )
        return cursor.rowcount == 1

    def set_password(self, nickname, password_hash):
        """
        Replace the password hash; False if there is no such account.
        """
        cursor = self._write(
            "UPDATE accounts SET password_hash = ? WHERE nickname_key = ?",
            (password_hash, _key(nickname)),
        )
        return cursor.rowcount == 1

    def delete_account(self, nickname):
        """
        Delete the account (its login history stays); False if there was none.
        """
        cursor = self._write("DELETE FROM accounts WHERE nickname_key = ?", (_key(nickname),))
        return cursor.rowcount == 1

    def set_admin(self, nickname, flag):
        """
        Make the account an admin or not; False if there is no such account.
        """
        cursor = self._write(
            "UPDATE accounts SET is_admin = ? WHERE nickname_key = ?",
            (int(bool(flag)), _key(nickname)),
        )
        return cursor.rowcount == 1

    def list_accounts(self):
        """
        Every L{Account}, sorted case-insensitively by nickname.
        """
        rows = self._query(
            "SELECT %s FROM accounts ORDER BY nickname_key" % (_ACCOUNT_COLUMNS,)
        )
        return [_account(row) for row in rows]

    # Sessions

    def session_started(self, nickname, address, at):
        """
        Record a login; return the session's id for L{session_ended}.
        """
        cursor = self._write(
            "INSERT INTO sessions (nickname_key, nickname, address, login_at) "
            "VALUES (?, ?, ?, ?)",
            (_key(nickname), nickname, address, at),
        )
        return cursor.lastrowid

    def session_ended(self, session_id, at, reason):
        """
        Record a logout and why; False if the session was unknown or had
        already ended.
        """
        cursor = self._write(
            "UPDATE sessions SET logout_at = ?, reason = ? WHERE id = ? AND logout_at IS NULL",
            (at, reason, session_id),
        )
        return cursor.rowcount == 1

    def close_dangling_sessions(self, at, reason):
        """
        End every session still open, which at start-up means ones the last
        server left behind when it crashed; return how many.
        """
        cursor = self._write(
            "UPDATE sessions SET logout_at = ?, reason = ? WHERE logout_at IS NULL",
            (at, reason),
        )
        return cursor.rowcount

    def prune_sessions(self, ended_before, after_id=0, batch=PRUNE_BATCH_ROWS):
        """
        Delete, among the C{batch} oldest sessions with an id above
        C{after_id}, those that ended before C{ended_before}.  Return how
        many were deleted, and the id to go on after, or None once the
        sessions looked at reach ones that started since C{ended_before}
        (ids grow with login times, so no later session can be old enough).
        """
        rows = self._query(
            "SELECT id, login_at FROM sessions WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, batch),
        )
        if not rows:
            return 0, None
        last_id = rows[-1][0]
        cursor = self._write(
            "DELETE FROM sessions WHERE id > ? AND id <= ? AND logout_at < ?",
            (after_id, last_id, ended_before),
        )
        done = len(rows) < batch or max(login_at for _, login_at in rows) >= ended_before
        return cursor.rowcount, None if done else last_id

    def last_seen(self, nickname):
        """
        The most recent L{Session} of C{nickname}, open or not, or None.
        """
        sessions = self.history(nickname, limit=1)
        return sessions[0] if sessions else None

    def history(self, nickname, limit=HISTORY_LIMIT):
        """
        The latest C{limit} L{Session}s of C{nickname}, newest first.
        """
        rows = self._query(
            "SELECT %s FROM sessions WHERE nickname_key = ? "
            "ORDER BY login_at DESC, id DESC LIMIT ?" % (_SESSION_COLUMNS,),
            (_key(nickname), limit),
        )
        return [Session(*row) for row in rows]

    # Bans

    def add_ban(self, target, kind, until, reason, by, at):
        """
        Ban a nickname or an address until C{until} (None: for ever),
        replacing any ban of the same target.
        """
        if kind not in BAN_KINDS:
            raise ValueError("a ban is on a %s, not a %r" % (" or an ".join(BAN_KINDS), kind))
        self._write(
            "INSERT OR REPLACE INTO bans "
            "(target_key, target, kind, until, reason, banned_by, banned_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_key(target), target, kind, until, reason, by, at),
        )

    def remove_ban(self, target):
        """
        Lift the ban on C{target}; False if there was none.
        """
        return self._remove_target("bans", target)

    def active_bans(self, now):
        """
        Every L{Ban} in force at C{now}, oldest first.
        """
        return self._in_force(Ban, "bans", _BAN_COLUMNS, "banned_at", now)

    def find_ban(self, nickname, address, now, networks=()):
        """
        The L{Ban} in force at C{now} on C{nickname} or C{address} (either
        may be None) or on one of the C{networks} (targets of network bans
        that contain C{address}), the longest if several are; or None.
        """
        addresses = [_key(target) for target in (address, *networks) if target is not None]
        rows = self._query(
            "SELECT %s FROM bans "
            "WHERE ((kind = 'nickname' AND target_key = ?) "
            "OR (kind = 'address' AND target_key IN (%s))) "
            "AND (until IS NULL OR until > ?) "
            "ORDER BY until IS NULL DESC, until DESC LIMIT 1"
            % (_BAN_COLUMNS, ", ".join("?" * len(addresses)) or "NULL"),
            (None if nickname is None else _key(nickname), *addresses, now),
        )
        return Ban(*rows[0]) if rows else None

    # Mutes

    def add_mute(self, target, kind, until, by, at):
        """
        Mute an account or a nickname until C{until} (None: until lifted),
        replacing any mute of the same target.
        """
        if kind not in MUTE_KINDS:
            raise ValueError("a mute is on an %s, not a %r" % (" or a ".join(MUTE_KINDS), kind))
        self._write(
            "INSERT OR REPLACE INTO mutes (target_key, target, kind, until, muted_by, muted_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_key(target), target, kind, until, by, at),
        )

    def remove_mute(self, target):
        """
        Lift the mute on C{target}; False if there was none.
        """
        return self._remove_target("mutes", target)

    def active_mutes(self, now):
        """
        Every L{Mute} in force at C{now}, oldest first.
        """
        return self._in_force(Mute, "mutes", _MUTE_COLUMNS, "muted_at", now)

    # Bans and mutes alike: rows keyed by target, in force until "until".

    def _remove_target(self, table, target):
        cursor = self._write("DELETE FROM %s WHERE target_key = ?" % (table,), (_key(target),))
        return cursor.rowcount == 1

    def _in_force(self, record, table, columns, made_at, now):
        rows = self._query(
            "SELECT %s FROM %s WHERE until IS NULL OR until > ? ORDER BY %s, target_key"
            % (columns, table, made_at),
            (now,),
        )
        return [record(*row) for row in rows]

    # Room history (see wazzap.persist.history)

    def write_history(self, chunks=(), positions=(), gone=()):
        """
        In one transaction: add C{chunks}, each a room key and the room's
        new lines in order, each a tuple of its id, its unix time and its
        packed event (L{wazzap.core.events.pack});
        delete the lines up to an id of each room in C{gone} (room key,
        id); and replace the read positions of each account in
        C{positions} (account, rows of (room, last line id, whether read) in
        the order joined; no rows forgets them).
        """
        execute_many = self._connection.executemany
        with self._transaction() as execute:
            execute_many(
                "INSERT OR REPLACE INTO room_history "
                "(room_key, first_id, last_id, last_at, lines, data) VALUES (?, ?, ?, ?, ?, ?)",
                _chunk_rows(chunks),
            )
            execute_many("DELETE FROM room_history WHERE room_key = ? AND first_id <= ?", gone)
            for account, rows in positions:
                key = _key(account)
                execute("DELETE FROM read_positions WHERE account_key = ?", (key,))
                execute_many(
                    "INSERT INTO read_positions "
                    "(account_key, ordinal, room, last_line, reading) VALUES (?, ?, ?, ?, ?)",
                    [
                        (key, ordinal, room, last_line, int(reading))
                        for ordinal, (room, last_line, reading) in enumerate(rows)
                    ],
                )

    def last_history_id(self):
        """
        The highest line id written or read up to, or 0: new lines go above it.
        """
        rows = self._query(
            "SELECT max(coalesce((SELECT max(last_id) FROM room_history), 0), "
            "coalesce((SELECT max(last_line) FROM read_positions), 0))"
        )
        return rows[0][0]

    def forget_rooms_except(self, room_keys):
        """
        Delete the history of every room but those of C{room_keys}.
        """
        keys = list(room_keys)
        self._write(
            "DELETE FROM room_history WHERE room_key NOT IN (%s)" % (", ".join("?" * len(keys)),),
            keys,
        )

    def room_lines(self, queries):
        """
        For each query (room key, limit, after id, up to id or None): how
        many lines of that room have an id above the one and at most the
        other, and the last C{limit} of them, oldest first, as (id, unix
        time, packed event).  One call reads them all at one moment, so
        that what the history writer holds unwritten makes up the rest.
        """
        return [self._room_lines(*query) for query in queries]

    def _room_lines(self, room_key, limit, after_id, up_to_id):
        up_to_id = _MAX_ID if up_to_id is None else up_to_id
        chunks = self._query(
            "SELECT first_id, last_id, lines, data FROM room_history "
            "WHERE room_key = ? AND last_id > ? AND first_id <= ? ORDER BY first_id DESC",
            (room_key, after_id, up_to_id),
        )
        count = 0
        newest = []  # chunks' lines in range, newest chunk first
        for first_id, last_id, lines, data in chunks:
            whole = first_id > after_id and last_id <= up_to_id
            if whole and sum(map(len, newest)) >= limit:
                count += lines
                continue
            chosen = [
                (line[0], line[1], line[2:])
                for line in _loads(data)
                if after_id < line[0] <= up_to_id
            ]
            count += len(chosen)
            newest.append(chosen)
        lines = [line for chunk in reversed(newest) for line in chunk]
        return count, lines[-limit:] if limit else []

    def read_positions(self, account):
        """
        The rooms C{account} was in when it last left, in the order joined,
        as (room, last line id, whether it was the room read).
        """
        rows = self._query(
            "SELECT room, last_line, reading FROM read_positions WHERE account_key = ? "
            "ORDER BY ordinal",
            (_key(account),),
        )
        return [(room, last_line, bool(reading)) for room, last_line, reading in rows]

    def prune_history_before(self, before, batch=PRUNE_BATCH_ROWS):
        """
        Delete, among the C{batch} oldest chunks of history, those whose
        lines all date from before C{before}; return how many lines went and
        whether older ones may remain (chunks are written in time order, so
        once one is young enough no later one is old).
        """
        rows = self._query(
            "SELECT rowid, last_at, lines FROM room_history ORDER BY rowid LIMIT ?", (batch,)
        )
        old = [(rowid, lines) for rowid, last_at, lines in rows if last_at < before]
        if not old:
            return 0, False
        self._write(
            "DELETE FROM room_history WHERE rowid <= ? AND last_at < ?", (old[-1][0], before)
        )
        return sum(lines for _, lines in old), len(old) == batch

    def crowded_rooms(self, max_lines):
        """
        The keys of the rooms with more than C{max_lines} lines.
        """
        rows = self._query(
            "SELECT room_key FROM room_history GROUP BY room_key HAVING sum(lines) > ?",
            (max_lines,),
        )
        return [row[0] for row in rows]

    def prune_room_lines(self, room_key, max_lines, batch=PRUNE_BATCH_ROWS):
        """
        Delete up to C{batch} chunks of the room C{room_key}'s oldest lines
        beyond its newest C{max_lines}, cutting the chunk on the boundary;
        return how many lines went (0 once none are too many).
        """
        chunks = self._query(
            "SELECT first_id, lines FROM room_history WHERE room_key = ? ORDER BY first_id DESC",
            (room_key,),
        )
        kept = 0
        for index, (first_id, count) in enumerate(chunks):
            if kept + count > max_lines:
                break
            kept += count
        else:
            return 0
        older = chunks[index + 1 : index + 1 + batch]
        if older:
            self._write(
                "DELETE FROM room_history WHERE room_key = ? AND first_id <= ? AND first_id >= ?",
                (room_key, older[0][0], older[-1][0]),
            )
        cut = max_lines - kept
        (data,) = self._query(
            "SELECT data FROM room_history WHERE room_key = ? AND first_id = ?",
            (room_key, first_id),
        )[0]
        boundary = _loads(data)
        if cut:
            self._write(
                "UPDATE room_history SET first_id = ?, lines = ?, data = ? "
                "WHERE room_key = ? AND first_id = ?",
                (boundary[-cut][0], cut, _dumps(boundary[-cut:]), room_key, first_id),
            )
        else:
            self._write(
                "DELETE FROM room_history WHERE room_key = ? AND first_id = ?",
                (room_key, first_id),
            )
        return sum(count for _, count in older) + len(boundary) - cut

    # Offline messages (wazzap.persist.memos)

    @contextmanager
    def _transaction(self):
        """
        Run the block's statements (C{execute} is given to it) as one
        transaction, committed when the block ends; IMMEDIATE, so its reads
        and writes see one state of the file whatever another process (the
        admin command) does meanwhile.
        """
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection.execute
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StoreError("cannot write to database %s: %s" % (self.path, _describe(e)))

    def leave_memo(self, sender, recipient, text, style, at, most_waiting, most_from_sender):
        """
        Keep C{text} for the account C{recipient}, unless it has
        C{most_waiting} messages waiting, or C{most_from_sender} from
        C{sender} (by nickname).  Return what was done (L{MEMO_KEPT},
        L{MEMO_UNREGISTERED}, L{MEMO_RECIPIENT_FULL}, L{MEMO_SENDER_FULL})
        and the recipient's nickname as registered (None if it is not);
        L{MEMO_KEPT} only once the message is committed.
        """
        recipient_key, sender_key = _key(recipient), _key(sender)
        with self._transaction() as execute:
            row = execute(
                "SELECT nickname FROM accounts WHERE nickname_key = ?", (recipient_key,)
            ).fetchone()
            if row is None:
                return MEMO_UNREGISTERED, None
            registered = row[0]
            waiting, from_sender = execute(
                "SELECT count(*), coalesce(sum(sender_key = ?), 0) FROM memos "
                "WHERE recipient_key = ?",
                (sender_key, recipient_key),
            ).fetchone()
            if waiting >= most_waiting:
                return MEMO_RECIPIENT_FULL, registered
            if from_sender >= most_from_sender:
                return MEMO_SENDER_FULL, registered
            execute(
                "INSERT INTO memos "
                "(recipient_key, recipient, sender_key, sender, text, style, sent_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (recipient_key, registered, sender_key, sender, text, style, at),
            )
        return MEMO_KEPT, registered

    def memos_for(self, recipient):
        """
        The L{Memo}s waiting for the account C{recipient}, oldest first.
        """
        rows = self._query(
            "SELECT %s FROM memos WHERE recipient_key = ? ORDER BY id" % (_MEMO_COLUMNS,),
            (_key(recipient),),
        )
        return [Memo(*row) for row in rows]

    def memos_from(self, sender):
        """
        The L{Memo}s C{sender} (a nickname) left that still wait, oldest first.
        """
        rows = self._query(
            "SELECT %s FROM memos WHERE sender_key = ? ORDER BY id" % (_MEMO_COLUMNS,),
            (_key(sender),),
        )
        return [Memo(*row) for row in rows]

    def delete_memos(self, memo_ids):
        """
        Delete the memos with these ids (delivered ones); return how many were.
        """
        memo_ids = list(memo_ids)
        if not memo_ids:
            return 0
        cursor = self._write(
            "DELETE FROM memos WHERE id IN (%s)" % (", ".join("?" * len(memo_ids)),), memo_ids
        )
        return cursor.rowcount

    def take_back_memo(self, sender, number):
        """
        Delete the C{number}th (from 1) of L{memos_from} C{sender}; return it,
        or None if there are fewer, and how many waited before.
        """
        sent = self.memos_from(sender)
        if not 1 <= number <= len(sent):
            return None, len(sent)
        memo = sent[number - 1]
        cursor = self._write(
            "DELETE FROM memos WHERE id = ? AND sender_key = ?", (memo.id, _key(sender))
        )
        return (memo if cursor.rowcount == 1 else None), len(sent)


def _account(row):
    nickname, password_hash, is_admin, created_at = row
    return Account(nickname, password_hash, bool(is_admin), created_at)


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
    L{Database}'s methods returning Deferreds, run in order on one thread.

    The thread is a L{wazzap.threads.ThreadPoolService} of
    L{STORE_THREADS}, rather than L{twisted.enterprise.adbapi}: the same
    Database code serves the admin command and the server, and one thread
    means one connection and calls that run in the order they were made.

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
        L{Database.open} C{path}, synchronously (it is meant for start-up,
        before the reactor runs), and wrap it; raise L{StoreError}.
        """
        return cls(Database.open(path), threads)

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
