"""
What the connections of one server limit together: how many connections and
new connections an address may have, the flood allowance that outlives a
connection (a short memory of each address that connected lately), and
congestion (the clients catching up on their output, for whom senders wait).

The factory holds one of each, and the L{ConnectionRules} that every
connection's output queue and input gate share.
"""

import math
from collections import Counter

from twisted.logger import Logger

from wazzap.net.counts import Counts
from wazzap.net.pacing import Allowance, Pace

MINUTE = 60

#: The memory of recent addresses is swept for what no longer matters each
#: time it doubles, starting at this many addresses.
SWEEP_ADDRESSES = 64


class ConnectionRules:
    """
    What the mechanics of every connection of one server share: the clock
    (an L{IReactorTime}), the L{wazzap.server.Limits}, the L{Congestion} and
    the running L{Counts}.  One object for all, so that each connection
    holds one reference.
    """

    __slots__ = ("clock", "limits", "congestion", "counts")

    def __init__(self, clock, limits, congestion, counts=None):
        self.clock = clock
        self.limits = limits
        self.congestion = congestion
        self.counts = Counts() if counts is None else counts


#: The rooms of every client of a server with one room.
ONE_ROOM = ("lobby",)


class Congestion:
    """
    The clients catching up on their output, and the senders that wait for
    them: only senders that share a room with one of them, whose next line
    may go to it.  A client is known by its connection (the owner of its
    output queue and input gate, with a C{session_key}).

    A reader's rooms are those it was in when it began to catch up: a spell
    lasts a moment at most (L{wazzap.net.output.MAX_HOLD_BACK_SECONDS}), so
    one that joins or leaves a room meanwhile counts there from its next
    spell on.  A sender's rooms are asked each time.
    """

    def __init__(self, rooms_of=None):
        """
        @param rooms_of: a function of a session key to the names of the
            rooms that session is in (an iterable), asked of each
            connection's C{session_key}; by default, everyone shares one
            room (and a connection needs no session key).
        """
        if rooms_of is None:
            self._rooms_of = lambda connection: ONE_ROOM
        else:
            self._rooms_of = lambda connection: rooms_of(connection.session_key)
        self._readers = {}  # connection catching up -> the rooms it holds back
        self._congested_rooms = Counter()  # room -> how many readers catch up there
        self._held = []  # (connection, sender), in the order held

    @property
    def congested(self):
        """
        Whether some client is catching up on its output.
        """
        return bool(self._readers)

    def holds_back(self, connection):
        """
        Whether C{connection} must wait before it reads on: it shares a room
        with a client catching up.  A client catching up does not wait, for
        itself or for others.
        """
        if not self._readers or connection in self._readers:
            return False
        congested_rooms = self._congested_rooms
        return any(room in congested_rooms for room in self._rooms_of(connection))

    def started(self, reader):
        """
        C{reader} is catching up on its output: senders in its rooms wait.
        """
        if reader in self._readers:
            return
        rooms = self._readers[reader] = tuple(set(self._rooms_of(reader)))
        self._congested_rooms.update(rooms)

    def ended(self, reader):
        """
        C{reader} caught up (or gave up); every sender held meanwhile that no
        longer shares a room with a client catching up is told
        (C{congestion_over()}), in the order it was held.
        """
        rooms = self._readers.pop(reader, None)
        if rooms is None:
            return
        congested_rooms = self._congested_rooms
        cleared = False
        for room in rooms:
            congested_rooms[room] -= 1
            if not congested_rooms[room]:
                del congested_rooms[room]
                cleared = True
        if not cleared or not self._held:
            return
        still_held, released = [], []
        for held in self._held:
            (still_held if self.holds_back(held[0]) else released).append(held)
        self._held = still_held
        for _, sender in released:
            sender.congestion_over()

    def hold(self, connection, sender):
        """
        Call C{sender.congestion_over()} once C{connection} is no longer
        held back.
        """
        self._held.append((connection, sender))


class _Recent:
    """
    What the server remembers of an address between its connections; once
    both allowances are full again it no longer matters and is forgotten.
    """

    __slots__ = ("connections", "lines", "refusing")

    def __init__(self):
        #: New connections it may still open (with --max-connections-per-minute).
        self.connections = None
        #: The least of its lines allowances that closed lately.
        self.lines = None
        #: Whether its last connection was refused for coming too often.
        self.refusing = False

    def settled(self):
        """
        Whether forgetting it changes nothing: a new record would be the same.
        """
        return all(
            allowance is None or allowance.full() for allowance in (self.connections, self.lines)
        )


class AddressLimits:
    """
    The connections of each address, and what is remembered of addresses
    that connected lately.
    """

    log = Logger()

    def __init__(self, limits, clock):
        self._limits = limits
        self._clock = clock
        self._open = {}
        self._recent = {}
        self._sweep_at = SWEEP_ADDRESSES
        self._line_pace = self._new_line_pace()

    def __len__(self):
        """
        How many addresses are remembered between their connections.
        """
        return len(self._recent)

    def opened(self, peer):
        """
        Count a new connection from C{peer}; return why it is refused (the
        line to write), or L{None}.
        """
        count = self._open.get(peer, 0) + 1
        self._open[peer] = count
        limit = self._limits.max_connections_per_address
        if limit and count > limit:
            self.log.warn("refused {peer}: over {limit} connections", peer=peer, limit=limit)
            return "[Server] Too many connections from your address (limit %d).\r\n" % (limit,)
        per_minute = self._limits.max_connections_per_minute
        if not per_minute:
            return None
        recent = self._recent_of(peer)
        if recent.connections is None:
            recent.connections = Allowance(self._clock, per_minute, per_minute / MINUTE)
        wait = recent.connections.wait()
        if not wait:
            recent.refusing = False
            return None
        if not recent.refusing:
            # Once per spell of refusals: a loop of reconnects must not fill the log.
            recent.refusing = True
            self.log.warn(
                "refusing {peer}: over {limit} new connections a minute",
                peer=peer,
                limit=per_minute,
            )
        return (
            "[Server] Too many new connections from your address (limit %d a minute):"
            " try again in %d seconds.\r\n" % (per_minute, math.ceil(wait))
        )

    def limits_changed(self):
        """
        The limits changed (a reload): the addresses remembered go on at
        the new rate of new connections.
        """
        self._line_pace = self._new_line_pace()
        per_minute = self._limits.max_connections_per_minute
        for recent in self._recent.values():
            if recent.connections is not None:
                recent.connections.change(per_minute, per_minute / MINUTE)

    def closed(self, peer):
        """
        A connection from C{peer} that L{opened} counted is gone.
        """
        count = self._open[peer] - 1
        if count:
            self._open[peer] = count
        else:
            del self._open[peer]

    def line_allowance(self, peer):
        """
        The allowance of lines for a new connection from C{peer}: a whole
        burst, unless a connection from there closed lately with less left,
        so that reconnecting does not buy a fresh burst.
        """
        recent = self._recent.get(peer)
        left = None if recent is None or recent.lines is None else recent.lines.tokens()
        return Allowance.under(self._line_pace, self._line_pace.holding(left))

    @property
    def line_pace(self):
        """
        The L{Pace} of every connection's lines, new at each reload.
        """
        return self._line_pace

    def _new_line_pace(self):
        limits = self._limits
        return Pace(self._clock, limits.flood_burst_lines, limits.flood_rate_lines_per_second)

    def remember_lines(self, peer, allowance):
        """
        Keep the line allowance a connection from C{peer} closed with, if it
        is the least of them and not full.
        """
        if allowance is not None and not allowance.full():
            recent = self._recent_of(peer)
            if recent.lines is None or allowance.tokens() < recent.lines.tokens():
                recent.lines = allowance

    def _recent_of(self, peer):
        """
        What is remembered of C{peer}, made if there is nothing yet.
        """
        recent = self._recent.get(peer)
        if recent is None:
            if len(self._recent) >= self._sweep_at:
                self._recent = {
                    address: kept for address, kept in self._recent.items() if not kept.settled()
                }
                self._sweep_at = max(SWEEP_ADDRESSES, 2 * len(self._recent))
            recent = self._recent[peer] = _Recent()
        return recent
