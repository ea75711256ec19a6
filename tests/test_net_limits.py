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
    congestion.hold("alice", first)
    congestion.hold("dave", second)
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


class Client:
    """
    A connection known to congestion by its session key.
    """

    def __init__(self, session_key):
        self.session_key = session_key


def in_rooms(**rooms):
    """
    Congestion over fake rooms (room name -> the session keys in it), and a
    L{Client} for every session key, by key.
    """
    keys = {key for members in rooms.values() for key in members}
    rooms_of = lambda key: [room for room, members in rooms.items() if key in members]
    return Congestion(rooms_of), {key: Client(key) for key in keys}


def test_a_reader_catching_up_holds_back_only_senders_in_its_rooms():
    """A reader slow in #a holds a sender in #a, and one in #a and #b, but not one only in #b."""
    congestion, clients = in_rooms(a=["slow", "alice", "both"], b=["bob", "both"])
    congestion.started(clients["slow"])
    assert congestion.holds_back(clients["alice"])
    assert congestion.holds_back(clients["both"])
    assert not congestion.holds_back(clients["bob"])
    assert not congestion.holds_back(clients["slow"])


def test_held_senders_of_a_room_go_on_in_order_once_its_last_reader_caught_up():
    """Senders held for #a go on, in the order held, when #a's last slow reader caught up, whatever #b does."""
    congestion, clients = in_rooms(a=["slow", "slower", "alice", "both"], b=["lagging", "bob", "both"])
    told = []
    alice, both = Sender(told), Sender(told)
    congestion.started(clients["slow"])
    congestion.started(clients["slower"])
    congestion.hold(clients["both"], both)
    congestion.hold(clients["alice"], alice)
    congestion.started(clients["lagging"])
    congestion.ended(clients["slow"])
    assert told == []
    congestion.ended(clients["slower"])
    assert told == [alice]
    assert congestion.holds_back(clients["bob"])
    congestion.ended(clients["lagging"])
    assert told == [alice, both] and not congestion.congested


def test_a_reader_in_no_room_holds_back_nobody():
    """A client catching up before it joined any room holds back no sender."""
    congestion, clients = in_rooms(a=["alice"])
    congestion.started(Client("newcomer"))
    assert congestion.congested and not congestion.holds_back(clients["alice"])


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


def test_line_allowances_share_one_pace_until_a_reload():
    """Every connection's line allowance is under the one shared pace, which a reload replaces."""
    limits = Limits(flood_burst_lines=5, flood_rate_lines_per_second=1)
    addresses = AddressLimits(limits, Clock())
    first, second = addresses.line_allowance("10.0.0.1"), addresses.line_allowance("10.0.0.2")
    assert first.pace is second.pace is addresses.line_pace
    limits.flood_rate_lines_per_second = 2
    addresses.limits_changed()
    assert addresses.line_pace is not first.pace
    assert addresses.line_pace.rate == 2
