"""
The output queue of one connection: the one way bytes reach its client.

Bytes go to the socket at once when nothing waits for it, else through the
transport.  While the peer does not read, they queue here (the backlog); a
reader that is catching up may hold senders back for a moment (congestion);
one that stops reading, or lets too much queue, must go, and the queue tells
its owner so.

This is the only code in wazzap that reads a transport's internals
(C{dataBuffer}, C{_tempDataBuffer}, C{socket}), and only of a transport it
identified as Twisted's own plain TCP one: TLS never takes the fast path.
"""

import socket
import sys

from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer
from zope.interface import Attribute, Interface, implementer

from wazzap.flow import cancel

#: The kernel's send buffer for each client (Linux doubles it for its own
#: bookkeeping): with Twisted's 64 KiB and --max-queued-output, what a client
#: that stopped reading can hold up is bounded.
SEND_BUFFER_BYTES = 64 * 1024

#: How long one client that is catching up on its output may hold senders
#: back, once per spell of blocked output: then it is skipped (its output
#: queues for it) until it has caught up, so one slow link never freezes a
#: room, and it is dropped by the usual slow-reader rule if it cannot.
MAX_HOLD_BACK_SECONDS = 0.1


class IOutputOwner(Interface):
    """
    The connection an output queue writes for.
    """

    transport = Attribute("The transport the queue writes to and produces for.")

    def output_too_slow():
        """
        The peer stopped reading (for --slow-timeout, or past
        --max-queued-output): it must go.  The queue has stopped producing
        and dropped what it held; the owner records why and aborts.
        """


@implementer(IPushProducer)
class OutputQueue:
    """
    The bytes on their way to one client, registered as the streaming
    producer of its transport, which pauses it when the peer stops reading.
    """

    # An idle connection's cost is mostly its state: keep it in slots, and
    # what only a spell of blocked output needs in a L{_Blocked} meanwhile.
    __slots__ = ("_owner", "_rules", "_plain", "_blocked")

    def __init__(self, owner, rules):
        """
        @param owner: the L{IOutputOwner}, told when the peer is too slow,
            and known to C{rules.congestion} while its client catches up.
        @param rules: the server's L{wazzap.net.limits.ConnectionRules}:
            its limits C{max_queued_output_bytes} and C{slow_timeout_seconds}
            apply.
        """
        self._owner = owner
        self._rules = rules
        self._plain = _tune(owner.transport)
        self._blocked = None
        owner.transport.registerProducer(self, True)

    def send(self, data):
        """
        Send C{data} after everything sent before: now if the peer reads,
        else once it does.

        Twisted's write() always waits for the next reactor turn and asks
        epoll to watch the socket for writability, then to stop: two system
        calls and a turn per write.  When nothing is buffered, one send()
        now is the same bytes in the same order, sooner and cheaper; what the
        kernel does not take goes to the transport as usual.  Any other
        transport (TLS above all: its socket carries ciphertext) always takes
        the write() path.
        """
        self._rules.counts.bytes_out += len(data)
        if self._blocked is not None:
            self._queue(data)
            return
        plain = self._plain
        if (
            plain is not None
            and not plain._tempDataBuffer
            and not plain.dataBuffer
            and not plain.disconnecting
        ):
            try:
                sent = plain.socket.send(data)
            except OSError:
                sent = 0  # EAGAIN, or an error the reactor will report on its own
            if sent == len(data):
                return
            data = data[sent:]
        self._owner.transport.write(data)

    def close(self):
        """
        The connection is closing: stop producing, and let the transport
        write what it holds.
        """
        self._owner.transport.unregisterProducer()

    def connection_lost(self):
        """
        The connection is gone: nothing is timed or held back for it any more.
        """
        blocked = self._blocked
        if blocked is not None:
            cancel(blocked.slow_timer)
            self._end_congestion(blocked)
            self._rules.counts.backlogged.discard(self)

    def queued_bytes(self):
        """
        Bytes held for the peer: by the transport, and in the backlog.
        """
        blocked = self._blocked
        backlog = 0 if blocked is None or blocked.backlog is None else blocked.backlog_bytes
        return (self._pending_output() or 0) + backlog

    # IPushProducer: the transport's buffer is full (pause) or empty again.

    def pauseProducing(self):
        blocked = self._blocked
        if blocked is None:
            blocked = self._blocked = _Blocked()
            self._rules.counts.backlogged.add(self)
        blocked.pending_seen = self._pending_output()
        blocked.backlog = []
        if blocked.slow_timer is None or not blocked.slow_timer.active():
            rules = self._rules
            blocked.slow_timer = rules.clock.callLater(
                rules.limits.slow_timeout_seconds, self._drop
            )

    def resumeProducing(self):
        blocked, self._blocked = self._blocked, None
        if blocked is None:
            return
        self._rules.counts.backlogged.discard(self)
        self._end_congestion(blocked)
        cancel(blocked.slow_timer)
        if blocked.backlog:
            self._owner.transport.writeSequence(blocked.backlog)

    def stopProducing(self):
        pass

    # The backlog and congestion

    def _queue(self, data):
        """
        Keep C{data} until the peer reads again; hold senders back a moment
        if it is catching up, drop it if it is too far behind.
        """
        blocked = self._blocked
        if blocked.backlog is None:
            return  # dropped as too slow; the connection is on its way out
        blocked.backlog.append(data)
        blocked.backlog_bytes += len(data)
        if not blocked.congesting and not blocked.skipped and self._draining(blocked):
            # It reads, only slower than others write: senders wait for it a
            # moment (reading from them pauses), so that a short burst does
            # not pile up or drop someone who reads.
            blocked.congesting = True
            self._rules.congestion.started(self._owner)
            blocked.hold_back_timer = self._rules.clock.callLater(
                MAX_HOLD_BACK_SECONDS, self._stop_holding_back
            )
        if not blocked.congesting and self._too_much_queued(blocked):
            self._drop()

    def _too_much_queued(self, blocked):
        return blocked.backlog_bytes > self._rules.limits.max_queued_output_bytes

    def _pending_output(self):
        """
        Bytes the transport still holds for the socket, or None where it does
        not say: only Twisted's plain socket transport keeps them in these
        attributes.
        """
        plain = self._plain
        if plain is None:
            return None
        return len(plain.dataBuffer) - plain.offset + plain._tempDataLen

    def _draining(self, blocked):
        """
        Whether the peer took some of its output since the last look: a
        client that stopped reading never does.
        """
        pending, seen = self._pending_output(), blocked.pending_seen
        blocked.pending_seen = pending
        return pending is not None and seen is not None and pending < seen

    def _stop_holding_back(self):
        """
        This client had its moment: senders go on without it until it has
        caught up, and it is dropped if what queues for it is too much.
        """
        blocked = self._blocked
        blocked.skipped = True
        self._end_congestion(blocked)
        if self._too_much_queued(blocked):
            self._drop()

    def _end_congestion(self, blocked):
        if blocked.congesting:
            blocked.congesting = False
            cancel(blocked.hold_back_timer)
            self._rules.congestion.ended(self._owner)

    def _drop(self):
        blocked = self._blocked
        self._end_congestion(blocked)
        blocked.backlog = None
        self._owner.transport.unregisterProducer()
        self._owner.output_too_slow()


class _Blocked:
    """
    A spell of output the peer does not read: what waits for it, and
    whether it is catching up.
    """

    __slots__ = (
        "backlog",
        "backlog_bytes",
        "pending_seen",
        "congesting",
        "skipped",
        "hold_back_timer",
        "slow_timer",
    )

    def __init__(self):
        #: The bytes sent meanwhile, or None once the peer was dropped.
        self.backlog = []
        self.backlog_bytes = 0
        #: What the transport held at the last look (see C{_draining}).
        self.pending_seen = None
        #: Whether senders wait for it (see L{MAX_HOLD_BACK_SECONDS}).
        self.congesting = False
        #: Whether it had its moment of holding senders back in this spell.
        self.skipped = False
        self.hold_back_timer = None
        #: The drop after --slow-timeout.
        self.slow_timer = None


def _tune(transport):
    """
    Set the socket options of a chat connection under C{transport}; return
    C{transport} itself if it is Twisted's plain TCP transport, whose socket
    may be written directly, else None.
    """
    carrier = _socket_transport_under(transport)
    if carrier is None:
        return None
    # Nagle's algorithm against the client's delayed ACK costs ~40 ms a
    # line; keepalive finds peers that vanished without a FIN.
    carrier.setTcpNoDelay(True)
    carrier.setTcpKeepAlive(True)
    # Left alone, Linux grows a send buffer to 4 MiB for a peer that
    # stopped reading, before Twisted (and so we) ever see it blocked.
    carrier.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    # Twisted makes two strings of its own for each connection, its log
    # prefix ("ChatProtocol,12,192.0.2.7") and its repr: 150 bytes, a
    # thirteenth of an idle connection.  One name for every connection of
    # a kind costs nothing; wazzap's own log lines name the peer.
    carrier.logstr = carrier.repstr = _kind_name(carrier.protocol)
    if carrier is transport and not carrier.TLS:
        # Nothing (TLS above all) stands between us and the socket.
        return carrier
    return None


def _kind_name(protocol):
    """
    The one string naming every connection of C{protocol}'s kind.
    """
    return sys.intern(type(protocol).__name__)


def _socket_transport_under(transport):
    """
    Twisted's own socket transport that carries C{transport}: itself, or the
    one under a wrapper such as TLS; L{None} for anything else (tests).
    """
    while not isinstance(transport, tcp.Connection):
        transport = getattr(transport, "transport", None)
        if transport is None:
            return None
    return transport
