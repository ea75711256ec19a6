"""
What all the connections of one server share: the chat, its commands,
accounts, bans and limits, the clock, the set of open connections (for
per-address limits and an orderly shutdown), and a short memory of each
address that connected lately (for limits that outlive a connection).
"""

import math
from dataclasses import dataclass

from twisted.internet import defer
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from wazzap.commands import Commands
from wazzap.core.admission import Admission
from wazzap.flow import Allowance
from wazzap.protocol import ChatProtocol

SECOND = 1
MINUTE = 60 * SECOND
KIB = 1024

#: The memory of recent addresses is swept for what no longer matters each
#: time it doubles, starting at this many addresses.
SWEEP_ADDRESSES = 64


@dataclass
class Limits:
    """
    What one connection may do; every value is a documented server option.
    """

    #: Longest line accepted, in bytes, line ending included.
    max_line_bytes: int = 4 * KIB
    #: Output queued for a client that stopped reading, beyond the kernel's
    #: (capped at SEND_BUFFER_BYTES) and Twisted's (64 KiB) buffers, before it
    #: is disconnected as too slow.
    max_queued_output_bytes: int = 256 * KIB
    #: How long a client may leave its output blocked before it is disconnected.
    slow_timeout_seconds: float = 30 * SECOND
    #: How long a new connection has to choose a nickname.
    login_timeout_seconds: float = 60 * SECOND
    #: Silence after which a joined user is disconnected; 0 for never.
    idle_timeout_seconds: float = 0
    #: Lines a connection may send at once before being slowed down.
    flood_burst_lines: int = 20
    #: Lines per second allowed after the burst; 0 turns flood control off.
    flood_rate_lines_per_second: float = 5
    #: Connections allowed from one address; 0 for no limit.
    max_connections_per_address: int = 50
    #: New connections allowed from one address in a minute (a burst of that
    #: many, then one every 60/N s); 0 for no limit.
    max_connections_per_minute: int = 30
    #: How long a newcomer waits for an admin's approval (--approve-joins).
    approval_timeout_seconds: float = 10 * MINUTE


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


class ChatFactory(ServerFactory):
    """
    The state shared by all connections of one server: the chat, its commands,
    limits and clock, and every open connection (for limits and shutdown).
    """

    protocol = ChatProtocol
    log = Logger()

    def __init__(self, chat, accounts, bans, throttle, limits=None, clock=None, approve_joins=False):
        if clock is None:
            from twisted.internet import reactor as clock
        self.chat = chat
        self.accounts = accounts
        self.bans = bans
        self.throttle = throttle
        self.commands = Commands(chat, accounts, bans, clock)
        self.limits = limits or Limits()
        self.clock = clock
        self.approve_joins = approve_joins
        self.admission = Admission(chat, accounts, bans, approve_joins)
        self.connections = set()
        self._per_address = {}
        self._recent = {}
        self._sweep_at = SWEEP_ADDRESSES
        self._congested_by = set()
        self._held_by_congestion = []
        self._all_closed = None

    def connection_opened(self, connection):
        """
        Count a new connection; return why it is refused, or L{None}.
        """
        self.connections.add(connection)
        peer = connection.peer
        count = self._per_address.get(peer, 0) + 1
        self._per_address[peer] = count
        limit = self.limits.max_connections_per_address
        if limit and count > limit:
            self.log.warn("refused {peer}: over {limit} connections", peer=peer, limit=limit)
            return "[Server] Too many connections from your address (limit %d).\r\n" % (limit,)
        per_minute = self.limits.max_connections_per_minute
        if not per_minute:
            return None
        recent = self._recent_of(peer)
        if recent.connections is None:
            recent.connections = Allowance(self.clock, per_minute, per_minute / MINUTE)
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

    def line_allowance(self, peer):
        """
        The allowance of lines for a new connection from C{peer}: a whole
        burst, unless a connection from there closed lately with less left,
        so that reconnecting does not buy a fresh burst.
        """
        limits = self.limits
        recent = self._recent.get(peer)
        left = None if recent is None or recent.lines is None else recent.lines.tokens()
        return Allowance(
            self.clock, limits.flood_burst_lines, limits.flood_rate_lines_per_second, left
        )

    def connection_closed(self, connection):
        if connection in self.connections:
            self.connections.discard(connection)
            count = self._per_address[connection.peer] - 1
            if count:
                self._per_address[connection.peer] = count
            else:
                del self._per_address[connection.peer]
        allowance = connection.line_allowance
        if allowance is not None and not allowance.full():
            recent = self._recent_of(connection.peer)
            if recent.lines is None or allowance.tokens() < recent.lines.tokens():
                recent.lines = allowance
        if not self.connections:
            self._finish_shutdown()

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

    @property
    def congested(self):
        """
        Whether some client is catching up on its output, so senders wait.
        """
        return bool(self._congested_by)

    def congestion_started(self, connection):
        self._congested_by.add(connection)

    def congestion_ended(self, connection):
        """
        C{connection} caught up (or gave up); once none is catching up, every
        sender held meanwhile reads again, in the order it was held.
        """
        self._congested_by.discard(connection)
        if not self._congested_by:
            held, self._held_by_congestion = self._held_by_congestion, []
            for sender in held:
                sender.congestion_over()

    def hold_until_congestion_ends(self, connection):
        self._held_by_congestion.append(connection)

    def shut_down(self, notice, grace_seconds=0.5):
        """
        Tell every connection C{notice}, close them all, and return a Deferred
        that fires once they are closed; any still open after C{grace_seconds}
        are aborted.
        """
        if not self.connections:
            return defer.succeed(None)
        self._all_closed = defer.Deferred()
        for connection in list(self.connections):
            connection.disconnect(notice, notice)
        self.chat.flusher.flush()
        abort = self.clock.callLater(grace_seconds, self._abort_all)
        self._all_closed.addBoth(lambda result: abort.cancel() if abort.active() else None)
        return self._all_closed

    def _abort_all(self):
        for connection in list(self.connections):
            connection.transport.abortConnection()
        # Aborting closes a connection in the next turn; after that, shutting
        # down goes on even if one of them never reported being lost.
        self.clock.callLater(0.1, self._finish_shutdown)

    def _finish_shutdown(self):
        if self._all_closed is not None and not self._all_closed.called:
            self._all_closed.callback(None)
