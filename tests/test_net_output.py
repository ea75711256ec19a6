"""
The output queue over a StringTransport and a Clock: the backlog while the
peer does not read, the slow-reader drop, the hold-back of a reader that is
catching up, and the socket fast path, which only Twisted's plain TCP
transport may take.
"""

import socket

import pytest
from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.doubles import socket_like
from wazzap.net.limits import Congestion, ConnectionRules
from wazzap.net.output import (
    MAX_HOLD_BACK_SECONDS,
    SEND_BUFFER_BYTES,
    IOutputOwner,
    OutputQueue,
    _tune,
)
from wazzap.server import Limits


@implementer(IOutputOwner)
class Owner:
    """
    A connection that counts how often it was told its peer is too slow.
    """

    def __init__(self, transport):
        self.transport = transport
        self.too_slow = 0

    def output_too_slow(self):
        self.too_slow += 1


def make_queue(plain=False, **limits):
    """
    An output queue over a StringTransport; with C{plain}, the queue takes
    that transport for Twisted's plain TCP one.
    """
    transport = StringTransport()
    owner = Owner(transport)
    clock = Clock()
    congestion = Congestion()
    queue = OutputQueue(owner, ConnectionRules(clock, Limits(**limits), congestion))
    if plain:
        socket_like(transport)
        queue._plain = transport
    return queue, transport, owner, clock, congestion


def test_queue_and_its_owner_provide_their_interfaces():
    """The queue is a push producer, and the test owner an output owner."""
    queue, _, owner, _, _ = make_queue()
    assert verifyObject(IPushProducer, queue)
    assert verifyObject(IOutputOwner, owner)


def test_registers_itself_as_the_streaming_producer():
    """The queue is its transport's streaming producer, so it hears when the peer stops reading."""
    queue, transport, _, _, _ = make_queue()
    assert transport.producer is queue and transport.streaming


def test_sends_through_the_transport():
    """Bytes go to the transport in the order they were sent."""
    queue, transport, _, _, _ = make_queue()
    queue.send(b"one\r\n")
    queue.send(b"two\r\n")
    assert transport.value() == b"one\r\ntwo\r\n"


def test_output_held_while_blocked_is_written_in_order_on_resume():
    """Output held while the peer does not read is written, in order, once it reads again."""
    queue, transport, owner, _, _ = make_queue()
    queue.pauseProducing()
    queue.send(b"one\r\n")
    queue.send(b"two\r\n")
    assert transport.value() == b""
    queue.resumeProducing()
    assert transport.value() == b"one\r\ntwo\r\n"
    assert owner.too_slow == 0


def test_slow_reader_dropped_past_the_queue_limit():
    """A peer that does not read is dropped, once, as soon as its backlog passes --max-queued-output."""
    queue, transport, owner, _, _ = make_queue(max_queued_output_bytes=100)
    queue.pauseProducing()
    queue.send(b"x" * 100)
    assert owner.too_slow == 0
    queue.send(b"y")
    assert owner.too_slow == 1
    assert transport.producer is None
    queue.send(b"z" * 1000)
    assert owner.too_slow == 1


def test_slow_reader_dropped_after_the_slow_timeout():
    """A peer whose output stays blocked past --slow-timeout is dropped."""
    queue, _, owner, clock, _ = make_queue(slow_timeout_seconds=5)
    queue.pauseProducing()
    clock.advance(4)
    assert owner.too_slow == 0
    clock.advance(2)
    assert owner.too_slow == 1


def test_reading_again_stops_the_slow_timeout():
    """A peer that reads again before --slow-timeout is not dropped."""
    queue, _, owner, clock, _ = make_queue(slow_timeout_seconds=5)
    queue.pauseProducing()
    clock.advance(4)
    queue.resumeProducing()
    clock.advance(10)
    assert owner.too_slow == 0


def test_lost_connection_leaves_no_timer():
    """Once the connection is lost nothing is timed for it."""
    queue, _, _, clock, _ = make_queue()
    queue.pauseProducing()
    queue.connection_lost()
    assert clock.getDelayedCalls() == []


def test_close_stops_producing():
    """A closing connection's queue is no longer its transport's producer."""
    queue, transport, _, _, _ = make_queue()
    queue.close()
    assert transport.producer is None


def test_plain_tcp_fast_path_writes_the_socket_directly():
    """On a plain TCP transport with nothing buffered, bytes go to the socket at once; what it does not take goes to the transport."""
    queue, transport, _, _, _ = make_queue(plain=True)
    transport.socket.room = 4
    queue.send(b"hello")
    assert transport.socket.sent == [b"hell"]
    assert transport.value() == b"o"


def test_fast_path_waits_behind_what_the_transport_holds():
    """While the transport holds bytes, new ones queue behind them instead of overtaking them."""
    queue, transport, _, _, _ = make_queue(plain=True)
    socket_like(transport, pending=10, room=100)
    queue.send(b"later")
    assert transport.socket.sent == []
    assert transport.value() == b"later"


def test_output_never_bypasses_a_transport_that_is_not_plain_tcp():
    """A transport that merely lets a socket show through (as TLS does) is always written through write()."""
    queue, transport, _, _, _ = make_queue()
    socket_like(transport, room=100)
    queue.send(b"secret")
    assert transport.socket.sent == []
    assert transport.value() == b"secret"


@pytest.fixture
def tcp_connection():
    """
    Twisted's plain TCP transport over a real loopback socket (never read
    or written by the reactor).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    connection = tcp.Connection(server, None, reactor=Clock())
    yield connection
    for end in (server, client, listener):
        end.close()


def test_only_a_plain_tcp_transport_is_taken_for_the_fast_path(tcp_connection):
    """Twisted's TCP transport is identified as plain; with TLS started on it, it is not."""
    assert _tune(tcp_connection) is tcp_connection
    tcp_connection.TLS = True
    assert _tune(tcp_connection) is None


def test_connections_of_a_kind_share_one_name_for_twisted_s_log_and_repr(tcp_connection):
    """Twisted's per-connection log prefix and repr become one string for all of a protocol's kind."""

    class ChatLike:
        pass

    tcp_connection.protocol = ChatLike()
    _tune(tcp_connection)
    assert tcp_connection.logPrefix() == tcp_connection.repstr == "ChatLike"
    other = tcp.Connection(socket.socket(), ChatLike(), reactor=Clock())
    _tune(other)
    assert other.logstr is tcp_connection.logstr
    other.socket.close()


def test_a_wrapped_tcp_transport_is_tuned_but_never_written_directly(tcp_connection):
    """Under a wrapper (as TLS is), the socket gets its options but is not taken for the fast path."""

    class Wrapper:
        transport = tcp_connection

    assert _tune(Wrapper()) is None
    handle = tcp_connection.getHandle()
    assert handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert handle.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    assert handle.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * SEND_BUFFER_BYTES


def test_a_transport_without_a_socket_is_not_tuned():
    """A test transport has no socket to tune and no fast path."""
    assert _tune(StringTransport()) is None


def test_a_reader_catching_up_holds_senders_back_until_it_reads():
    """A peer that takes some of its output, only slowly, congests until it reads again."""
    queue, transport, owner, _, congestion = make_queue(plain=True, max_queued_output_bytes=10)
    socket_like(transport, pending=1000)
    queue.pauseProducing()
    socket_like(transport, pending=900)
    queue.send(b"x" * 100)
    assert congestion.congested and owner.too_slow == 0
    queue.resumeProducing()
    assert not congestion.congested
    assert transport.value() == b"x" * 100


def test_a_reader_that_stopped_does_not_congest():
    """A peer that takes none of its output is not waited for, and is dropped at its limit."""
    queue, transport, owner, _, congestion = make_queue(plain=True, max_queued_output_bytes=10)
    socket_like(transport, pending=1000)
    queue.pauseProducing()
    queue.send(b"x" * 100)
    assert not congestion.congested
    assert owner.too_slow == 1


def test_hold_back_ends_after_its_moment_and_the_reader_is_skipped():
    """A reader that keeps catching up holds senders back MAX_HOLD_BACK_SECONDS, then is skipped and dropped at its limit."""
    queue, transport, owner, clock, congestion = make_queue(plain=True, max_queued_output_bytes=50)
    socket_like(transport, pending=1000)
    queue.pauseProducing()
    socket_like(transport, pending=900)
    queue.send(b"x" * 100)
    assert congestion.congested
    clock.advance(MAX_HOLD_BACK_SECONDS)
    assert not congestion.congested
    assert owner.too_slow == 1


def test_a_skipped_reader_congests_again_in_its_next_spell():
    """Once a skipped reader has caught up, its next spell of catching up may hold senders back again."""
    queue, transport, _, clock, congestion = make_queue(plain=True)
    for _ in range(2):
        socket_like(transport, pending=1000)
        queue.pauseProducing()
        socket_like(transport, pending=900)
        queue.send(b"x")
        assert congestion.congested
        clock.advance(MAX_HOLD_BACK_SECONDS)
        queue.send(b"y")
        assert not congestion.congested
        queue.resumeProducing()


def test_a_lost_connection_ends_its_congestion():
    """A reader whose connection is lost while catching up holds nobody back."""
    queue, transport, _, clock, congestion = make_queue(plain=True)
    socket_like(transport, pending=1000)
    queue.pauseProducing()
    socket_like(transport, pending=900)
    queue.send(b"x")
    queue.connection_lost()
    assert not congestion.congested
    assert clock.getDelayedCalls() == []
