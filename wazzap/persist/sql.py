"""
What wazzap's two SQL backends share: the records the store returns, and
L{SqlDatabase}, every query of the store written once.

The backends (L{wazzap.persist.sqlite}, L{wazzap.persist.postgres}) differ in
how they connect, migrate and report errors, and give L{SqlDatabase} three
things: L{SqlDatabase._statement} (one statement, committed by itself),
L{SqlDatabase._transaction} (statements committed together) and
L{SqlDatabase.LOCK_ROWS}.  The queries use C{?} for parameters and the SQL
both understand (upserts by C{ON CONFLICT}, C{RETURNING}, C{FILTER}).  Times
are float unix seconds passed in by the caller, so the server uses its clock
and tests choose their own.
"""

import heapq
import io
import pickle
import time
from dataclasses import dataclass
from typing import Optional

from wazzap.core.records import Account
from wazzap.failures import OperatorError

HISTORY_LIMIT = 20
#: Sessions looked at by one pruning statement: a few milliseconds of work,
#: so other writes queued meanwhile wait no longer than that.
PRUNE_BATCH_ROWS = 500
#: Marks the database as wazzap's ("WAZZ"), so another program's is refused
#: instead of having our tables added to it.
APPLICATION_ID = 0x57415A5A

NICKNAME = "nickname"
ADDRESS = "address"
ACCOUNT = "account"
BAN_KINDS = (NICKNAME, ADDRESS)
#: A mute follows an account, whatever nickname it uses, or else a nickname.
MUTE_KINDS = (ACCOUNT, NICKNAME)

#: Lines of room history in one row at most: a burst's batch is written as
#: several rows, encoded one at a time.
HISTORY_CHUNK_LINES = 256
#: The largest 64-bit integer (SQLite's and PostgreSQL's BIGINT), above every line id.
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
    L{HISTORY_CHUNK_LINES}, made one at a time as the database takes them: a
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
    which file or server and why.
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


def _marks(count):
    """
    The inside of C{IN (...)} for C{count} parameters; for none, a list
    both databases take as empty (PostgreSQL refuses C{IN ()}).
    """
    return ", ".join("?" * count) or "SELECT NULL WHERE 1 = 0"


def _upsert(table, key_columns, columns):
    """
    An insert into C{table} that replaces the row with the same
    C{key_columns}; parameters are the key columns', then the C{columns}'.
    """
    every = key_columns + columns
    return "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s" % (
        table,
        ", ".join(every),
        ", ".join("?" * len(every)),
        ", ".join(key_columns),
        ", ".join("%s = excluded.%s" % (column, column) for column in columns),
    )


class SqlDatabase:
    """
    The synchronous API of the store, over whichever backend a subclass
    connects to.  Not safe for concurrent use by several threads unless the
    backend says so: L{wazzap.persist.store.Store} calls it from one thread.

    @ivar path: what the messages call the database (a file, or a server
        without its password).
    @ivar created: whether opening it made a new database, rather than
        opening one.
    """

    #: What makes a C{SELECT} in a transaction lock the rows it reads
    #: against other writers, where the backend needs that said.
    LOCK_ROWS = ""
    #: Whether other servers write to this database too, so that what a
    #: server holds in memory (its index of bans) may be out of date.
    SHARED_BY_SERVERS = False

    def __init__(self, path, created=False):
        self.path = path
        self.created = created

    def _statement(self, sql, parameters=(), writes=False):
        """
        Run one statement, committed when it returns; return its rows and
        how many rows it changed.  Raise L{StoreError}, saying whether it
        was a write that failed.
        """
        raise NotImplementedError

    def _transaction(self):
        """
        A context manager running the block's statements as one
        transaction, committed when the block ends, rolled back if it
        raises; it gives the block an object with C{execute(sql,
        parameters)} (returning a cursor: C{fetchone}, C{fetchall}) and
        C{executemany(sql, rows)}.  What its reads with L{LOCK_ROWS} found
        stays so, whatever other connections do, until it ends.
        """
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def server_number(self):
        """
        A number for a server starting on this database that no server that
        started before got, for the line ids of a history other servers
        write beside its own (see L{wazzap.persist.history}).
        """
        raise NotImplementedError

    def _query(self, sql, parameters=()):
        return self._statement(sql, parameters)[0]

    def _write(self, sql, parameters=()):
        """
        Run one statement, committed when it returns; return how many rows it changed.
        """
        return self._statement(sql, parameters, writes=True)[1]

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
        written = self._write(
            "INSERT INTO accounts (nickname_key, nickname, password_hash, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (_key(nickname), nickname, password_hash, time.time() if at is None else at),
        )
        return written == 1

    def set_password(self, nickname, password_hash):
        """
        Replace the password hash; False if there is no such account.
        """
        written = self._write(
            "UPDATE accounts SET password_hash = ? WHERE nickname_key = ?",
            (password_hash, _key(nickname)),
        )
        return written == 1

    def delete_account(self, nickname):
        """
        Delete the account (its login history stays); False if there was none.
        """
        return self._write("DELETE FROM accounts WHERE nickname_key = ?", (_key(nickname),)) == 1

    def set_admin(self, nickname, flag):
        """
        Make the account an admin or not; False if there is no such account.
        """
        written = self._write(
            "UPDATE accounts SET is_admin = ? WHERE nickname_key = ?",
            (bool(flag), _key(nickname)),
        )
        return written == 1

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
        rows, _ = self._statement(
            "INSERT INTO sessions (nickname_key, nickname, address, login_at) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            (_key(nickname), nickname, address, at),
            writes=True,
        )
        return rows[0][0]

    def session_ended(self, session_id, at, reason):
        """
        Record a logout and why; False if the session was unknown or had
        already ended.
        """
        written = self._write(
            "UPDATE sessions SET logout_at = ?, reason = ? WHERE id = ? AND logout_at IS NULL",
            (at, reason, session_id),
        )
        return written == 1

    def close_dangling_sessions(self, at, reason):
        """
        End every session still open, which at start-up means ones the last
        server left behind when it crashed; return how many.
        """
        return self._write(
            "UPDATE sessions SET logout_at = ?, reason = ? WHERE logout_at IS NULL",
            (at, reason),
        )

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
        deleted = self._write(
            "DELETE FROM sessions WHERE id > ? AND id <= ? AND logout_at < ?",
            (after_id, last_id, ended_before),
        )
        done = len(rows) < batch or max(login_at for _, login_at in rows) >= ended_before
        return deleted, None if done else last_id

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
            _upsert(
                "bans",
                ("target_key",),
                ("target", "kind", "until", "reason", "banned_by", "banned_at"),
            ),
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
            % (_BAN_COLUMNS, _marks(len(addresses))),
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
            _upsert("mutes", ("target_key",), ("target", "kind", "until", "muted_by", "muted_at")),
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
        return self._write("DELETE FROM %s WHERE target_key = ?" % (table,), (_key(target),)) == 1

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
        with self._transaction() as transaction:
            transaction.executemany(
                _upsert(
                    "room_history",
                    ("room_key", "first_id"),
                    ("last_id", "last_at", "lines", "data"),
                ),
                _chunk_rows(chunks),
            )
            transaction.executemany(
                "DELETE FROM room_history WHERE room_key = ? AND first_id <= ?", gone
            )
            for account, rows in positions:
                key = _key(account)
                transaction.execute("DELETE FROM read_positions WHERE account_key = ?", (key,))
                transaction.executemany(
                    "INSERT INTO read_positions "
                    "(account_key, ordinal, room, last_line, reading) VALUES (?, ?, ?, ?, ?)",
                    [
                        (key, ordinal, room, last_line, bool(reading))
                        for ordinal, (room, last_line, reading) in enumerate(rows)
                    ],
                )

    def last_history_id(self):
        """
        The highest line id written or read up to, or 0: new lines go above it.
        """
        rows = self._query(
            "SELECT coalesce(max(id), 0) FROM (SELECT max(last_id) AS id FROM room_history "
            "UNION ALL SELECT max(last_line) FROM read_positions) AS ids"
        )
        return rows[0][0]

    def forget_rooms_except(self, room_keys):
        """
        Delete the history of every room but those of C{room_keys}.
        """
        keys = list(room_keys)
        self._write(
            "DELETE FROM room_history WHERE room_key NOT IN (%s)" % (_marks(len(keys)),),
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
        count = held = 0
        newest = []  # chunks' lines in range, newest chunk first
        # One server's chunks of a room never overlap, so once the newest
        # lines are read, the older chunks are only counted.  Servers
        # sharing a database write chunks of one room whose ids interleave:
        # then a chunk is only counted if the lines read are all newer.
        interleaved = False
        previous_first_id = _MAX_ID
        for first_id, last_id, lines, data in chunks:
            interleaved = interleaved or last_id > previous_first_id
            previous_first_id = first_id
            whole = first_id > after_id and last_id <= up_to_id
            if whole and held >= limit and (
                not (interleaved and limit) or last_id < _limit_th_newest(newest, limit)
            ):
                count += lines
                continue
            chosen = [
                (line[0], line[1], line[2:])
                for line in _loads(data)
                if after_id < line[0] <= up_to_id
            ]
            count += len(chosen)
            held += len(chosen)
            newest.append(chosen)
        lines = [line for chunk in reversed(newest) for line in chunk]
        if interleaved:
            lines.sort()
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
        with self._transaction() as transaction:
            return self._prune_room_lines(transaction.execute, room_key, max_lines, batch)

    def _prune_room_lines(self, execute, room_key, max_lines, batch):
        chunks = execute(
            "SELECT first_id, lines FROM room_history WHERE room_key = ? ORDER BY first_id DESC"
            + self.LOCK_ROWS,
            (room_key,),
        ).fetchall()
        kept = 0
        for index, (first_id, count) in enumerate(chunks):
            if kept + count > max_lines:
                break
            kept += count
        else:
            return 0
        older = chunks[index + 1 : index + 1 + batch]
        if older:
            execute(
                "DELETE FROM room_history WHERE room_key = ? AND first_id <= ? AND first_id >= ?",
                (room_key, older[0][0], older[-1][0]),
            )
        cut = max_lines - kept
        (data,) = execute(
            "SELECT data FROM room_history WHERE room_key = ? AND first_id = ?",
            (room_key, first_id),
        ).fetchone()
        boundary = _loads(data)
        if cut:
            execute(
                "UPDATE room_history SET first_id = ?, lines = ?, data = ? "
                "WHERE room_key = ? AND first_id = ?",
                (boundary[-cut][0], cut, _dumps(boundary[-cut:]), room_key, first_id),
            )
        else:
            execute(
                "DELETE FROM room_history WHERE room_key = ? AND first_id = ?",
                (room_key, first_id),
            )
        return sum(count for _, count in older) + len(boundary) - cut

    # Offline messages (wazzap.persist.memos)

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
        with self._transaction() as transaction:
            execute = transaction.execute
            # Locked (where the backend can lock a row) so that two servers
            # leaving messages for one recipient count them one at a time.
            row = execute(
                "SELECT nickname FROM accounts WHERE nickname_key = ?" + self.LOCK_ROWS,
                (recipient_key,),
            ).fetchone()
            if row is None:
                return MEMO_UNREGISTERED, None
            registered = row[0]
            waiting, from_sender = execute(
                "SELECT count(*), count(*) FILTER (WHERE sender_key = ?) FROM memos "
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
        return self._write(
            "DELETE FROM memos WHERE id IN (%s)" % (_marks(len(memo_ids)),), memo_ids
        )

    def take_back_memo(self, sender, number):
        """
        Delete the C{number}th (from 1) of L{memos_from} C{sender}; return it,
        or None if there are fewer, and how many waited before.
        """
        sent = self.memos_from(sender)
        if not 1 <= number <= len(sent):
            return None, len(sent)
        memo = sent[number - 1]
        deleted = self._write(
            "DELETE FROM memos WHERE id = ? AND sender_key = ?", (memo.id, _key(sender))
        )
        return (memo if deleted == 1 else None), len(sent)


def _limit_th_newest(chunks, limit):
    """
    The id of the C{limit}th newest of the lines of C{chunks}.
    """
    return heapq.nlargest(limit, [line[0] for chunk in chunks for line in chunk])[-1]


def _account(row):
    nickname, password_hash, is_admin, created_at = row
    return Account(nickname, password_hash, bool(is_admin), created_at)
