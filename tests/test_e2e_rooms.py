"""
End-to-end: rooms against the real C{twistd -n wazzap} over loopback, as
nc users see them.
"""

from tests.support import room


def said_and_seen(sender, marker, *readers):
    """
    Have C{sender} say C{marker} and return what each of C{readers} read
    up to it: everything before it has then reached them.
    """
    sender.send(marker)
    return [reader.read_through(marker) for reader in readers]


def test_lines_and_notices_stay_in_their_rooms(server, open_client):
    """Lines and join notices of #maths reach only #maths; lines of another room come marked with its name."""
    alice, bob, carol = room(server, open_client, "alice", "bob", "carol")
    alice.send("/join #maths")
    assert alice.read_until("you joined") == "[Server] you joined #maths. You are the first one here."
    bob.send("/join #Maths")
    assert bob.read_until("you joined") == "[Server] you joined #maths. Also here: alice."
    assert alice.read_until("joined") == "[Server] bob joined #maths"
    alice.send("two plus two")
    assert bob.read_until("two plus") == "alice: two plus two"
    (seen_by_alice, seen_by_bob) = said_and_seen(carol, "hello lobby", alice, bob)
    assert seen_by_alice[-1] == "[#lobby] carol: hello lobby"
    assert seen_by_bob[-1] == "[#lobby] carol: hello lobby"
    alice.send("/join #lobby")
    assert alice.read_until("talking in") == "[Server] you are talking in #lobby"
    (seen_by_carol,) = said_and_seen(alice, "back in the lobby", carol)
    assert seen_by_carol == ["alice: back in the lobby"]
    (seen_by_alice,) = said_and_seen(bob, "still doing sums", alice)
    assert seen_by_alice == ["[#maths] bob: still doing sums"]


def test_part_quit_and_rename_are_heard_once_where_they_happened(server, open_client):
    """Someone sharing two rooms hears a nickname change and a quit once; a room not shared hears nothing."""
    alice, bob, carol, dave = room(server, open_client, "alice", "bob", "carol", "dave")
    for client in (alice, bob, carol):
        client.send("/join #maths")
        client.read_until("you joined")
    dave.send("/join #art")
    dave.read_until("you joined")
    dave.send("/part #lobby")
    assert dave.read_until("you left") == "[Server] you left #lobby; you are talking in #art"
    alice.send("/nick alicia")
    carol.send("/part #maths off to lunch")
    assert carol.read_until("you left") == "[Server] you left #maths; you are talking in #lobby"
    (seen_by_bob,) = said_and_seen(alice, "marker one", bob)
    assert seen_by_bob.count("[Server] alice is now known as alicia") == 1
    assert "[Server] carol left #maths (off to lunch)" in seen_by_bob
    bob.send("/quit bye")
    bob.wait_closed()
    (seen_by_alice,) = said_and_seen(carol, "marker two", alice)
    assert seen_by_alice.count("[Server] bob left the chat (quit: bye)") == 1
    dave.send("/who")
    assert dave.read_through("online:") == [
        "[Server] 3 online: alicia (#lobby, #maths), carol, dave (#art)"
    ]


def test_room_limits_and_bad_input_get_one_notice(start_server, open_client):
    """Rooms per user, rooms on the server, bad names and long topics are refused with a notice."""
    server = start_server("--max-rooms-per-user", "2", "--max-rooms", "3")
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send("/join #a")
    alice.read_until("you joined")
    alice.send("/join #b")
    assert alice.read_until("cannot") == (
        "[Server] cannot join: you are in 2 rooms, the most one may be in: /part one first"
    )
    bob.send("/join #b")
    bob.read_until("you joined")
    bob.send("/join #c #d")
    assert bob.read_until("usage") == "[Server] usage: /join #ROOM"
    bob.send("/part #b")
    bob.read_until("you left")
    alice.send("/part #lobby")
    alice.read_until("you left")
    alice.send("/join #b")
    alice.read_until("you joined")
    bob.send("/join #c")
    assert bob.read_until("cannot") == (
        "[Server] cannot join: the server holds 3 rooms, its most: /rooms lists them"
    )
    bob.send("/join #no way")
    assert bob.read_until("usage") == "[Server] usage: /join #ROOM"
    bob.send("/join #" + "x" * 31)
    assert "is not a room name" in bob.read_until("cannot join")
    bob.send("/part #a")
    assert bob.read_until("cannot") == "[Server] cannot part: you are not in #a"
    bob.send("/topic " + "x" * 391)
    assert bob.read_until("cannot") == (
        "[Server] cannot set the topic: that topic is 391 bytes: at most 390 fit"
    )
    bob.send("/rooms")
    assert bob.read_through("#lobby") == [
        "[Server] 3 rooms:",
        "[Server]   #a (1)",
        "[Server]   #b (1)",
        "[Server]   #lobby (1)",
    ]


def test_operator_rooms_and_no_user_rooms(start_server, open_client):
    """--room makes a permanent room anyone may join; --no-user-rooms refuses users a new one."""
    server = start_server("--room", "news", "--room", "#Help", "--no-user-rooms")
    (alice,) = room(server, open_client, "alice")
    alice.send("/rooms")
    assert alice.read_through("#news") == [
        "[Server] 3 rooms:",
        "[Server]   #lobby (1)",
        "[Server]   #Help (0)",
        "[Server]   #news (0)",
    ]
    alice.send("/join #help")
    assert alice.read_until("you joined") == "[Server] you joined #Help. You are the first one here."
    alice.send("/part")
    alice.read_until("you left")
    alice.send("/join #mine")
    assert alice.read_until("cannot") == (
        "[Server] cannot join: only admins create rooms here: /rooms lists those there are"
    )
    alice.send("/rooms")
    assert alice.read_through("#news")[-2:] == ["[Server]   #Help (0)", "[Server]   #news (0)"]
