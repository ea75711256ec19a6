"""
What the connections of one server limit together: how many connections and
new connections an address may have, the flood allowance that outlives a
connection (a short memory of each address that connected lately), and
congestion (the clients catching up on their output, for whom senders wait).

The factory holds one of each, and the L{ConnectionRules} that every
connection's output queue and input gate share.
"""

import math

from twisted.logger import Logger

from wazzap.net.pacing import Allowance

MINUTE = 60

#: The memory of recent addresses is swept for what no longer matters each
#: time it doubles, starting at this many addresses.
SWEEP_ADDRESSES = 64


class ConnectionRules:
    """
    What the mechanics of every connection of one server share: the clock
    (an L{IReactorTime}), the L{wazzap.server.Limits} and the L{Congestion}.
    One object for all, so that each connection holds one reference.
    """

    __slots__ = ("clock", "limits", "congestion")

    def __init__(self, clock, limits, congestion):
        self.clock = clock
        self.limits = limits
        self.congestion = congestion


class Congestion:
    """
    The clients catching up on their output, and the senders that wait
    until none is.  A client is known by its connection (the owner of its
    output queue and input gate).
    """

    def __init__(self):
        self._readers = set()
        self._held = []

    @property
    def congested(self):
        """
        Whether some client is catching up on its output, so senders wait.
        """
        return bool(self._readers)

    def holds_back(self, reader):
        """
        Whether the connection C{reader} must wait before it reads on: a
        client catching up does not wait for itself.
        """
        readers = self._readers
        return reader not in readers if readers else False

    def started(self, reader):
        self._readers.add(reader)

    def ended(self, reader):
        """
        C{reader} caught up (or gave up); once none is catching up, every
        sender held meanwhile is told (C{congestion_over()}), in the order it
        was held.
        """
        self._readers.discard(reader)
        if not self._readers:
            held, self._held = self._held, []
            for sender in held:
                sender.congestion_over()

    def hold(self, sender):
        """
        Call C{sender.congestion_over()} once no client is catching up.
        """
        self._held.append(sender)


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
        limits = self._limits
        recent = self._recent.get(peer)
        left = None if recent is None or recent.lines is None else recent.lines.tokens()
        return Allowance(
            self._clock, limits.flood_burst_lines, limits.flood_rate_lines_per_second, left
        )

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
