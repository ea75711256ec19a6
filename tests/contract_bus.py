"""
The contract of a room bus (L{wazzap.core.interfaces.IRoomBus}), for every
implementation: a test module imports these tests and gives a C{bus_setup}
fixture whose value has C{bus} and C{end_turn()} (which returns once what was
published has been delivered).
"""

from zope.interface.verify import verifyObject

from tests.doubles import RecordingMember
from wazzap.core import events
from wazzap.core.interfaces import IRoomBus


def members_in(bus, room, *nicknames):
    members = [RecordingMember(nickname) for nickname in nicknames]
    for member in members:
        bus.join(room, member)
    return members


def test_bus_provides_iroombus(bus_setup):
    """The implementation fulfils the room bus contract."""
    assert verifyObject(IRoomBus, bus_setup.bus)


def test_publish_reaches_the_room_but_the_excluded_session(bus_setup):
    """An event published to a room reaches its members but the one excluded, and no other room."""
    bus = bus_setup.bus
    alice, bob = members_in(bus, "lobby", "alice", "bob")
    (carol,) = members_in(bus, "other", "carol")
    bus.publish("lobby", events.Said("alice", "red", "hi"), exclude=alice.session_key)
    bus_setup.end_turn()
    assert (alice.lines, bob.lines, carol.lines) == ([], ["alice: hi"], [])


def test_a_direct_event_keeps_its_place_among_room_events(bus_setup):
    """An event sent to one session arrives after the room events before it and before later ones."""
    bus = bus_setup.bus
    alice, bob = members_in(bus, "lobby", "alice", "bob")
    bus.publish("lobby", events.Said("alice", "red", "before"), exclude=alice.session_key)
    bus.direct(bob.session_key, events.Notice("for bob"))
    bus.publish("lobby", events.Said("alice", "red", "after"), exclude=alice.session_key)
    bus_setup.end_turn()
    assert bob.lines == ["alice: before", "[Server] for bob", "alice: after"]
    assert alice.lines == []


def test_a_member_gets_one_send_per_turn(bus_setup):
    """However many events and rooms, each member is sent one bytes object per turn."""
    bus = bus_setup.bus
    alice, bob = members_in(bus, "lobby", "alice", "bob")
    bus.join("other", bob)
    for index in range(5):
        bus.publish("lobby", events.Notice("lobby %d" % index))
        bus.publish("other", events.Notice("other %d" % index))
        bus.direct(bob.session_key, events.Notice("mine %d" % index))
    bus_setup.end_turn()
    assert len(alice.sent) == 1 and len(bob.sent) == 1
    assert len(bob.lines) == 15
    assert [line for line in bob.lines if "mine" in line] == ["[Server] mine %d" % i for i in range(5)]


def test_who_left_hears_no_more(bus_setup):
    """After leaving a room a session hears nothing more from it, and leaving twice is harmless."""
    bus = bus_setup.bus
    alice, bob = members_in(bus, "lobby", "alice", "bob")
    bus.leave("lobby", bob.session_key)
    bus.leave("lobby", bob.session_key)
    bus.leave("nowhere", alice.session_key)
    bus.publish("lobby", events.Notice("hi"))
    bus.direct(bob.session_key, events.Notice("gone"))
    bus_setup.end_turn()
    assert alice.lines == ["[Server] hi"] and bob.lines == []


def test_a_newcomer_hears_only_what_follows_its_join(bus_setup):
    """Someone who joins part-way through a turn gets only what was published after."""
    bus = bus_setup.bus
    (alice,) = members_in(bus, "lobby", "alice")
    bus.publish("lobby", events.Notice("early"))
    (bob,) = members_in(bus, "lobby", "bob")
    bus.publish("lobby", events.Notice("late"))
    bus_setup.end_turn()
    assert alice.lines == ["[Server] early", "[Server] late"]
    assert bob.lines == ["[Server] late"]


def test_each_member_gets_its_own_renderer(bus_setup):
    """Members with different renderers each get the event as their renderer shows it."""
    from wazzap.listeners.line import render

    bus = bus_setup.bus
    plain, colored = members_in(bus, "lobby", "plain", "colored")
    colored.renderer = render.COLORED
    bus.publish("lobby", events.Notice("hi"))
    bus_setup.end_turn()
    assert plain.sent == [b"[Server] hi\r\n"]
    assert colored.sent == [render.COLORED.render([events.Notice("hi")], None)]


def test_the_local_members_of_a_room(bus_setup):
    """A room lists the members connected here, by session key, in the order they joined."""
    bus = bus_setup.bus
    alice, bob = members_in(bus, "lobby", "alice", "bob")
    assert list(bus.local_members("lobby").items()) == [(alice.session_key, alice), (bob.session_key, bob)]
    assert dict(bus.local_members("empty")) == {}
