"""
The behaviours every listener shares, over every pair of listeners (see
L{tests.behaviour}): a line user and an IRC user in one room see each other
join, talk, message privately and change nicknames; floods are paced and
slow readers dropped the same way whichever listener they came through.
"""

import itertools
from dataclasses import replace

import pytest

from tests.behaviour import ADAPTERS, World

PAIRS = list(itertools.product(ADAPTERS, repeat=2))
IDS = ["%s-%s" % (first.name, second.name) for first, second in PAIRS]


@pytest.fixture(params=PAIRS, ids=IDS)
def world_and_pair(request):
    first, second = request.param
    world = World()
    return world, first(world), second(world)


def said(told):
    return [event for event in told if event[0] == "said"]


def test_join_is_seen_by_the_others(world_and_pair):
    """Someone joining is seen by those already in the room."""
    world, first, second = world_and_pair
    alice = first.join("alice")
    second.join("bob")
    assert ("joined", "bob") in alice.heard()


def test_a_public_line_reaches_everyone_else_in_order(world_and_pair):
    """Public lines reach every other member, in order, with their nickname, and not the sender."""
    world, first, second = world_and_pair
    alice = first.join("alice")
    bob, carol = second.join("bob"), second.join("carol")
    alice.heard()
    bob.heard()
    for line in ("one", "two", "three"):
        alice.say(line)
    expected = [("said", "alice", line) for line in ("one", "two", "three")]
    assert said(bob.heard()) == expected
    assert said(carol.heard()) == expected
    assert said(alice.heard()) == []


def test_a_private_message_reaches_only_its_target(world_and_pair):
    """A private message reaches its target with its sender's name, and nobody else."""
    world, first, second = world_and_pair
    alice = first.join("alice")
    bob, carol = second.join("bob"), second.join("carol")
    for client in (alice, bob, carol):
        client.heard()
    alice.private("bob", "psst")
    assert ("private", "alice", "psst") in bob.heard()
    assert carol.heard() == []
    assert [event for event in alice.heard() if event[0] == "private"] == []


def test_a_nickname_change_is_heard_by_all(world_and_pair):
    """A nickname change is heard by the others, and then their lines carry the new one."""
    world, first, second = world_and_pair
    alice = first.join("alice")
    bob = second.join("bob")
    alice.heard()
    bob.heard()
    alice.rename("alicia")
    assert ("renamed", "alice", "alicia") in bob.heard()
    alice.say("hello")
    assert said(bob.heard()) == [("said", "alicia", "hello")]


@pytest.mark.parametrize("first, second", PAIRS, ids=IDS)
def test_a_flood_is_paced_and_nothing_is_lost(first, second):
    """Lines beyond the burst arrive later, paced, in order, none lost."""
    world = World(flood_burst_lines=5, flood_rate_lines_per_second=1)
    alice = first(world).join("alice")
    bob = second(world).join("bob")
    world.clock.advance(10)  # registering took lines of the burst: let it refill
    alice.heard()
    bob.heard()
    for i in range(12):
        alice.say("line %d" % (i,))
    early = said(bob.heard())
    assert 0 < len(early) < 12
    for _ in range(20):
        world.clock.advance(1)
    late = said(bob.heard())
    assert early + late == [("said", "alice", "line %d" % (i,)) for i in range(12)]
    assert any("too fast" in event[1] for event in alice.heard() if event[0] == "notice")


@pytest.mark.parametrize("first, second", PAIRS, ids=IDS)
def test_flood_control_turned_on_by_a_reload_paces_those_online(first, second):
    """A reload that turns flood control on paces someone already online, none lost."""
    world = World()
    alice = first(world).join("alice")
    bob = second(world).join("bob")
    limits = replace(world.factory.limits, flood_burst_lines=5, flood_rate_lines_per_second=1)
    world.factory.change_limits(limits)
    world.clock.advance(10)
    for i in range(12):
        alice.say("line %d" % (i,))
    early = said(bob.heard())
    assert 0 < len(early) < 12
    for _ in range(20):
        world.clock.advance(1)
    assert early + said(bob.heard()) == [("said", "alice", "line %d" % (i,)) for i in range(12)]


@pytest.mark.parametrize("first, second", PAIRS, ids=IDS)
def test_a_client_that_stops_reading_is_dropped_while_others_go_on(first, second):
    """A client that stops reading is dropped past the output limit; the others hear everything."""
    world = World(max_queued_output_bytes=2048)
    alice = first(world).join("alice")
    bob = second(world).join("bob")
    carol = second(world).join("carol")
    for client in (alice, bob, carol):
        client.heard()
    bob.stop_reading()
    for i in range(100):
        alice.say("message number %d" % (i,))
        world.clock.advance(0.2)
    assert bob.closed()
    bob.lose_connection()
    told = carol.heard()
    assert said(told) == [("said", "alice", "message number %d" % (i,)) for i in range(100)]
    assert ("left", "bob") in told
    assert not alice.closed() and not carol.closed()


@pytest.mark.parametrize("adapter", ADAPTERS, ids=[adapter.name for adapter in ADAPTERS])
def test_the_idle_timeout_counts_from_the_last_line_sent(adapter):
    """With --idle-timeout, someone silent that long is disconnected, counted from their last line."""
    world = World(idle_timeout_seconds=60)
    alice = adapter(world).join("alice")
    bob = ADAPTERS[0](world).join("bob")
    world.clock.advance(40)
    alice.say("still here")
    world.clock.advance(10)
    bob.say("me too")  # bob's own silence ends later than alice's
    for _ in range(4):
        world.clock.advance(10)
    assert not alice.closed()
    world.clock.advance(15)
    assert alice.closed()
    alice.lose_connection()
    assert ("left", "alice") in bob.heard()
