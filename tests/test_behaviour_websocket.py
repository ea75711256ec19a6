"""
The behaviour suite's steps over the WebSocket adapter
(tests/behaviour_websocket.py), a browser user meeting a line user: what
the suite checks over every pair of listeners, checked here for this one
until the integrator adds it to the suite's parameters.
"""

import pytest

from tests.behaviour_websocket import WebSocketAdapter
from tests.doubles import Connection, make_factory

pytestmark = pytest.mark.timeout(30)


class World:
    """
    One chat server in memory, as tests/behaviour.py's World has it.
    """

    def __init__(self, **limits):
        self.factory = make_factory(**limits)
        self.clock = self.factory.clock


class LineClient:
    """
    A line user with the suite's Client steps, over tests/doubles.py's Connection.
    """

    def __init__(self, world, nickname, port):
        self.nickname = nickname
        self.connection = Connection(world.factory, port=port).join(nickname)
        self.connection.lines()

    def say(self, text):
        self.connection.send(text)

    def lines(self):
        return self.connection.lines()


def test_join_is_seen_by_the_others():
    """A browser's join is seen by the line user, and the line user's by the browser."""
    world = World()
    browsers = WebSocketAdapter(world)
    alice = browsers.join("alice")
    bob = LineClient(world, "bob", 41000)
    assert alice.heard() == [("joined", "bob")]
    browsers.join("carol")
    assert bob.lines() == ["[Server] carol joined the chat"]
    assert alice.heard() == [("joined", "carol")]


def test_public_lines_reach_everyone_else_in_order():
    """Public lines reach the others in order with nicknames, and not their sender."""
    world = World()
    browsers = WebSocketAdapter(world)
    alice, carol = browsers.join("alice"), browsers.join("carol")
    bob = LineClient(world, "bob", 41000)
    alice.heard(), carol.heard()
    alice.say("one")
    bob.say("two")
    carol.say("three")
    assert alice.heard() == [("said", "bob", "two"), ("said", "carol", "three")]
    assert carol.heard() == [("said", "alice", "one"), ("said", "bob", "two")]
    assert bob.lines() == ["alice: one", "carol: three"]


def test_a_private_message_reaches_only_its_target():
    """A browser's private message reaches its target only."""
    world = World()
    browsers = WebSocketAdapter(world)
    alice, carol = browsers.join("alice"), browsers.join("carol")
    bob = LineClient(world, "bob", 41000)
    alice.heard(), carol.heard()
    alice.private("carol", "psst")
    alice.private("bob", "hey")
    assert carol.heard() == [("private", "alice", "psst")]
    assert bob.lines() == ["[PM from alice] hey"]
    assert alice.heard() == []


def test_a_nickname_change_is_heard_by_all():
    """A browser's nickname change is heard by everyone, itself included."""
    world = World()
    browsers = WebSocketAdapter(world)
    alice, carol = browsers.join("alice"), browsers.join("carol")
    bob = LineClient(world, "bob", 41000)
    alice.heard(), carol.heard()
    alice.rename("alicia")
    assert alice.heard() == carol.heard() == [("renamed", "alice", "alicia")]
    assert bob.lines() == ["[Server] alice is now known as alicia"]
    alice.say("still me")
    assert bob.lines() == ["alicia: still me"]


def test_a_flood_is_paced():
    """A browser's lines beyond the burst arrive later, none lost."""
    world = World(flood_burst_lines=5, flood_rate_lines_per_second=2)
    browsers = WebSocketAdapter(world)
    alice, carol = browsers.join("alice"), browsers.join("carol")
    carol.heard()
    for n in range(10):
        alice.say("flood %d" % (n,))
    early = carol.heard()
    assert early == [("said", "alice", "flood %d" % (n,)) for n in range(len(early))]
    assert len(early) < 10
    for _ in range(10):
        world.clock.advance(1)
    assert early + carol.heard() == [("said", "alice", "flood %d" % (n,)) for n in range(10)]


def test_a_browser_that_stops_reading_is_dropped_while_others_go_on():
    """A browser that stops reading is dropped past the output limit; the others go on."""
    world = World(max_queued_output_bytes=4096)
    browsers = WebSocketAdapter(world)
    alice, carol = browsers.join("alice"), browsers.join("carol")
    bob = LineClient(world, "bob", 41000)
    alice.heard(), carol.heard()
    alice.stop_reading()
    for n in range(40):
        bob.say("line %d %s" % (n, "x" * 100))
    assert alice.closed()
    assert not carol.closed()
    heard = carol.heard()
    assert [h for h in heard if h[0] == "said"] == [
        ("said", "bob", "line %d %s" % (n, "x" * 100)) for n in range(40)
    ]
    assert ("left", "alice") in heard
