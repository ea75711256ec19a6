"""
The input gate over a StringTransport and a Clock: lines framed and handed
over in order, and held for flood pacing, for waits (the database) and for
congestion, with the transport's reading paused meanwhile.
"""

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import implementer
from zope.interface.verify import verifyObject

from wazzap.net.input import IInputOwner, InputGate
from wazzap.net.limits import Congestion, ConnectionRules
from wazzap.net.pacing import Allowance
from wazzap.server import Limits


@implementer(IInputOwner)
class Owner:
    """
    A connection that records what its gate hands over.
    """

    def __init__(self, transport):
        self.transport = transport
        self.lines = []
        self.told_too_fast = 0

    def lineReceived(self, line):
        self.lines.append(line)

    def lineLengthExceeded(self, line):
        self.lines.append("too long")

    def sending_too_fast(self):
        self.told_too_fast += 1


def make_gate(burst=20, rate=0, max_length=64):
    """
    An input gate over a StringTransport, with an allowance of C{burst}
    lines and C{rate} a second (0: no pacing), for lines of C{max_length}
    bytes and their LF.
    """
    transport = StringTransport()
    owner = Owner(transport)
    clock = Clock()
    congestion = Congestion()
    rules = ConnectionRules(clock, Limits(max_line_bytes=max_length + 1), congestion)
    gate = InputGate(owner, rules, Allowance(clock, burst, rate))
    return gate, transport, owner, clock, congestion


def test_owner_provides_the_input_owner_interface():
    """The test owner implements what the gate calls."""
    assert verifyObject(IInputOwner, Owner(StringTransport()))


def test_lines_are_handed_over_in_order_across_reads():
    """Complete lines are handed over in order; a partial one waits for its end."""
    gate, _, owner, _, _ = make_gate()
    gate.feed(b"one\ntw")
    assert owner.lines == [b"one"]
    assert gate.buffering()
    gate.feed(b"o\nthree\n")
    assert owner.lines == [b"one", b"two", b"three"]
    assert not gate.buffering()


def test_overlong_line_is_reported_once_and_the_next_line_works():
    """A line over the limit is reported once, its tail discarded, and the next line handed over."""
    gate, _, owner, _, _ = make_gate(max_length=8)
    gate.feed(b"x" * 20)
    gate.feed(b"x" * 20 + b"\nnext\n")
    assert owner.lines == ["too long", b"next"]


def test_flood_is_paced_not_dropped():
    """Lines over the allowance wait, reading pauses, and all are handed over in order."""
    gate, transport, owner, clock, _ = make_gate(burst=3, rate=10)
    gate.feed(b"".join(b"%d\n" % i for i in range(10)))
    assert owner.lines == [b"0", b"1", b"2"]
    assert owner.told_too_fast == 1
    assert transport.producerState == "paused"
    for _ in range(10):
        clock.advance(0.1)
    assert owner.lines == [b"%d" % i for i in range(10)]
    assert owner.told_too_fast == 1
    assert transport.producerState == "producing"


def test_a_long_flood_is_told_once():
    """However many times a flood is held back, the owner hears of it once."""
    gate, _, owner, clock, _ = make_gate(burst=1, rate=1)
    gate.feed(b"".join(b"%d\n" % i for i in range(5)))
    for _ in range(5):
        clock.advance(1)
    assert len(owner.lines) == 5
    assert owner.told_too_fast == 1


def test_a_hold_keeps_lines_until_every_reason_is_released():
    """Lines wait, and reading stays paused, until every reason to hold is released."""
    gate, transport, owner, _, _ = make_gate()
    gate.hold("database")
    gate.hold("other")
    gate.feed(b"one\ntwo\n")
    assert owner.lines == []
    assert transport.producerState == "paused"
    gate.release("database")
    assert owner.lines == [] and transport.producerState == "paused"
    gate.release("other")
    assert owner.lines == [b"one", b"two"]
    assert transport.producerState == "producing"


def test_hold_until_a_deferred_fires():
    """Lines wait until a Deferred the connection waits for has fired, success or failure."""
    gate, _, owner, _, _ = make_gate()
    waited = defer.Deferred()
    gate.hold_until(waited)
    gate.feed(b"next\n")
    assert owner.lines == []
    waited.errback(RuntimeError("the database is away"))
    waited.addErrback(lambda failure: None)
    assert owner.lines == [b"next"]


def test_hold_until_a_deferred_waiting_on_another_has_its_result():
    """A Deferred already fired but waiting on one its callback returned still holds the next lines."""
    gate, _, owner, _, _ = make_gate()
    database = defer.Deferred()
    command = defer.succeed(None).addCallback(lambda _: database)
    assert command.called
    gate.hold_until(command)
    gate.feed(b"next\n")
    assert owner.lines == []
    database.callback("answer")
    assert owner.lines == [b"next"]


def test_hold_until_a_finished_deferred_holds_nothing():
    """A Deferred with its result already holds nothing: the next line goes on at once."""
    gate, transport, owner, _, _ = make_gate()
    gate.hold_until(defer.succeed("answer"))
    gate.feed(b"next\n")
    assert owner.lines == [b"next"]
    assert transport.producerState == "producing"


def test_waits_while_another_reader_catches_up():
    """While another client catches up, the next line waits until congestion ends."""
    gate, transport, owner, _, congestion = make_gate()
    reader = object()
    congestion.started(reader)
    gate.feed(b"held\n")
    assert owner.lines == [] and transport.producerState == "paused"
    congestion.ended(reader)
    assert owner.lines == [b"held"]
    assert transport.producerState == "producing"


def test_a_reader_catching_up_does_not_wait_for_itself():
    """A connection whose own output congests still reads."""
    gate, _, owner, _, congestion = make_gate()
    congestion.started(owner)
    gate.feed(b"mine\n")
    assert owner.lines == [b"mine"]


def test_nothing_is_handed_over_once_the_connection_is_lost():
    """After the connection is lost, releasing a hold hands nothing over and no timer is left."""
    gate, _, owner, clock, _ = make_gate(burst=1, rate=1)
    gate.feed(b"a\nb\n")
    gate.hold("database")
    gate.connection_lost()
    gate.release("database")
    clock.advance(5)
    assert owner.lines == [b"a"]
    assert clock.getDelayedCalls() == []


def test_nothing_is_handed_over_while_closing():
    """Lines read after the connection began to close are not handed over."""
    gate, transport, owner, _, _ = make_gate()
    transport.loseConnection()
    gate.feed(b"late\n")
    assert owner.lines == []
