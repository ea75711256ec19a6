"""
The IRC listener over StringTransport and a Clock: registration (CAP, PASS,
NICK, USER), the numerics, PING/PONG timing, channels, messages both ways
with the line listener, formatting, the errors, and the admin commands.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.behaviour import SERVER_NAME, IrcAdapter, LineAdapter, World
from tests.doubles import add_account
from wazzap.listeners.irc import wire
from wazzap.text import strip_styles
from wazzap.listeners.irc.connection import DROP_AFTER_SECONDS, PING_AFTER_SECONDS, IrcFactory


def irc_and_line(**limits):
    world = World(**limits)
    return world, IrcAdapter(world), LineAdapter(world)


def numerics(lines):
    return [line.split(" ")[1] for line in lines if line.startswith(":" + SERVER_NAME + " ")]


def test_registration_answers_cap_and_welcomes_with_isupport():
    """CAP LS is answered and CAP REQ refused; 001 to 005 (with ISUPPORT), 422 and the JOIN of #lobby follow."""
    world, irc, _ = irc_and_line()
    client = irc.connect()
    client.send("CAP LS 302")
    assert client.lines() == [":irc.test CAP * LS :"]
    client.send("NICK alice", "USER alice 0 * :Alice")
    assert client.lines() == []  # registration waits for CAP END
    client.send("CAP REQ :multi-prefix sasl")
    assert client.lines() == [":irc.test CAP * NAK :multi-prefix sasl"]
    client.send("CAP END")
    lines = client.lines()
    assert numerics(lines)[:6] == ["001", "002", "003", "004", "005", "422"]
    isupport = lines[4]
    for token in ("CHANTYPES=#", "NICKLEN=16", "CHANNELLEN=31", "TOPICLEN=390",
                  "CASEMAPPING=ascii", "NETWORK=wazzap"):
        assert token in isupport.split()
    assert ":alice!alice@wazzap JOIN #lobby" in lines
    assert ":irc.test 353 alice = #lobby :alice" in lines


def test_motd_is_sent_as_numerics():
    """A MOTD is 375, one 372 per line, 376."""
    world, irc, _ = irc_and_line()
    world.factory.motd_lines = ("Be kind.",)
    client = irc.connect()
    client.send("NICK alice", "USER alice 0 * :Alice")
    lines = client.lines()
    assert ":irc.test 372 alice :- Be kind." in lines
    assert "376" in numerics(lines)


def test_commands_before_registration_get_451():
    """A command other than the registration ones before registering gets 451, not a crash."""
    world, irc, _ = irc_and_line()
    client = irc.connect()
    client.send("JOIN #maths")
    assert client.lines() == [":irc.test 451 * JOIN :You have not registered"]


def test_bad_and_taken_nicknames_get_432_and_433():
    """An invalid nickname gets 432, a taken one 433, and another NICK then registers."""
    world, irc, line = irc_and_line()
    line.join("bob")
    client = irc.connect()
    client.send("NICK b@d", "USER x 0 * :x")
    assert numerics(client.lines()) == ["432"]
    client.send("NICK bob")
    assert numerics(client.lines()) == ["433"]
    client.send("NICK alice")
    assert "001" in numerics(client.lines())


def test_registered_nickname_needs_pass_and_takes_nick_colon_password():
    """A registered nickname needs PASS; PASS nick:password logs in whatever NICK says; a wrong one gets 464."""
    world, irc, _ = irc_and_line()
    add_account(world.factory, "alice", "correct horse")
    client = irc.connect()
    client.send("NICK alice", "USER a 0 * :a")
    assert numerics(client.lines()) == ["433"]
    client = irc.connect()
    client.send("PASS :alice:correct horse", "NICK guest123", "USER a 0 * :a")
    lines = client.lines()
    assert "not encrypted" in lines[0]  # the warning of a password sent in the clear
    assert lines[1].startswith(":irc.test 001 alice ")
    assert world.factory.chat.find("alice").account == "alice"
    wrong = irc.connect()
    wrong.send("PASS :nope", "NICK alice", "USER a 0 * :a")
    assert "464" in numerics(wrong.lines())
    assert wrong.closed()


def test_server_pings_after_silence_and_drops_after_more():
    """The server pings after 90 s of silence, a PONG keeps the client, and 150 s of silence drops it."""
    world, irc, line = irc_and_line()
    watcher = line.join("bob")
    client = irc.join("alice")
    world.clock.advance(PING_AFTER_SECONDS)
    assert client.lines() == ["PING :irc.test"]
    client.send("PONG :irc.test")
    world.clock.advance(DROP_AFTER_SECONDS - 1)
    assert not client.closed()
    world.clock.advance(1)
    assert client.lines()[-1].startswith("ERROR :disconnected: ping timeout")
    assert client.closed()
    client.lose_connection()
    assert ("left", "alice") in watcher.heard()


def test_client_ping_gets_pong_with_its_token():
    """PING TOKEN is answered with PONG naming the server and echoing the token."""
    world, irc, _ = irc_and_line()
    client = irc.join("alice")
    client.send("PING :LAG123")
    assert client.lines() == [":irc.test PONG irc.test :LAG123"]


def test_errors_for_unknown_commands_missing_parameters_and_nicks():
    """421, 461, 401, 403 and 404 come where a serious server sends them."""
    world, irc, _ = irc_and_line()
    client = irc.join("alice")
    client.send("FROB", "JOIN", "WHOIS nobody", "PART #nowhere", "JOIN bad", "PRIVMSG #lobby")
    assert numerics(client.lines()) == ["421", "461", "401", "318", "403", "403", "412"]
    other = irc.join("bob")
    other.send("JOIN #maths")
    client.send("PRIVMSG #maths :hi")
    assert numerics(client.lines()) == ["404"]


def test_long_lines_get_417_and_the_next_line_still_works():
    """A line over 512 bytes gets 417 and nothing else; the line after it is handled."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    client = irc.join("alice")
    client.send("PRIVMSG #lobby :" + "x" * 600, "PRIVMSG #lobby :short")
    assert numerics(client.lines()) == ["417"]
    assert bob.heard()[-1] == ("said", "alice", "short")


def test_invalid_and_split_utf8_never_raises():
    """Invalid UTF-8, and a character split across two reads, are read without an error."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    client = irc.join("alice")
    data = "PRIVMSG #lobby :caf\u00e9\r\n".encode("utf-8")
    client.protocol.dataReceived(data[:-4])
    client.protocol.dataReceived(data[-4:] + b"PRIVMSG #lobby :\xff\xfe!\r\n")
    world.settle()
    assert said_by(bob.heard()) == [("said", "alice", "caf\u00e9"), ("said", "alice", "\ufffd\ufffd!")]


def said_by(told):
    return [event for event in told if event[0] == "said"]


def test_irc_formatting_is_stripped_for_line_users():
    """Bold, colours and the rest of IRC's formatting never reach line users."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    client = irc.join("alice")
    bob.heard()
    client.say("\x02bold\x02 \x0304,01red\x03 \x1ditalic\x1d\x0f")
    assert bob.heard() == [("said", "alice", "bold red italic")]
    assert "\x1b" not in bob.transport.value().decode()


def test_color_becomes_mirc_colour_and_long_text_is_split():
    """/color text reaches IRC in mIRC colours, and a 3000-byte line arrives as lines of at most 512 bytes."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    client = irc.join("alice")
    bob.say("/color red danger")
    assert client.lines() == [":bob!bob@wazzap PRIVMSG #lobby :\x0305danger\x03"]
    bob.say("y" * 3000)
    data = client.transport.value()
    lines = data.split(b"\r\n")[:-1]
    assert all(len(piece) + 2 <= wire.MAX_LINE_BYTES for piece in data.split(b"\r\n"))
    assert "".join(l.decode().split(" :", 1)[1] for l in lines) == "y" * 3000


def test_actions_map_to_ctcp_both_ways_without_an_echo():
    """CTCP ACTION becomes /me for line users, /me becomes CTCP ACTION, and the IRC sender gets no echo."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    client = irc.join("alice")
    client.say("\x01ACTION waves\x01")
    assert "* alice waves" in bob.connection.lines()
    assert client.lines() == []
    bob.say("/me claps")
    assert client.lines() == [":bob!bob@wazzap PRIVMSG #lobby :\x01ACTION claps\x01"]


def test_join_part_names_topic_list_who_and_mode():
    """JOIN echoes with topic and names, PART echoes, and the queries answer."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    bob.say("/join #maths")
    bob.say("/topic #maths sums")
    client = irc.join("alice")
    client.send("JOIN #maths")
    lines = client.lines()
    assert lines[0] == ":alice!alice@wazzap JOIN #maths"
    assert ":irc.test 332 alice #maths :sums" in lines
    assert ":irc.test 353 alice = #maths :alice bob" in lines
    assert ("joined", "alice") in bob.heard()
    client.send("LIST", "WHO #maths", "MODE #maths", "MODE alice", "NAMES #maths", "TOPIC #maths")
    assert numerics(client.lines()) == [
        "321", "322", "322", "323", "352", "352", "315", "324", "221", "353", "366", "332"
    ]
    client.send("PART #maths :bye")
    assert client.lines() == [":alice!alice@wazzap PART #maths"]
    assert ("left", "alice") in bob.heard()


def test_a_topic_set_anywhere_reaches_irc_as_a_topic_message():
    """A topic set or cleared by a line user reaches an IRC client as TOPIC, which its topic bar shows."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    client = irc.join("alice")
    client.lines()
    bob.say("/topic #lobby sums and proofs")
    assert client.lines() == [":bob!bob@wazzap TOPIC #lobby :sums and proofs"]
    bob.say("/topic #lobby -")
    assert client.lines() == [":bob!bob@wazzap TOPIC #lobby :"]
    client.send("TOPIC #lobby :from irc")
    assert client.lines() == [":alice!alice@wazzap TOPIC #lobby :from irc"]
    assert ("notice", "alice set the topic of #lobby: from irc") in bob.heard()


def test_privmsg_to_a_channel_goes_to_that_channel():
    """A PRIVMSG to one of the user's channels reaches that room, not the one it talked in last."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    client = irc.join("alice")
    client.send("JOIN #maths")
    client.send("PRIVMSG #lobby :in the lobby")
    bob.heard()
    bob.say("/join #maths")
    bob.heard()
    client.send("PRIVMSG #maths :in maths", "PRIVMSG #lobby :in lobby again")
    text = strip_styles(bob.connection.raw().decode())
    assert "alice: in maths" in text and "[#lobby] alice: in lobby again" in text


def test_nick_and_quit_are_heard_by_line_users():
    """NICK renames for everyone; QUIT with a reason is heard with it."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    client = irc.join("alice")
    bob.heard()
    client.send("NICK alicia")
    assert client.lines() == [":alice!alice@wazzap NICK :alicia"]
    assert bob.heard() == [("renamed", "alice", "alicia")]
    client.send("QUIT :off to bed")
    assert client.lines() == ["ERROR :Goodbye!"]
    client.lose_connection()
    assert "alicia left the chat (quit: off to bed)" in bob.transport.value().decode()


def test_kick_needs_an_admin_and_then_kicks():
    """KICK from someone not an admin gets 482; an admin's KICK disconnects its target."""
    world, irc, line = irc_and_line()
    add_account(world.factory, "boss", "correct horse", admin=True)
    bob = line.join("bob")
    mallory = irc.join("mallory")
    mallory.send("KICK #lobby bob :go")
    assert numerics(mallory.lines()) == ["482"]
    assert not bob.closed()
    boss = irc.join("boss", password="correct horse")
    boss.send("KICK #lobby mallory :spam")
    assert mallory.closed()
    assert "kicked by boss" in mallory.lines()[-1]


def test_wazzap_commands_as_raw_commands_and_to_the_service_nick():
    """Any wazzap command is a raw command (/quote WHO), or a line sent to the wazzap service nick."""
    world, irc, line = irc_and_line()
    line.join("bob")
    client = irc.join("alice")
    client.send("ROOMS")
    assert any("#lobby (2)" in line for line in client.lines())
    client.send("PRIVMSG wazzap :/names")
    assert client.lines() == [":irc.test NOTICE alice :#lobby, 2: alice, bob"]


def test_register_through_the_service_keeps_the_password_exactly():
    """/register through the service nick registers the password as sent, so PASS logs in with it."""
    world, irc, _ = irc_and_line()
    client = irc.join("alice")
    client.send("PRIVMSG wazzap :/register  pass word ")
    assert any("registered" in line for line in client.lines())
    client.send("QUIT")
    client.lose_connection()
    again = irc.connect()
    again.send("PASS :pass word", "NICK alice", "USER a 0 * :a")
    assert "001" in numerics(again.lines())


def test_irc_connections_are_counted_and_shut_down_with_the_server():
    """IRC connections count among the server's and are closed by its shutdown."""
    world, irc, line = irc_and_line()
    line.join("bob")
    client = irc.join("alice")
    assert world.factory.counts.connections == 2
    world.factory.shut_down("the server is shutting down")
    world.settle()
    assert client.closed()
    assert client.lines()[-1] == "ERROR :the server is shutting down"


def test_an_irc_newcomer_waits_for_approval_and_joins_when_approved():
    """With --approve-joins an IRC newcomer waits unregistered, then an admin's /approve welcomes it."""
    world = World(approve_joins=True)
    irc, line = IrcAdapter(world), LineAdapter(world)
    add_account(world.factory, "boss", "correct horse", admin=True)
    boss = line.join("boss", password="correct horse")
    client = irc.connect()
    client.send("NICK alice", "USER a 0 * :a")
    assert any("approval" in line for line in client.lines())
    assert any("alice" in event[1] and "asks to join" in event[1] for event in boss.heard())
    client.send("NICK other", "PRIVMSG #lobby :let me in")
    assert numerics(client.lines()) == ["451"]
    boss.say("/approve alice")
    lines = client.lines()
    assert "001" in numerics(lines)
    assert ":alice!alice@wazzap JOIN #lobby" in lines


def test_an_admin_waiting_list_command_works_as_a_raw_command():
    """Admin commands such as PENDING are raw commands, refused to others."""
    world, irc, line = irc_and_line()
    client = irc.join("alice")
    client.send("PENDING")
    assert client.lines() == [":irc.test NOTICE alice :permission denied: /pending is for admins"]


def test_irc_options_take_ports_and_a_server_name():
    """--irc-port and --irc-tls-port take numbers or endpoints; --server-name defaults to the host name."""
    import socket

    from wazzap.app import tap

    options = tap.Options()
    options.parseOptions(["--irc-port", "6667", "--irc-tls-port", "tcp:6697:interface=127.0.0.1",
                          "--tls-cert", "c.pem", "--tls-key", "k.pem", "--server-name", "chat.x"])
    assert options["irc-port"] == ["tcp:6667"]
    assert options["irc-tls-port"] == ["tcp:6697:interface=127.0.0.1"]
    assert options["server-name"] == "chat.x"
    assert IrcFactory(World().factory).server_name == socket.gethostname()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--irc-tls-port", "6697"], "--irc-tls-port needs --tls-cert and --tls-key"),
        (["--irc-tls-port", "ssl:6697", "--tls-cert", "c", "--tls-key", "k"],
         "--irc-tls-port 'ssl:6697': give a port or a tcp: endpoint; wazzap adds the TLS"),
        (["--irc-port", "tcp:nope"], "--irc-port 'tcp:nope' is not a port or endpoint"),
    ],
)
def test_bad_irc_options_are_one_line(arguments, message):
    """Each bad IRC option ends in one line naming the problem."""
    from wazzap.app import tap

    with pytest.raises(SystemExit) as exit:
        tap.Options().parseOptions(arguments)
    text = str(exit.value.code)
    assert message in text and "\n" not in text


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=8))
def test_any_bytes_never_break_a_connection(chunks):
    """Whatever bytes arrive, in whatever chunks, nothing raises and the next line still works."""
    world, irc, line = irc_and_line()
    bob = line.join("bob")
    client = irc.join("alice")
    for chunk in chunks:
        client.protocol.dataReceived(chunk.replace(b"QUIT", b"QUI"))
        world.settle()
    client.send("", "PRIVMSG #lobby :still here")
    assert not client.closed()
    assert ("said", "alice", "still here") in bob.heard()
