"""
What all the connections of one server share: the chat, its commands,
accounts, bans and limits, the clock, the set of open connections (for an
orderly shutdown), the per-address limits and congestion
(L{wazzap.net.limits}).
"""

from dataclasses import dataclass, fields

from twisted.internet import defer
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from wazzap.commands import Commands
from wazzap.core.admission import Admission
from wazzap.net.counts import SHUTDOWN, Counts, disconnection_kind
from wazzap.net.limits import AddressLimits, Congestion, ConnectionRules
from wazzap.net.tls import ClearText
from wazzap.listeners.line.protocol import ChatProtocol

SECOND = 1
MINUTE = 60 * SECOND
KIB = 1024


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


class ChatFactory(ServerFactory):
    """
    The state shared by all connections of one server: the chat, its commands,
    limits and clock, every open connection (for shutdown), the per-address
    limits (C{addresses}), C{congestion}, the C{rules} every
    connection's mechanics share, and the running C{counts} the metrics read.
    """

    protocol = ChatProtocol
    log = Logger()
    #: What each user is shown after the welcome (--motd), sanitised.
    motd_lines = ()

    def __init__(self, chat, accounts, bans, limits=None, clock=None, approve_joins=False):
        if clock is None:
            from twisted.internet import reactor as clock
        self.chat = chat
        self.accounts = accounts
        self.bans = bans
        self.commands = Commands(chat, accounts, bans, clock)
        self.limits = limits or Limits()
        self.clock = clock
        self.approve_joins = approve_joins
        self.admission = Admission(chat, accounts, bans, approve_joins)
        # Open connections, as the keys of a dict: an ordered set whose
        # table costs an idle connection about half what a set's does.
        self.connections = {}
        self.addresses = AddressLimits(self.limits, clock)
        self.congestion = Congestion(chat.presence.rooms_of)
        self.counts = Counts()
        self.rules = ConnectionRules(clock, self.limits, self.congestion, self.counts)
        #: What connections without TLS say of passwords (set as the server listens).
        self.clear_text = ClearText()
        self._all_closed = None

    def change_limits(self, limits):
        """
        Put new L{Limits} in force (a reload): every part of the server
        reads the one object, changed here in place, and each open
        connection is told to pace and time itself by them.
        """
        for field in fields(Limits):
            setattr(self.limits, field.name, getattr(limits, field.name))
        self.addresses.limits_changed()
        for connection in self.connections:
            connection.limits_changed()

    def connection_opened(self, connection):
        """
        Count a new connection; return why it is refused, or L{None}.
        """
        self.connections[connection] = None
        self.counts.connections += 1
        return self.addresses.opened(connection.peer)

    def connection_closed(self, connection, reason):
        """
        Forget a connection that ended, for the leave C{reason} it gave.
        """
        shutting_down = self._all_closed is not None
        self.counts.disconnected(SHUTDOWN if shutting_down else disconnection_kind(reason))
        if connection in self.connections:
            del self.connections[connection]
            self.addresses.closed(connection.peer)
        self.addresses.remember_lines(connection.peer, connection.line_allowance)
        if not self.connections:
            self._finish_shutdown()

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
