"""
The line protocol driven over StringTransport and a Clock: login, chat,
commands, bad input, pacing and output limits, without a reactor.
"""

from twisted.internet import defer
from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure

from zope.interface.verify import verifyObject

from tests.doubles import Connection, joined, make_factory, socket_like
from wazzap.net.input import IInputOwner
from wazzap.net.output import IOutputOwner


def test_the_connection_owns_its_output_queue_and_input_gate():
    """A connection implements what its output queue and input gate tell it."""
    protocol = Connection(make_factory()).protocol
    assert verifyObject(IOutputOwner, protocol)
    assert verifyObject(IInputOwner, protocol)


def test_greets_and_asks_for_a_nickname():
    """A new connection is welcomed and asked for a nickname."""
    connection = Connection(make_factory())
    assert connection.lines() == [
        "[Server] Welcome to wazzap, the terminal chat.",
        "[Server] Choose a nickname (1 to 16 letters, digits, _ or -):",
    ]


def test_invalid_nickname_gets_reason_and_prompt():
    """An invalid nickname is refused with its reason and the prompt again."""
    connection = Connection(make_factory())
    connection.lines()
    connection.send("not valid!")
    lines = connection.lines()
    assert "letters, digits, _ or -" in lines[0]
    assert lines[1].startswith("[Server] Choose a nickname")


def test_nickname_taken_case_insensitively():
    """A nickname online in another case is refused."""
    factory = make_factory()
    joined(factory, "alice")
    newcomer = Connection(factory, port=41000)
    newcomer.lines()
    newcomer.send("ALICE")
    assert "alice is already online" in newcomer.lines()[0]


def test_join_is_announced_and_welcome_names_others():
    """Others hear of a newcomer, and the newcomer's welcome names them."""
    factory = make_factory()
    (alice,) = joined(factory, "alice")
    bob = Connection(factory, port=41000)
    bob.lines()
    bob.send("bob")
    assert "Also here: alice." in bob.lines()[0]
    assert alice.lines() == ["[Server] bob joined the chat"]


def test_public_message_reaches_others_not_sender():
    """A plain line goes to everyone else, prefixed by the sender's nickname."""
    alice, bob, carol = joined(make_factory(), "alice", "bob", "carol")
    for connection in (alice, bob, carol):
        connection.lines()
    alice.send("hello")
    assert bob.lines() == ["alice: hello"]
    assert carol.lines() == ["alice: hello"]
    assert alice.lines() == []


def test_broadcast_writes_identical_bytes():
    """Every recipient of a broadcast gets the very same bytes object."""
    alice, bob, carol = joined(make_factory(), "alice", "bob", "carol")
    writes = []
    bob.transport.write = writes.append
    carol.transport.write = writes.append
    alice.send("hi")
    assert len(writes) == 2 and writes[0] is writes[1]


def test_lines_of_one_turn_are_written_together_in_order():
    """Lines arriving in one turn reach a recipient in one write, in order."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.lines()
    writes = []
    bob.transport.write = writes.append
    alice.protocol.dataReceived(b"one\ntwo\r\nthree\n")
    assert writes == []
    alice.settle()
    assert len(writes) == 1
    assert [line.split(": ")[1] for line in writes[0].decode().splitlines() if ": " in line] == [
        "one", "two", "three"
    ]


def test_private_message_forms():
    """@nick, /msg and /private reach only the target and confirm to the sender."""
    alice, bob, carol = joined(make_factory(), "alice", "bob", "carol")
    for form in ("@bob psst", "/msg bob psst", "/private bob psst"):
        for connection in (alice, bob, carol):
            connection.lines()
        alice.send(form)
        assert bob.lines() == ["[PM from alice] psst"]
        assert alice.lines() == ["[PM to bob] psst"]
        assert carol.lines() == []


def test_private_message_problems():
    """Unknown nicknames, empty texts and oneself get clear notices."""
    (alice,) = joined(make_factory(), "alice")
    alice.send("@ghost hi")
    assert alice.lines() == [
        "[Server] ghost is not online, and not registered: "
        "offline messages need a registered recipient"
    ]
    alice.send("/msg alice hi")
    assert "that is you" in alice.lines()[0]


def test_sanitises_escape_sequences_before_relaying():
    """Escape sequences and controls in a message never reach another user."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.lines()
    alice.send("\x1b[2J\x1b]0;owned\x07hi\x9b31m\u202e there\x07".encode("utf-8"))
    raw = bob.raw()
    assert b"2J" not in raw and b"owned" not in raw and b"\x07" not in raw
    assert b"\xe2\x80\xae" not in raw
    assert b"alice\x1b[0m: hi there\r\n" in raw


def test_invalid_utf8_becomes_replacement_characters():
    """Invalid UTF-8 is shown as U+FFFD and the server carries on."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.lines()
    alice.send(b"caf\xe9 \xc3 ok")
    assert bob.lines() == ["alice: caf\ufffd \ufffd ok"]
    alice.send("still here")
    assert bob.lines() == ["alice: still here"]


def test_blank_lines_are_ignored():
    """Blank and whitespace-only lines produce nothing."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.lines()
    alice.send("   ")
    alice.send("")
    assert bob.lines() == []


def test_overlong_line_refused_rest_discarded():
    """A line over the limit is refused, its tail never runs, and the next line works."""
    factory = make_factory(max_line_bytes=64)
    alice, bob = joined(factory, "alice", "bob")
    alice.lines()
    bob.lines()
    alice.protocol.dataReceived(b"x" * 100)
    alice.protocol.dataReceived(b"/nick hacked\n/who\n")
    alice.settle()
    lines = alice.lines()
    assert "longer than 64 bytes" in lines[0]
    assert lines[1].startswith("[Server] 2 online: alice, bob")
    assert bob.lines() == []


def test_unknown_command_hints_help():
    """An unknown command points to /help."""
    (alice,) = joined(make_factory(), "alice")
    alice.send("/frobnicate")
    assert alice.lines() == ["[Server] unknown command /frobnicate: type /help for the list"]


def test_double_slash_sends_slash_text():
    """//text sends /text as a message."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.lines()
    alice.send("//shrug")
    assert bob.lines() == ["alice: /shrug"]


def test_nick_change_is_announced_and_frees_old_name():
    """/nick tells everyone and the old nickname can be taken at once."""
    factory = make_factory()
    alice, bob = joined(factory, "alice", "bob")
    bob.lines()
    alice.send("/nick alicia")
    assert bob.lines() == ["[Server] alice is now known as alicia"]
    Connection(factory, port=42000).join("alice")


def test_lines_after_nick_wait_while_the_database_answers():
    """A line typed after /nick is said under the new nickname, after the rename, however long the database takes."""
    factory = make_factory()
    alice, bob = joined(factory, "alice", "bob")
    bob.lines()
    answer = defer.Deferred()
    factory.accounts.store.get_account = lambda nickname: answer
    alice.send(b"/nick alicia\nhello after the rename")
    assert bob.lines() == []
    answer.callback(None)
    alice.settle()
    assert bob.lines() == ["[Server] alice is now known as alicia", "alicia: hello after the rename"]


def test_colors_off_sends_plain_bytes():
    """/colors off makes every line plain text, without escape codes."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.send("/colors off")
    bob.raw()
    alice.send("/me waves")
    assert bob.raw() == b"* alice waves\r\n"
    bob.send("/colors on")
    assert b"\x1b[" in bob.raw()


def test_color_command_in_public_and_private():
    """/color colours the text, in public and in private messages."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.raw()
    alice.send("/color red hi")
    assert b"\x1b[31mhi\x1b[0m" in bob.raw()
    alice.send("@bob /color green psst")
    assert b"\x1b[32mpsst\x1b[0m" in bob.raw()
    alice.send("/color mauve hi")
    assert "red, green, yellow, blue, magenta, cyan, white" in alice.lines()[-1]


def test_quit_announces_reason_and_closes():
    """/quit says goodbye, closes, and the room hears the reason."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.lines()
    alice.send("/quit see you")
    assert alice.lines()[-1] == "[Server] Goodbye!"
    assert alice.transport.disconnecting
    alice.close()
    assert bob.lines() == ["[Server] alice left the chat (quit: see you)"]


def test_connection_lost_announced_and_nickname_freed():
    """A reset is announced as lost and frees the nickname."""
    factory = make_factory()
    alice, bob = joined(factory, "alice", "bob")
    bob.lines()
    alice.protocol.connectionLost(Failure(ConnectionLost()))
    factory.clock.advance(0)
    assert bob.lines() == ["[Server] alice left the chat (connection lost)"]
    assert factory.chat.find("alice") is None


def test_flood_is_delayed_not_dropped():
    """Lines over the allowance wait, then all arrive in order."""
    factory = make_factory(flood_burst_lines=3, flood_rate_lines_per_second=10)
    alice, bob = joined(factory, "alice", "bob")
    bob.lines()
    alice.lines()
    alice.send(b"".join(b"line %d\n" % i for i in range(10)), ending=b"")
    assert "too fast" in alice.lines()[0]
    assert alice.transport.producerState == "paused"
    received = bob.lines()
    assert len(received) < 10
    for _ in range(20):
        factory.clock.advance(0.1)
    received += bob.lines()
    assert received == ["alice: line %d" % i for i in range(10)]
    assert alice.transport.producerState == "producing"


def test_slow_consumer_dropped_past_queue_limit():
    """A peer that stops reading is aborted, and leaves, once its queued output passes the limit."""
    factory = make_factory(max_queued_output_bytes=2048)
    alice, bob = joined(factory, "alice", "bob")
    bob.transport.producer.pauseProducing()
    for i in range(100):
        alice.send("message number %d" % i)
    assert bob.transport.disconnecting
    bob.protocol.connectionLost(Failure(ConnectionLost()))
    factory.clock.advance(0)
    assert "alice left" not in "".join(alice.lines())
    assert factory.chat.find("bob") is None


def test_login_timeout_closes_silent_connection():
    """A connection that picks no nickname in time is told and closed."""
    factory = make_factory(login_timeout_seconds=30)
    connection = Connection(factory)
    connection.lines()
    factory.clock.advance(31)
    assert "no nickname chosen in time" in connection.lines()[0]
    assert connection.transport.disconnecting


def test_idle_timeout_disconnects_silent_user():
    """With an idle timeout, a silent user is disconnected; a talking one is not."""
    factory = make_factory(idle_timeout_seconds=60)
    alice, bob = joined(factory, "alice", "bob")
    factory.clock.advance(50)
    alice.send("still here")
    factory.clock.advance(15)
    assert bob.transport.disconnecting
    assert not alice.transport.disconnecting


def test_per_address_limit():
    """Connections over the per-address limit are refused with a message."""
    factory = make_factory(max_connections_per_address=2)
    Connection(factory, port=1)
    Connection(factory, port=2)
    third = Connection(factory, port=3)
    assert b"Too many connections" in third.raw()
    assert third.transport.disconnecting
    assert len(Connection(factory, host="127.0.0.2").raw()) > 0


def test_http_request_answered_and_closed():
    """An HTTP request as first line gets a plain-text HTTP answer and a close."""
    connection = Connection(make_factory())
    connection.raw()
    connection.send("GET / HTTP/1.1", ending=b"\r\n")
    assert connection.raw().startswith(b"HTTP/1.0 400 Bad Request")
    assert connection.transport.disconnecting


def test_tls_client_hello_answered_and_closed():
    """A TLS ClientHello gets a plain-text answer instead of being a nickname."""
    connection = Connection(make_factory())
    connection.raw()
    connection.protocol.dataReceived(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert b"not a web or TLS server" in connection.raw()
    assert connection.transport.disconnecting


def test_shutdown_tells_everyone_and_closes():
    """Shutting down tells every connection and closes them all."""
    factory = make_factory()
    alice, bob = joined(factory, "alice", "bob")
    done = factory.shut_down("server is shutting down")
    assert "[Server] server is shutting down" in alice.lines()
    assert alice.transport.disconnecting and bob.transport.disconnecting
    alice.close()
    bob.close()
    assert done.called


def pending_output(connection, size):
    """
    Make the protocol take its test transport for Twisted's plain TCP
    transport, with C{size} bytes not yet taken by its peer.
    """
    socket_like(connection.transport, pending=size)
    connection.protocol._output._plain = connection.transport


def test_senders_wait_while_a_reader_catches_up():
    """A reader that takes its output, only slowly, holds senders back until it catches up."""
    factory = make_factory()
    alice, bob, carol = joined(factory, "alice", "bob", "carol")
    bob.lines()
    carol.lines()
    pending_output(bob, 100000)
    bob.transport.producer.pauseProducing()
    pending_output(bob, 90000)
    alice.send(b"".join(b"%05d %s\n" % (i, b"x" * 1000) for i in range(300)), ending=b"")
    assert factory.congestion.congested and not bob.transport.disconnecting
    alice.send(b"".join(b"%05d %s\n" % (i, b"x" * 1000) for i in range(300, 400)), ending=b"")
    assert alice.transport.producerState == "paused"
    received = carol.lines()
    assert len(received) == 300
    pending_output(bob, 0)
    bob.transport.producer.resumeProducing()
    factory.clock.advance(0)
    assert not factory.congestion.congested
    assert alice.transport.producerState == "producing"
    received += carol.lines()
    assert [line[len("alice: ") :][:5] for line in received] == ["%05d" % i for i in range(400)]


def test_a_reader_that_stops_holds_nobody_back():
    """A client whose output does not drain is not waited for; it is dropped at its limit."""
    factory = make_factory()
    alice, bob, carol = joined(factory, "alice", "bob", "carol")
    pending_output(bob, 100000)
    bob.transport.producer.pauseProducing()
    carol.lines()
    alice.send(b"".join(b"%05d %s\n" % (i, b"x" * 1000) for i in range(300)), ending=b"")
    assert not factory.congestion.congested
    assert len(carol.lines()) == 300
    assert bob.transport.disconnecting


def test_a_reader_that_stalls_while_catching_up_stops_holding_senders():
    """Once a catching-up client makes no progress for a check period, senders go on."""
    factory = make_factory()
    alice, bob, carol = joined(factory, "alice", "bob", "carol")
    pending_output(bob, 100000)
    bob.transport.producer.pauseProducing()
    pending_output(bob, 90000)
    alice.send("hello")
    assert factory.congestion.congested
    alice.send("held")
    assert alice.transport.producerState == "paused"
    factory.clock.advance(0.3)
    assert not factory.congestion.congested
    assert alice.transport.producerState == "producing"
    assert carol.lines()[-1] == "alice: held"


def test_a_reader_that_keeps_catching_up_holds_senders_back_only_briefly():
    """A reader that drains slowly holds senders back 100 ms, then is skipped and dropped at its limit."""
    factory = make_factory(max_queued_output_bytes=64 * 1024)
    alice, bob, carol = joined(factory, "alice", "bob", "carol")
    carol.lines()
    pending = 100000
    pending_output(bob, pending)
    bob.transport.producer.pauseProducing()
    sent = 0
    while factory.clock.seconds() < 0.09:
        pending -= 1000  # bob always takes a little: it is catching up
        pending_output(bob, pending)
        alice.send("line %d %s" % (sent, "x" * 1000))
        sent += 1
        factory.clock.advance(0.01)
    assert factory.congestion.congested and alice.transport.producerState == "paused"
    factory.clock.advance(0.02)
    assert not factory.congestion.congested and alice.transport.producerState == "producing"
    while not bob.transport.disconnecting and sent < 200:
        pending -= 1000
        pending_output(bob, pending)
        alice.send("line %d %s" % (sent, "x" * 1000))
        sent += 1
        assert not factory.congestion.congested
    assert bob.transport.disconnecting
    assert len(carol.lines()) == sent


def test_lines_for_a_dropped_consumer_are_discarded_quietly():
    """Lines given to a client in the turn it is dropped are discarded without an error."""
    factory = make_factory()
    (bob,) = joined(factory, "bob")
    bob.transport.producer.pauseProducing()
    bob.protocol.notice("queued before the drop")
    bob.protocol.send(b"x" * (factory.limits.max_queued_output_bytes + 1))
    assert bob.transport.disconnecting
    bob.protocol.notice("queued after the drop, in the same turn")
    bob.transport.clear()
    factory.clock.advance(0)
    assert bob.transport.value() == b""


def test_one_failing_flush_does_not_stop_the_others():
    """A connection whose output fails to flush does not keep others' output from being written."""
    from wazzap.flow import TurnFlusher
    from twisted.internet.task import Clock

    clock = Clock()
    flusher = TurnFlusher(clock)
    flushed = []

    class Broken:
        def flush_output(self):
            raise RuntimeError("broken")

    class Fine:
        def flush_output(self):
            flushed.append(self)

    flusher.schedule(Broken())
    flusher.schedule(Fine())
    clock.advance(0)
    flusher.schedule(Fine())
    clock.advance(0)
    assert len(flushed) == 2


def test_line_limit_counts_the_line_ending():
    """A line of exactly --max-line-bytes, its ending included, is accepted; one byte more is not."""
    factory = make_factory(max_line_bytes=64)
    alice, bob = joined(factory, "alice", "bob")
    bob.lines()
    for body, ending in ((b"a" * 63, b"\n"), (b"b" * 62, b"\r\n")):
        alice.send(body, ending=ending)
        assert bob.lines() == ["alice: " + body.decode()]
    for body, ending in ((b"c" * 64, b"\n"), (b"d" * 63, b"\r\n")):
        alice.lines()
        alice.send(body, ending=ending)
        assert "longer than 64 bytes" in alice.lines()[0]
        assert bob.lines() == []


def test_a_connection_lost_while_it_catches_up_reads_nothing_more():
    """A client lost while it catches up, with a line held by congestion, has that line dropped."""
    factory = make_factory()
    alice, bob, carol = joined(factory, "alice", "bob", "carol")
    for reader in (bob, carol):
        pending_output(reader, 100000)
        reader.transport.producer.pauseProducing()
        pending_output(reader, 90000)
    bob.protocol.send(b"catching up\r\n")
    carol.send("held by bob")
    carol.protocol.send(b"catching up too\r\n")
    assert factory.congestion.holds_back(alice.protocol)
    pending_output(bob, 0)
    bob.transport.producer.resumeProducing()
    bob.lines()
    carol.protocol.connectionLost(Failure(ConnectionLost()))
    factory.clock.advance(1)
    assert bob.lines() == ["[Server] carol left the chat (connection lost)"]


def test_each_flood_is_told_once():
    """The sender is told of the slow-down once a flood, and again at a later flood."""
    factory = make_factory(flood_burst_lines=2, flood_rate_lines_per_second=1)
    alice, _ = joined(factory, "alice", "bob")
    for flood in ("l", "m"):
        for i in range(5):
            alice.protocol.dataReceived(b"%s%d\n" % (flood.encode(), i))
        for _ in range(10):
            factory.clock.advance(1)
    told = [line for line in alice.lines() if "sending too fast" in line]
    assert len(told) == 2
