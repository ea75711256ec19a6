"""
The history of rooms: every line a room publishes, kept in the database
with its time, for replays on joining, "since you left" and C{/history}.

Recording costs the reactor a few steps a line, never a step per member:
the line gets the next id, joins its room's short tail in memory (what a
replay shows, so joining never waits for the disk) and the queue of lines
not yet written.  The queue goes to the store's thread as one transaction
per reactor turn or per L{BATCH_INTERVAL_SECONDS}, whichever is later, and
only once the transaction before it is done; each room's lines of a batch
are one row (L{wazzap.persist.store.Database.write_history}); while the disk lags, the queue
stays bounded (L{MAX_UNWRITTEN_LINES}) by dropping its oldest lines, with a
warning in the log.  A SIGKILL so loses at most the batch not yet written.

Reads from the database are merged with what is not written yet: the store
runs calls one at a time in order, so when a read arrives every line not in
it is still held here (being written, or queued).

Read positions (the rooms a registered user was in when they left, and the
last line then) go in the same batches.

On a database one server has to itself (SQLite), line ids count up from the
highest in it.  On one that servers share (PostgreSQL), a line's id is its
time in milliseconds with the server's number (L{SqlDatabase.server_number})
in its low L{LINE_ID_SERVER_BITS} bits: ids still grow with time, across
servers, and two servers' never collide.

Who came and went (L{NOT_HISTORY}) is not kept: a replay of "alice joined"
lines tells a newcomer nothing of the conversation, and a room's comings
and goings would push what was said out of its replays and past
C{--history-lines}; a crowd joining at once would also make each newcomer's
replay different from the one before, so that none could be shared.
"""

from collections import deque
from itertools import chain

from twisted.internet import defer
from twisted.logger import Logger

from wazzap.core.events import Joined, Left, PresenceSummary, pack, unpack
from wazzap.core.rooms import room_key
from wazzap.failures import log_failure
from wazzap.flow import cancel
from wazzap.persist.retention import Retention
from wazzap.text import nickname_key

MINUTE = 60
DAY = 24 * 60 * MINUTE
#: Retention unless --history-days and --history-lines say otherwise.
HISTORY_DAYS = 7
HISTORY_LINES = 10_000
#: The least time between the starts of two transactions of history.
BATCH_INTERVAL_SECONDS = 0.1
#: Lines recorded but not written that are held at most, while the disk
#: lags: past that the oldest are dropped.  A few megabytes.
MAX_UNWRITTEN_LINES = 10_000
#: How often retention runs, after it runs at start-up.
PRUNE_INTERVAL_SECONDS = 10 * MINUTE
#: The bits of a line's id that say which server recorded it, on a shared
#: database: 4096 servers started before two share a number, and the
#: milliseconds above them last for 70,000 years.
LINE_ID_SERVER_BITS = 12
_SERVERS = 1 << LINE_ID_SERVER_BITS
#: What rooms publish that is not their history: who came and went.
NOT_HISTORY = frozenset({Joined, Left, PresenceSummary})


class HistoryLog:
    """
    Lines as (id, room name, unix time, event): recorded from the reactor,
    written in batches, read back merged with what is not yet written.
    """

    log = Logger()

    def __init__(self, store, clock, days=HISTORY_DAYS, tail_lines=0, last_id=0, server=None):
        """
        @param store: the L{wazzap.persist.store.Store} whose thread writes.
        @param days: how old a line may be and still be told again.
        @param tail_lines: lines of each room a replay shows, kept in memory
            (a newcomer's own arrival is not among them: see L{NOT_HISTORY}).
        @param last_id: the highest id in the database, which new lines follow.
        @param server: this server's number on a shared database, or None.
        """
        self._store = store
        self._clock = clock
        self.days = days
        self._tail_lines = tail_lines
        self._last_id = last_id
        self._heard_id = 0
        self._server = server
        if server is not None:
            # This server's ids end in its number; the first it gives is
            # above every id in the database.
            self._server = server % _SERVERS
            self._last_id = (last_id >> LINE_ID_SERVER_BITS << LINE_ID_SERVER_BITS) | self._server
        self._tails = {}  # room name -> deque of its latest lines
        self._unwritten = deque()
        self._writing = ()
        self._positions = {}  # account key -> rows to write (none: forget)
        self._writing_positions = {}
        self._gone = []  # (room key, last id) of rooms whose lines go
        self._timer = None
        self._in_flight = False
        self._last_write = float("-inf")
        self._dropping = False
        self._flushed = []

    @classmethod
    def open(cls, store, clock, permanent_rooms, days=HISTORY_DAYS, tail_lines=0, shared=False):
        """
        Start from the database, synchronously (at start-up, before the
        reactor runs): forget the lines of rooms that vanished with the last
        server (only permanent ones outlive it), and fill the tails.  With
        C{shared}, other servers use the database too (through Redis), even
        a SQLite one.
        """
        database = store.database
        server = None
        if shared or database.SHARED_BY_SERVERS:
            server = database.server_number()
        if server is None:
            # On a shared database the other servers' rooms live on (retention prunes them).
            database.forget_rooms_except([room_key(name) for name in permanent_rooms])
        history = cls(store, clock, days, tail_lines, database.last_history_id(), server)
        if tail_lines:
            queries = [(room_key(name), tail_lines, 0, None) for name in permanent_rooms]
            for name, (_, rows) in zip(permanent_rooms, database.room_lines(queries)):
                history._tails[name] = deque(history._decoded(name, rows), tail_lines)
        return history

    def record(self, room, event):
        """
        Keep C{event}, just published to the room called C{room}, and return
        the id of its line, unless it is only a coming or going (then
        L{None}): on the chat's hot path, so a few steps and nothing more.
        """
        if type(event) in NOT_HISTORY:
            return None
        now = self._clock.seconds()
        if self._server is None:
            self._last_id += 1
        else:
            self._last_id = max(
                self._last_id + _SERVERS, int(now * 1000) << LINE_ID_SERVER_BITS | self._server
            )
        line = (self._last_id, room, now, event)
        tail = self._tails.get(room)
        if tail is None:
            tail = self._tails[room] = deque((), self._tail_lines)
        tail.append(line)
        unwritten = self._unwritten
        if len(unwritten) >= MAX_UNWRITTEN_LINES:
            unwritten.popleft()
            self._dropped()
        unwritten.append(line)
        if self._timer is None and not self._in_flight:
            self._schedule()
        return self._last_id

    def remember(self, room, event, line_id):
        """
        Keep C{event} in memory for replays: another server, sharing the
        database, published it to C{room} and writes it there as the line
        C{line_id}.
        """
        tail = self._tails.get(room)
        if tail is None:
            tail = self._tails[room] = deque((), self._tail_lines)
        tail.append((line_id, room, self._clock.seconds(), event))
        # Not the last id of this server's, whose low bits are its number.
        self._heard_id = max(self._heard_id, line_id)

    def refill(self, room, lines):
        """
        Keep C{lines} (read from the database) as the tail of C{room}, with
        what was heard of it since: this process had not heard the room.
        """
        known = {line[0]: line for line in chain(lines, self._tails.get(room, ()))}
        self._tails[room] = deque((known[id_] for id_ in sorted(known)), self._tail_lines)

    def mark(self):
        """
        The id of the last line recorded or heard: what is recorded later
        is above it.
        """
        return max(self._last_id, self._heard_id)

    def tail(self, room, up_to, limit):
        """
        The last C{limit} lines of C{room} up to the id C{up_to} that are
        young enough to be told, from memory.
        """
        young = self._clock.seconds() - self.days * DAY
        lines = [
            line
            for line in self._tails.get(room, ())
            if line[0] <= up_to and line[2] >= young
        ]
        return lines[-limit:] if limit else []

    def read(self, queries):
        """
        For each query (room name, limit, after id, up to id or None: the
        last line recorded when the answer comes), a Deferred of how many
        lines of that room lie in between, and the last C{limit} of them.
        """
        keyed = [(room_key(room), limit, after, up_to) for room, limit, after, up_to in queries]
        return self._store.room_lines(keyed).addCallback(self._merged, queries)

    def _merged(self, results, queries):
        held = list(chain(self._writing, self._unwritten))
        young = self._clock.seconds() - self.days * DAY
        merged = []
        for (room, limit, after, up_to), (count, rows) in zip(queries, results):
            written = self._decoded(room, rows)
            newest = rows[-1][0] if rows else after
            up_to = self._last_id if up_to is None else up_to
            key = room_key(room)
            newer = [
                line
                for line in held
                if newest < line[0] <= up_to and room_key(line[1]) == key
            ]
            lines = [line for line in written + newer if line[2] >= young]
            merged.append((count + len(newer), lines[-limit:]))
        return merged

    def _decoded(self, room, rows):
        lines = []
        for line_id, at, packed in rows:
            try:
                lines.append((line_id, room, at, unpack(packed)))
            except ValueError:
                self.log.warn("skipping history line {id}: not an event", id=line_id)
        return lines

    def positions(self, account):
        """
        A Deferred of where C{account} was when it last left: its rooms in
        the order joined, as (room, last line id, whether read).
        """
        key = nickname_key(account)
        for held in (self._positions, self._writing_positions):
            if key in held:
                return defer.succeed(held[key])
        return self._store.read_positions(account)

    def left(self, account, rows):
        """
        C{account} left, in the rooms of C{rows} (room, last line id,
        whether read); none: forget where it was.
        """
        self._positions[nickname_key(account)] = list(rows)
        self._soon()

    def room_gone(self, room):
        """
        The room called C{room} vanished: its history goes with it.
        """
        self._tails.pop(room, None)
        self._unwritten = deque(line for line in self._unwritten if line[1] != room)
        self._gone.append((room_key(room), self._last_id))
        self._soon()

    def flush(self):
        """
        Write now what is held; a Deferred that fires once it is written
        (or its write failed, which is logged).
        """
        self._timer = cancel(self._timer)
        if not self._in_flight and self._held():
            self._write()
        if not self._in_flight:
            return defer.succeed(None)
        done = defer.Deferred()
        self._flushed.append(done)
        return done

    # Batches

    def _held(self):
        return bool(self._unwritten or self._positions or self._gone)

    def _soon(self):
        if self._timer is None and not self._in_flight:
            self._schedule()

    def _schedule(self):
        wait = max(0, self._last_write + BATCH_INTERVAL_SECONDS - self._clock.seconds())
        self._timer = self._clock.callLater(wait, self._write)

    def _dropped(self):
        if not self._dropping:
            self._dropping = True
            self.log.warn(
                "room history is written more slowly than rooms talk: dropping the oldest "
                "unwritten lines (more than {limit} waiting)",
                limit=MAX_UNWRITTEN_LINES,
            )

    def _write(self):
        self._timer = None
        self._in_flight = True
        self._dropping = False
        self._writing, self._unwritten = self._unwritten, deque()
        self._writing_positions, self._positions = self._positions, {}
        gone, self._gone = self._gone, []
        self._last_write = self._clock.seconds()
        # One pass, rows made as they are grouped: this runs for every line.
        by_room = {}
        for line_id, room, at, event in self._writing:
            rows = by_room.get(room)
            if rows is None:
                rows = by_room[room] = []
            rows.append((line_id, at) + pack(event))
        chunks = [(room_key(room), rows) for room, rows in by_room.items()]
        self._store.write_history(
            chunks, list(self._writing_positions.items()), gone
        ).addErrback(log_failure, self.log, "writing room history").addBoth(self._written)

    def _written(self, _):
        self._in_flight = False
        self._writing = ()
        self._writing_positions = {}
        if self._flushed and self._held():
            self._write()
        elif self._flushed:
            flushed, self._flushed = self._flushed, []
            for done in flushed:
                done.callback(None)
        elif self._held():
            self._schedule()


class HistoryRetention(Retention):
    """
    Deletes the lines older than C{days} days and those beyond the newest
    C{max_lines} of each room: at start-up, then every
    L{PRUNE_INTERVAL_SECONDS}, a few hundred rows a call so that other
    writes never wait long.  With C{days} 0 it deletes them all.
    """

    pruned = "room history"

    def __init__(self, store, days, max_lines, clock):
        Retention.__init__(self, store, clock, PRUNE_INTERVAL_SECONDS)
        self.days = days
        self.max_lines = max_lines

    def kept(self):
        if not self.days:
            return "keeping no room history"
        return "keeping %d days and at most %d lines a room of room history" % (
            self.days,
            self.max_lines,
        )

    @defer.inlineCallbacks
    def _prune(self):
        before = self._clock.seconds() - self.days * DAY if self.days else float("inf")
        deleted, more = 0, True
        while more and self.running:
            count, more = yield self.store.prune_history_before(before)
            deleted += count
        crowded = yield self.store.crowded_rooms(self.max_lines)
        for key in crowded:
            count = True
            while count and self.running:
                count = yield self.store.prune_room_lines(key, self.max_lines)
                deleted += count
        if deleted:
            self.log.info("deleted {count} lines of room history", count=deleted)
