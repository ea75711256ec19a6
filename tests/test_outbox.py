"""
The per-turn outbox: one rendering per renderer, the same bytes for every
member of a kind, one send per member per turn, and order kept per member.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.doubles import RecordingMember
from wazzap.core import events
from wazzap.core.interfaces import IRenderer
from wazzap.core.outbox import Outbox
from wazzap.flow import TurnFlusher
from wazzap.listeners.line import render


@implementer(IRenderer)
class CountingRenderer:
    """
    The plain line renderer, counting the events it renders.
    """

    def __init__(self):
        self.rendered = 0

    def render(self, batch, recipient, room=None):
        self.rendered += len(batch)
        return render.PLAIN.render(batch, recipient, room)


def outbox_with(*nicknames, renderer=render.PLAIN):
    clock = Clock()
    outbox = Outbox(TurnFlusher(clock))
    members = {}
    for nickname in nicknames:
        member = RecordingMember(nickname, renderer)
        members[member.session_key] = member
    return clock, outbox, members, list(members.values())


def said(nickname, words):
    return events.Said(nickname, "red", words)


def test_counting_renderer_provides_irenderer():
    """The counting fake fulfils the renderer contract."""
    assert verifyObject(IRenderer, CountingRenderer())


def test_a_batch_is_rendered_once_per_renderer_and_shared():
    """Each event is rendered once per renderer, and members of a kind get the very same bytes."""
    counting = CountingRenderer()
    clock, outbox, members, (alice, bob, carol, dave) = outbox_with("alice", "bob", "carol", "dave")
    carol.renderer = dave.renderer = counting
    for index in range(3):
        outbox.publish("lobby", members, said("alice", "line %d" % index), exclude=alice.session_key)
    clock.advance(0)
    assert counting.rendered == 3
    assert carol.sent[0] is dave.sent[0]
    assert bob.sent == [b"alice: line 0\r\nalice: line 1\r\nalice: line 2\r\n"]
    assert alice.sent == []


def test_nothing_is_sent_before_the_turn_ends():
    """Published events wait for the end of the turn."""
    clock, outbox, members, (alice,) = outbox_with("alice")
    outbox.publish("lobby", members, events.Notice("hi"))
    outbox.direct(alice, events.Notice("yours"))
    assert alice.sent == []
    clock.advance(0)
    assert alice.sent == [b"[Server] hi\r\n[Server] yours\r\n"]


def test_direct_events_keep_order_with_several_rooms_in_one_send():
    """A member in two rooms with events of its own gets them all in the order they happened, in one send."""
    clock, outbox, lobby, (alice, bob) = outbox_with("alice", "bob")
    other = {bob.session_key: bob}
    outbox.publish("lobby", lobby, events.Notice("1"))
    outbox.publish("other", other, events.Notice("2"))
    outbox.direct(bob, events.Notice("3"))
    outbox.publish("lobby", lobby, events.Notice("4"))
    outbox.publish("other", other, events.Notice("5"))
    clock.advance(0)
    assert bob.sent == [b"".join(b"[Server] %d\r\n" % n for n in range(1, 6))]
    assert alice.sent == [b"[Server] 1\r\n[Server] 4\r\n"]


def test_a_private_message_shows_each_end_its_own_way():
    """The same private event reads as sent for its sender and as received for its target."""
    clock, outbox, members, (alice, bob) = outbox_with("alice", "bob")
    event = events.Private("alice", alice.session_key, "bob", "psst")
    outbox.direct(bob, event)
    outbox.direct(alice, event)
    clock.advance(0)
    assert (alice.lines, bob.lines) == (["[PM to bob] psst"], ["[PM from alice] psst"])


def test_flushing_one_member_sends_it_what_it_has_now_and_only_what_follows_later():
    """A member flushed part-way (before it closes) gets its lines so far at once, and later only the rest."""
    clock, outbox, members, (alice, bob) = outbox_with("alice", "bob")
    outbox.publish("lobby", members, events.Notice("first"))
    outbox.direct(bob, events.Notice("goodbye"))
    outbox.flush_member(bob)
    assert bob.lines == ["[Server] first", "[Server] goodbye"]
    outbox.publish("lobby", members, events.Notice("second"))
    clock.advance(0)
    assert bob.lines == ["[Server] first", "[Server] goodbye", "[Server] second"]
    assert alice.lines == ["[Server] first", "[Server] second"]
    outbox.flush_member(alice)
    assert len(alice.sent) == 1  # nothing left to send


def test_a_failing_member_does_not_keep_output_from_the_others():
    """One member whose send raises does not stop the others being sent their lines."""
    clock, outbox, members, (alice, bob) = outbox_with("alice", "bob")

    def broken(data):
        raise RuntimeError("broken")

    alice.send = broken
    outbox.publish("lobby", members, events.Notice("hi"))
    clock.advance(0)
    assert bob.lines == ["[Server] hi"]


# Steps of one turn: publish a notice to the room (maybe excluding one
# member), give one member a notice, let one more member join, or flush one
# member at once (as closing does).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.none() | st.integers(0, 3)),
        st.tuples(st.just("direct"), st.integers(0, 3)),
        st.tuples(st.just("join"), st.integers(0, 3)),
        st.tuples(st.just("flush"), st.integers(0, 3)),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), min_size=4, max_size=4), steps)
def test_every_member_gets_what_it_should_in_order_at_most_twice(in_room, steps):
    """Whatever a turn holds, each member gets exactly its events in the order they happened, in one send per flush."""
    clock, outbox, members, everyone = outbox_with("m0", "m1", "m2", "m3")
    room = {}
    for member, inside in zip(everyone, in_room):
        if inside:
            room[member.session_key] = member
    expected = {member: [] for member in everyone}
    flushes = {member: 0 for member in everyone}
    for number, (kind, index) in enumerate(steps):
        notice = events.Notice(str(number))
        line = "[Server] %d" % (number,)
        if kind == "publish":
            exclude = None if index is None else everyone[index].session_key
            outbox.publish("lobby", room, notice, exclude)
            for member in room.values():
                if member.session_key != exclude:
                    expected[member].append(line)
        elif kind == "direct":
            outbox.direct(everyone[index], notice)
            expected[everyone[index]].append(line)
        elif kind == "join":
            member = everyone[index]
            if member.session_key not in room:
                outbox.started("lobby", member.session_key)
                room[member.session_key] = member
        else:
            before = len(everyone[index].sent)
            outbox.flush_member(everyone[index])
            flushes[everyone[index]] += len(everyone[index].sent) - before
    clock.advance(0)
    for member in everyone:
        assert member.lines == expected[member]
        assert len(member.sent) <= flushes[member] + 1
