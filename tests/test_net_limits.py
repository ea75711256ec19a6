"""
What the connections of a server limit together, without connections:
congestion, and the per-address limits on a Clock.
"""

from twisted.internet.task import Clock

from wazzap.net.limits import AddressLimits, Congestion
from wazzap.server import Limits


class Sender:
    """
    A connection held by congestion, recording when it is told to go on.
    """

    def __init__(self, told):
        self._told = told

    def congestion_over(self):
        self._told.append(self)


def test_held_senders_go_on_in_order_once_no_reader_catches_up():
    """Senders held by congestion are told, in the order held, once the last reader caught up."""
    congestion = Congestion()
    told = []
    first, second = Sender(told), Sender(told)
    congestion.started("bob")
    congestion.started("carol")
    congestion.hold(first)
    congestion.hold(second)
    congestion.ended("bob")
    assert told == [] and congestion.congested
    congestion.ended("carol")
    assert told == [first, second] and not congestion.congested
    congestion.started("bob")
    congestion.ended("bob")
    assert told == [first, second]


def test_a_reader_catching_up_is_not_held_back_by_itself():
    """Congestion holds back every sender but the reader catching up."""
    congestion = Congestion()
    assert not congestion.holds_back("alice")
    congestion.started("bob")
    assert congestion.holds_back("alice")
    assert not congestion.holds_back("bob")


def test_connections_are_counted_per_address():
    """Past --max-connections-per-address an address is refused; a closed connection makes room."""
    limits = Limits(max_connections_per_address=2, max_connections_per_minute=0)
    addresses = AddressLimits(limits, Clock())
    assert addresses.opened("10.0.0.1") is None
    assert addresses.opened("10.0.0.1") is None
    assert addresses.opened("10.0.0.2") is None
    assert "Too many connections" in addresses.opened("10.0.0.1")
    addresses.closed("10.0.0.1")
    addresses.closed("10.0.0.1")
    assert addresses.opened("10.0.0.1") is None


def test_a_line_allowance_outlives_its_connection_until_it_is_full():
    """A new connection starts with the least allowance its address closed with lately, then it is forgotten."""
    clock = Clock()
    addresses = AddressLimits(Limits(flood_burst_lines=5, flood_rate_lines_per_second=1), clock)
    allowance = addresses.line_allowance("10.0.0.1")
    for _ in range(4):
        allowance.wait()
    addresses.remember_lines("10.0.0.1", allowance)
    assert addresses.line_allowance("10.0.0.1").tokens() == 1
    assert addresses.line_allowance("10.0.0.2").full()
    assert len(addresses) == 1
    clock.advance(4)
    assert addresses.line_allowance("10.0.0.1").full()
