"""
The room state on its own: no protocol, no transport, members that record
what they are given.
"""

import random

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from tests.doubles import RecordingMember as Recorder
from tests.doubles import chat_with, fired
from wazzap import text
from wazzap.chat import MAX_LEAVE_NOTICES, PRESENCE_WINDOW_SECONDS, Chat
from wazzap.core.interfaces import IMember
from wazzap.listeners.line.render import presence_summary
from wazzap.listeners.line.protocol import ChatProtocol


def test_protocol_provides_imember():
    """The line protocol fulfils the member contract the room relies on."""
    assert verifyObject(IMember, ChatProtocol())


def test_recorder_provides_imember():
    """The recording fake fulfils the member contract too."""
    assert verifyObject(IMember, Recorder("alice"))


def test_say_reaches_everyone_but_sender():
    """A public message reaches the room but not its sender."""
    chat, (alice, bob, carol) = chat_with("alice", "bob", "carol")
    chat.room_of(alice).say(alice, "hi")
    assert bob.lines == []
    chat.flusher.flush()
    assert (alice.lines, bob.lines, carol.lines) == ([], ["alice: hi"], ["alice: hi"])


def test_turn_batch_is_one_object_for_all_but_senders():
    """The lines of a turn reach non-senders as one shared bytes object in one send, senders without their own."""
    chat, (alice, bob, carol, dave) = chat_with("alice", "bob", "carol", "dave")
    room = chat.room_of(alice)
    room.say(alice, "one")
    room.say(bob, "two")
    chat.flusher.flush()
    assert carol.sent == [b"alice: one\r\nbob: two\r\n"]
    assert carol.sent[0] is dave.sent[0]
    assert alice.sent == [b"bob: two\r\n"]
    assert bob.sent == [b"alice: one\r\n"]


def test_line_for_one_member_comes_after_earlier_broadcasts():
    """A private line delivered mid-turn arrives after the broadcasts before it and before later ones."""
    chat, (alice, bob) = chat_with("alice", "bob")
    room = chat.room_of(alice)
    room.say(alice, "before")
    chat.send_private(alice, "bob", "psst")
    room.say(alice, "after")
    chat.flusher.flush()
    assert bob.lines == ["alice: before", "[PM from alice] psst", "alice: after"]


def test_newcomer_hears_only_what_follows_its_join():
    """Someone who joins mid-turn does not get lines broadcast before it joined."""
    chat, (alice,) = chat_with("alice")
    chat.room_of(alice).say(alice, "early")
    bob = Recorder("bob")
    chat.join(bob)
    chat.room_of(alice).say(alice, "late")
    chat.flusher.flush()
    assert bob.lines == ["alice: late"]


def test_leave_frees_nickname_and_announces_reason():
    """Leaving frees the nickname at once and tells the room why."""
    chat, (alice, bob) = chat_with("alice", "bob")
    chat.leave(alice, "quit")
    chat.flusher.flush()
    assert bob.lines == ["[Server] alice left the chat (quit)"]
    assert chat.nickname_problem("Alice") is None


def test_leave_twice_is_harmless():
    """A second leave of the same member changes nothing."""
    chat, (alice, bob) = chat_with("alice", "bob")
    chat.leave(alice)
    chat.leave(alice)
    chat.flusher.flush()
    assert bob.lines == ["[Server] alice left the chat"]


def test_rename_keeps_member_reachable_under_new_name():
    """After a rename the member is found under the new name only."""
    chat, (alice, bob) = chat_with("alice", "bob")
    assert fired(chat.rename(alice, "Alicia")) is None
    assert chat.find("alicia") is alice and chat.find("alice") is None
    assert chat.room_of(bob).nicknames() == ["Alicia", "bob"]
    assert fired(chat.rename(bob, "ALICIA")) == "Alicia is already online"


def test_pick_color_prefers_unused_colors():
    """While free colours remain, nobody gets a colour someone online has."""
    chat, members = chat_with(*["user%d" % i for i in range(len(text.USER_PALETTE))])
    assert len({member.color for member in members}) == len(text.USER_PALETTE)


def test_reserved_and_invalid_nicknames():
    """Names that pose as the server, or break the pattern, are refused."""
    chat = Chat(Clock())
    assert "reserved" in chat.nickname_problem("Server")
    assert chat.nickname_problem("x" * 17) is not None
    assert chat.nickname_problem("bad name") is not None
    assert chat.nickname_problem("caf\u00e9") is not None
    assert chat.nickname_problem("ok_name-1") is None


@pytest.mark.parametrize(
    "nickname",
    ["admin_", "Server-", "serv3r", "_r00t_", "ADM1N", "admln", "w4zz4p", "wa22ap", "--5erver__", "roo7"],
)
def test_lookalikes_of_reserved_names_are_refused(nickname):
    """Case, digits for letters and leading or trailing _ or - do not get round a reserved name."""
    assert "which is reserved" in Chat(Clock()).nickname_problem(nickname)


@pytest.mark.parametrize("nickname", ["administrator", "ad_min", "root1", "servers", "rooted", "admin2"])
def test_names_that_merely_contain_a_reserved_word_are_allowed(nickname):
    """A reserved word inside a longer name, or split, does not pose as the server."""
    assert Chat(Clock()).nickname_problem(nickname) is None


def test_white_is_not_handed_out_but_can_be_chosen():
    """Nobody is given an unreadable white nickname, though /color white still works."""
    assert "white" in text.NAMED_COLORS and "white" not in text.USER_PALETTE


def test_waiting_member_holds_nickname_and_admins_are_asked():
    """A member waiting for approval holds its nickname and every admin is asked."""
    chat, (admin,) = chat_with("root1")
    admin.is_admin = True
    newcomer = Recorder("bob")
    assert chat.wait_for_approval(newcomer) == 1
    chat.flusher.flush()
    assert admin.lines == ["[Server] bob (192.0.2.1) asks to join: /approve bob or /deny bob"]
    assert chat.nickname_problem("BOB") == "bob is already online"
    assert chat.stop_waiting("bob") is newcomer
    assert chat.nickname_problem("bob") is None


def test_consent_blocks_private_messages_until_accepted():
    """Someone who wants consent gets private messages only in an accepted chat."""
    chat, (alice, bob) = chat_with("alice", "bob")
    chat.private_chats.set_requires_consent(bob, True)
    assert "takes private messages only in a private chat" in chat.send_private(alice, "bob", "hi")
    chat.private_chats.request(alice, bob)
    assert chat.private_chats.answer(bob, alice, True)
    assert chat.send_private(alice, "bob", "hi") is None
    chat.flusher.flush()
    assert bob.lines == ["[PM from alice] hi"]


def test_leaving_ends_private_chats_and_requests():
    """A member who leaves ends its chats and cancels requests, with notices."""
    chat, (alice, bob, carol) = chat_with("alice", "bob", "carol")
    chats = chat.private_chats
    chats.request(alice, bob)
    chats.answer(bob, alice, True)
    chats.request(carol, alice)
    chat.leave(alice)
    chat.flusher.flush()
    assert "[Server] your private chat with alice ended: they left" in bob.lines
    assert "[Server] your request to alice was cancelled: they left" in carol.lines
    assert chats.partners(bob) == [] and chats.requests_from(carol) == []


def test_pick_color_spreads_evenly_once_all_are_taken():
    """With every colour taken, the next one goes to a colour fewest people have."""
    chat, members = chat_with(*["user%d" % i for i in range(len(text.USER_PALETTE) + 1)])
    doubled = members[-1].color
    assert chat.pick_color() != doubled
    leaver = next(member for member in members if member.color != doubled)
    chat.leave(leaver)
    assert chat.pick_color() == leaver.color


def churn(chat, clock, count, prefix, interval=0.0):
    """
    C{count} newcomers who join and leave at once, C{interval} seconds apart.
    """
    for index in range(count):
        member = Recorder("%s%d" % (prefix, index))
        member.color = chat.pick_color()
        chat.join(member)
        chat.leave(member, "quit")
        clock.advance(interval)
    chat.flusher.flush()


def watched_chat():
    """
    A chat on a L{Clock} with one member who hears what others do.
    """
    clock = Clock()
    chat = Chat(clock, rng=random.Random(1))
    bystander = Recorder("bystander")
    bystander.color = chat.pick_color()
    chat.join(bystander)
    clock.advance(PRESENCE_WINDOW_SECONDS)  # its own join no longer counts
    return clock, chat, bystander


def test_a_calm_room_hears_every_join_and_leave():
    """Up to MAX_LEAVE_NOTICES people coming and going within a window are each announced, reasons included."""
    clock, chat, bystander = watched_chat()
    churn(chat, clock, MAX_LEAVE_NOTICES, "guest")
    assert bystander.lines[:2] == ["[Server] guest0 joined the chat", "[Server] guest0 left the chat (quit)"]
    assert len(bystander.lines) == 2 * MAX_LEAVE_NOTICES


def test_a_crowd_that_arrives_together_is_announced_in_full():
    """Many joins at once, with nobody leaving, are each announced."""
    clock, chat, bystander = watched_chat()
    for index in range(100):
        member = Recorder("crowd%d" % (index,))
        member.color = chat.pick_color()
        chat.join(member)
    chat.flusher.flush()
    assert len(bystander.lines) == 100 and bystander.lines[-1] == "[Server] crowd99 joined the chat"


def test_notices_spread_over_time_stay_one_by_one():
    """Joins and leaves that never crowd one window are all announced singly."""
    clock, chat, bystander = watched_chat()
    churn(chat, clock, 30, "guest", interval=PRESENCE_WINDOW_SECONDS / 4)
    assert len(bystander.lines) == 60 and not any("in the last" in line for line in bystander.lines)


def test_churn_is_summarised_once_per_window():
    """Past the limit of leaves, joins and leaves stop being announced and one summary follows per window."""
    clock, chat, bystander = watched_chat()
    churn(chat, clock, 30, "bot")
    assert len(bystander.lines) == 2 * MAX_LEAVE_NOTICES + 1
    assert bystander.lines[-1] == "[Server] bot10 joined the chat"
    bystander.lines.clear()
    clock.advance(PRESENCE_WINDOW_SECONDS - 1)
    chat.flusher.flush()
    assert bystander.lines == []
    clock.advance(1)
    chat.flusher.flush()
    assert bystander.lines == ["[Server] 19 people joined, 20 left in the last 10 s"]


def test_summaries_go_on_while_churn_lasts_and_stop_when_it_calms():
    """A busy window is summarised and the next one too; after a calm window, notices are single again."""
    clock, chat, bystander = watched_chat()
    churn(chat, clock, 30, "bot")
    clock.advance(PRESENCE_WINDOW_SECONDS)
    churn(chat, clock, 6, "more")
    bystander.lines.clear()
    clock.advance(PRESENCE_WINDOW_SECONDS)
    chat.flusher.flush()
    assert bystander.lines == ["[Server] 6 people joined, 6 left in the last 10 s"]
    churn(chat, clock, 1, "last")
    assert bystander.lines[1:] == ["[Server] last0 joined the chat", "[Server] last0 left the chat (quit)"]
    clock.advance(PRESENCE_WINDOW_SECONDS)
    chat.flusher.flush()
    assert len(bystander.lines) == 3


def test_summary_wording_leaves_out_what_did_not_happen():
    """A summary names only joins or only leaves when only those happened."""
    assert presence_summary(1, 0, 10) == "1 person joined in the last 10 s"
    assert presence_summary(0, 12, 10) == "12 people left in the last 10 s"
    assert presence_summary(12, 1, 10) == "12 people joined, 1 left in the last 10 s"


def test_identity_is_kept_by_the_chat_with_a_colour_name():
    """A joined member's identity carries a palette colour name and follows a rename."""
    chat, (alice, bob) = chat_with("alice", "bob")
    identity = chat.identity(alice)
    assert identity.nickname == "alice" and identity.color in text.USER_PALETTE
    assert identity.address == alice.peer
    chat.rename(alice, "Alicia")
    assert chat.identity(alice).nickname == "Alicia"
    assert chat.identity(alice).color == identity.color


def test_a_connection_gets_one_write_per_turn():
    """Room lines and notices of one turn reach a connection in a single write, in order."""
    from tests.doubles import Connection, make_factory

    factory = make_factory()
    alice = Connection(factory, port=40001).join("alice")
    bob = Connection(factory, port=40002).join("bob")
    writes = []
    original = bob.protocol.send
    bob.protocol.send = lambda data: (writes.append(data), original(data))
    chat = factory.chat
    chat.room_of(alice.protocol).say(alice.protocol, "one")
    bob.protocol.notice("between")
    chat.room_of(alice.protocol).say(alice.protocol, "two")
    factory.clock.advance(0)
    assert len(writes) == 1
    assert bob.lines() == ["alice: one", "[Server] between", "alice: two"]
