"""
Rooms without sockets: the chat's rooms with recording members and a
L{Clock}, and the room commands over in-memory connections.
"""

import pytest

from tests.doubles import Connection, admin_and_user, chat_with, fired, joined, make_factory, settle
from wazzap.app import tap
from wazzap.core.rooms import MAX_TOPIC_BYTES


def names_of(chat, member):
    return [room.name for room in chat.rooms_of(member)]


def test_everyone_starts_in_the_lobby():
    """A newcomer is in #lobby, and talks there."""
    chat, (alice,) = chat_with("alice")
    assert names_of(chat, alice) == ["#lobby"] and chat.room_of(alice).name == "#lobby"


def test_join_creates_a_room_and_tells_only_it():
    """Entering a new room creates it and makes it current; only that room hears of later joins."""
    chat, (alice, bob, carol) = chat_with("alice", "bob", "carol")
    assert chat.enter(alice, "#maths") is None
    assert chat.enter(bob, "#maths") is None
    chat.flusher.flush()
    assert alice.lines == ["[Server] bob joined #maths"]
    assert bob.lines == [] and carol.lines == []
    assert chat.room_of(bob).name == "#maths" and names_of(chat, bob) == ["#lobby", "#maths"]


def test_room_names_are_unique_ignoring_case():
    """#MATHS is the room #Maths, whose name keeps the case it was made with."""
    chat, (alice, bob) = chat_with("alice", "bob")
    chat.enter(alice, "#Maths")
    chat.enter(bob, "#MATHS")
    assert chat.room_of(bob) is chat.room_of(alice)
    assert chat.room_of(bob).name == "#Maths"


@pytest.mark.parametrize("name", ["#", "maths", "#a b", "#" + "x" * 31, "#caf\u00e9", "##"])
def test_bad_room_names_change_nothing(name):
    """A bad or too long room name is refused and nothing is created."""
    chat, (alice,) = chat_with("alice")
    assert "not a room name" in chat.enter(alice, name)
    assert [room.name for room in chat.rooms()] == ["#lobby"]
    assert chat.room_of(alice).name == "#lobby"


def test_a_room_name_of_thirty_characters_is_fine():
    """The longest room name allowed is # and 30 characters."""
    chat, (alice,) = chat_with("alice")
    assert chat.enter(alice, "#" + "x" * 30) is None


def test_other_rooms_lines_are_marked_and_shared_bytes_stay():
    """Lines from a room one does not read come marked with its name; one-room members share bytes as before."""
    chat, (alice, bob, carol, dave) = chat_with("alice", "bob", "carol", "dave")
    chat.enter(alice, "#maths")
    settle(chat, alice, bob, carol, dave)
    chat.find_room("#lobby").say(bob, "hi")
    chat.find_room("#maths").say(alice, "sums")
    chat.flusher.flush()
    assert alice.lines == ["[#lobby] bob: hi"]
    assert carol.lines == dave.lines == ["bob: hi"]
    assert carol.sent == [b"bob: hi\r\n"] and carol.sent[0] is dave.sent[0]


def test_rejoining_a_room_makes_it_current():
    """/join of a room one is in makes its lines unmarked again and tells nobody."""
    chat, (alice, bob) = chat_with("alice", "bob")
    chat.enter(alice, "#maths")
    chat.enter(alice, "#lobby")
    settle(chat, alice, bob)
    chat.find_room("#lobby").say(bob, "hi")
    chat.flusher.flush()
    assert alice.lines == ["bob: hi"] and bob.lines == []


def test_rooms_per_user_are_limited():
    """A person in as many rooms as allowed cannot enter another, and nothing is created."""
    chat, (alice,) = chat_with("alice", max_rooms_per_user=3)
    assert chat.enter(alice, "#a") is None and chat.enter(alice, "#b") is None
    assert "in 3 rooms" in chat.enter(alice, "#c")
    assert chat.find_room("#c") is None and chat.room_of(alice).name == "#b"


def test_a_limit_of_one_room_is_told_in_the_singular():
    """One may be in one room at most: the notice says '1 room', not '1 rooms'."""
    chat, (alice,) = chat_with("alice", max_rooms_per_user=1)
    assert "you are in 1 room, the most" in chat.enter(alice, "#a")


def test_rooms_on_the_server_are_limited():
    """Past --max-rooms no room is created, but existing ones may be joined."""
    chat, (alice, bob) = chat_with("alice", "bob", max_rooms=2)
    assert chat.enter(alice, "#a") is None
    assert "holds 2 rooms" in chat.enter(bob, "#b")
    assert chat.enter(bob, "#a") is None


def test_parting_the_last_room_goes_back_to_the_lobby():
    """Parting one's last room puts one in #lobby, which hears of it; an empty user room vanishes."""
    chat, (alice, bob) = chat_with("alice", "bob")
    chat.enter(alice, "#maths")
    assert chat.part(alice, chat.find_room("#lobby")) is None
    settle(chat, alice, bob)
    assert chat.part(alice, chat.find_room("#maths"), "bye") is None
    chat.flusher.flush()
    assert names_of(chat, alice) == ["#lobby"] and chat.room_of(alice).name == "#lobby"
    assert bob.lines == ["[Server] alice joined #lobby"]
    assert chat.find_room("#maths") is None


def test_parting_tells_the_room_with_the_reason():
    """A part is told to that room only, with its reason, and the current room moves to the last joined."""
    chat, (alice, bob, carol) = chat_with("alice", "bob", "carol")
    chat.enter(alice, "#maths")
    chat.enter(bob, "#maths")
    chat.enter(bob, "#art")
    settle(chat, alice, bob, carol)
    chat.part(bob, chat.find_room("#art"), "done")
    chat.flusher.flush()
    assert chat.room_of(bob).name == "#maths"
    chat.part(bob, chat.find_room("#maths"), "done")
    chat.flusher.flush()
    assert alice.lines == ["[Server] bob left #maths (done)"] and carol.lines == []
    assert chat.room_of(bob).name == "#lobby"


def test_parting_a_room_one_is_not_in_changes_nothing():
    """Parting a room one is not in, or one's only #lobby, is refused."""
    chat, (alice, bob) = chat_with("alice", "bob")
    chat.enter(alice, "#maths")
    assert chat.part(bob, chat.find_room("#maths")) == "you are not in #maths"
    assert "only in #lobby" in chat.part(bob, chat.find_room("#lobby"))
    assert names_of(chat, bob) == ["#lobby"]


def test_permanent_rooms_stay_when_empty():
    """A --room room exists from the start and stays after its last member parts."""
    chat, (alice,) = chat_with("alice", rooms=["#news"])
    assert chat.find_room("#NEWS").permanent
    chat.enter(alice, "#news")
    chat.part(alice, chat.find_room("#news"))
    assert chat.find_room("#news") is not None


def test_quit_is_heard_once_and_only_where_it_happened():
    """Someone sharing two rooms with a leaver hears it once; someone sharing none hears nothing."""
    chat, (alice, bob, carol) = chat_with("alice", "bob", "carol")
    for member in (alice, bob, carol):
        chat.enter(member, "#maths")
    chat.part(carol, chat.find_room("#lobby"))
    chat.enter(carol, "#art")
    chat.part(carol, chat.find_room("#maths"))
    settle(chat, alice, bob, carol)
    chat.leave(alice, "bye")
    chat.flusher.flush()
    assert bob.lines == ["[Server] alice left the chat (bye)"]
    assert carol.lines == []


def test_rename_is_heard_once():
    """A new nickname is told once to someone sharing two rooms, and to the renamer."""
    chat, (alice, bob) = chat_with("alice", "bob")
    chat.enter(alice, "#maths")
    chat.enter(bob, "#maths")
    settle(chat, alice, bob)
    assert fired(chat.rename(alice, "alicia")) is None
    chat.flusher.flush()
    assert alice.lines == bob.lines == ["[Server] alice is now known as alicia"]


def test_only_admins_create_rooms_without_user_rooms():
    """Under --no-user-rooms a user cannot create a room, an admin can, and then anyone may join it."""
    chat, (alice, root) = chat_with("alice", "root", user_rooms=False)
    root.is_admin = True
    assert "only admins create rooms" in chat.enter(alice, "#maths")
    assert chat.find_room("#maths") is None
    assert chat.enter(root, "#maths") is None
    assert chat.enter(alice, "#maths") is None


def test_a_topic_is_announced_and_a_long_one_refused():
    """A topic is told to its room; one over the limit changes nothing."""
    chat, (alice, bob) = chat_with("alice", "bob")
    lobby = chat.find_room("#lobby")
    assert chat.set_topic(alice, lobby, "é" * (MAX_TOPIC_BYTES // 2)) is None
    assert "at most 390" in chat.set_topic(alice, lobby, "x" * (MAX_TOPIC_BYTES + 1))
    assert lobby.topic == "é" * (MAX_TOPIC_BYTES // 2)
    chat.flusher.flush()
    assert bob.lines == ["[Server] alice set the topic of #lobby: " + lobby.topic]


def test_a_member_flushed_early_gets_other_rooms_marked():
    """Output handed out before the turn ends (before a close) marks lines of other rooms too."""
    chat, (alice, bob) = chat_with("alice", "bob")
    chat.enter(alice, "#maths")
    settle(chat, alice, bob)
    chat.find_room("#lobby").say(bob, "hi")
    chat.outbox.flush_member(alice)
    assert alice.lines == ["[#lobby] bob: hi"]


def test_an_announcement_is_heard_once_by_everybody():
    """A server-wide notice reaches each person once, unmarked, whatever their rooms."""
    chat, (alice, bob, carol) = chat_with("alice", "bob", "carol")
    chat.enter(alice, "#maths")
    chat.enter(bob, "#maths")
    chat.enter(carol, "#art")
    chat.part(carol, chat.find_room("#lobby"))
    settle(chat, alice, bob, carol)
    chat.announce("dave was banned")
    chat.flusher.flush()
    assert alice.lines == bob.lines == carol.lines == ["[Server] dave was banned"]


def test_rooms_are_listed_busiest_first():
    """chat.rooms() puts the busiest first, then by name."""
    chat, (alice, bob, carol) = chat_with("alice", "bob", "carol")
    chat.enter(alice, "#b")
    chat.enter(bob, "#a")
    chat.enter(carol, "#b")
    assert [room.name for room in chat.rooms()] == ["#lobby", "#b", "#a"]


# The commands, over in-memory connections.


def test_join_takes_exactly_one_name():
    """/join with no name or two names gets the usage, and joins nothing."""
    (alice,) = joined(make_factory(), "alice")
    alice.send("/join")
    alice.send("/join #a #b")
    assert alice.lines() == ["[Server] usage: /join #ROOM"] * 2
    alice.send("/join #a b")
    assert alice.lines() == ["[Server] usage: /join #ROOM"]


def test_join_command_says_who_is_there_and_the_topic():
    """/join tells who else is in the room and its topic; the room hears of it."""
    alice, bob = joined(make_factory(), "alice", "bob")
    alice.send("/join #maths")
    assert alice.lines() == ["[Server] you joined #maths. You are the first one here."]
    alice.send("/topic sums")
    assert alice.lines() == ["[Server] alice set the topic of #maths: sums"]
    bob.send("/join #Maths")
    assert bob.lines() == [
        "[Server] you joined #maths. Also here: alice.",
        "[Server] topic of #maths: sums",
    ]
    assert alice.lines() == ["[Server] bob joined #maths"]
    bob.send("/join #lobby")
    assert bob.lines() == ["[Server] you are talking in #lobby"]


def test_bad_room_commands_get_one_notice():
    """A bad name, a room one is not in, or a long topic gets one notice each."""
    alice, bob = joined(make_factory(), "alice", "bob")
    alice.send("/join maths")
    assert len(alice.lines()) == 1
    alice.send("/join #maths")
    alice.lines()
    bob.send("/part #maths")
    assert bob.lines() == ["[Server] cannot part: you are not in #maths"]
    bob.send("/part #nowhere")
    assert bob.lines() == ["[Server] there is no room #nowhere: /rooms lists them"]
    bob.send("/topic #maths hello")
    assert bob.lines() == ["[Server] cannot set the topic: you are not in #maths"]
    alice.send("/topic " + "x" * 391)
    assert alice.lines() == ["[Server] cannot set the topic: that topic is 391 bytes: at most 390 fit"]


def test_part_command_tells_where_one_is():
    """/part leaves the current room and says which one is current now."""
    alice, bob = joined(make_factory(), "alice", "bob")
    alice.send("/join #maths")
    bob.send("/join #maths")
    alice.lines(), bob.lines()
    bob.send("/part see you")
    assert bob.lines() == ["[Server] you left #maths; you are talking in #lobby"]
    assert alice.lines() == ["[Server] bob left #maths (see you)"]


def test_rooms_names_and_who():
    """/rooms lists rooms with counts and topics, /names a room's people, /who everyone with rooms."""
    alice, bob = joined(make_factory(), "alice", "bob")
    alice.send("/join #maths")
    alice.send("/topic sums")
    alice.lines()
    bob.send("/rooms")
    assert bob.lines() == ["[Server] 2 rooms:", "[Server]   #lobby (2)", "[Server]   #maths (1): sums"]
    bob.send("/names #maths")
    assert bob.lines() == ["[Server] #maths, 1: alice"]
    bob.send("/names")
    assert bob.lines() == ["[Server] #lobby, 2: alice, bob"]
    bob.send("/who")
    assert bob.lines() == ["[Server] 2 online: alice (#lobby, #maths), bob"]


def test_lock_is_for_admins_and_keeps_others_quiet():
    """/lock by a user is refused; in a locked room only admins post."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    bob.send("/lock #lobby")
    assert bob.lines() == ["[Server] permission denied: /lock is for admins"]
    admin.send("/lock #lobby")
    assert bob.lines() == ["[Server] root1 locked #lobby: only admins post here"]
    bob.send("hello")
    assert bob.lines() == ["[Server] #lobby is locked: only admins post there"]
    assert admin.lines() == ["[Server] root1 locked #lobby: only admins post here"]
    admin.send("quiet please")
    assert bob.lines() == ["root1: quiet please"]
    admin.send("/unlock #lobby")
    bob.lines()
    bob.send("thanks")
    assert admin.lines()[-1] == "bob: thanks"


def test_a_mute_is_told_in_the_rooms_of_the_muted_once():
    """A mute is told once to each person sharing a room with the muted, and not elsewhere."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    carol, dave = (Connection(factory, port=port) for port in (56100, 56101))
    carol.join("carol"), dave.join("dave")
    for member in (bob, carol):
        member.send("/join #maths")
    dave.send("/join #art")
    carol.send("/part #lobby")
    dave.send("/part #lobby")
    for member in (admin, bob, carol, dave):
        member.lines()
    admin.send("/mute bob 10m")
    told = "[Server] bob was muted by root1 for 10m"
    assert admin.lines() == bob.lines() == carol.lines() == [told]
    assert dave.lines() == []


def test_creating_a_room_without_user_rooms_is_refused():
    """Under --no-user-rooms a user's /join of a new room gets one notice."""
    factory = make_factory()
    factory.chat.user_rooms = False
    (alice,) = joined(factory, "alice")
    alice.send("/join #maths")
    assert alice.lines() == ["[Server] cannot join: only admins create rooms here: /rooms lists those there are"]


def test_help_lists_the_room_commands():
    """/help names every room command."""
    (alice,) = joined(make_factory(), "alice")
    alice.send("/help")
    shown = "\n".join(alice.lines())
    for usage in ("/join #ROOM", "/part [#ROOM] [REASON]", "/rooms", "/topic [#ROOM] [TEXT]", "/names [#ROOM]"):
        assert usage in shown
    assert "/lock" not in shown


# The options.


def test_room_options():
    """--room takes names with or without #, once each ignoring case; the limits have their defaults."""
    options = tap.Options()
    assert (options["max-rooms"], options["max-rooms-per-user"]) == (1000, 10)
    options.parseOptions(["--room", "news", "--room", "#Help", "--room", "#NEWS", "--room", "Lobby"])
    assert options["room"] == ["#news", "#Help"] and not options["no-user-rooms"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--room", "no way"], "--room: '#no way' is not a room name"),
        (["--max-rooms", "0"], "--max-rooms must be at least 1"),
        (["--max-rooms-per-user", "x"], "--max-rooms-per-user must be a number"),
        (["--room", "a", "--room", "b", "--max-rooms", "2"], "--max-rooms 2 is fewer than the 3 rooms"),
    ],
)
def test_bad_room_options_are_one_line(arguments, message):
    """A bad room option ends in one line naming the problem."""
    with pytest.raises(SystemExit) as exit:
        tap.Options().parseOptions(arguments)
    assert message in str(exit.value.code)


def test_a_room_described_by_another_process_but_empty_is_not_listed_nor_counted():
    """A topic kept in Redis for a room nobody is in makes no room here once rooms are listed."""
    chat, (alice,) = chat_with("alice")
    chat.room_described("#ghost", "an old topic", False)
    assert chat.find_room("#ghost") is not None
    assert [room.name for room in chat.rooms()] == ["#lobby"]
    assert chat.find_room("#ghost") is None and chat.room_count() == 1
