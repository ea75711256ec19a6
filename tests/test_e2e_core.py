"""
End-to-end: the core chat, spoken to the real C{twistd -n wazzap} over real
loopback sockets, byte for byte as nc or telnet would.

Every wait is bounded; a check that something did I{not} arrive waits for a
later line that the server is bound to send after it (a "sentinel"), so it
is both certain and quick.
"""

import re
import signal
import socket
import subprocess
import time

import pytest

from tests.support import TIMEOUT, assert_clean_output, child_environment, room, twistd_path


# Joining and leaving


def test_joins_are_announced_and_welcome_names_who_is_online(start_server, open_client):
    """
    Each join is announced to those already in and the welcome names everyone online.
    """
    server = start_server()
    alice = open_client(server)
    alice.read_until("Choose a nickname")
    alice.send("alice")
    assert "You are the first one here" in alice.read_until("Welcome, alice!")
    bob = open_client(server)
    bob.read_until("Choose a nickname")
    bob.send("bob")
    assert "Also here: alice." in bob.read_until("Welcome, bob!")
    assert alice.read_until("joined the chat") == "[Server] bob joined the chat"
    carol = open_client(server)
    carol.read_until("Choose a nickname")
    carol.send("carol")
    assert "Also here: alice, bob." in carol.read_until("Welcome, carol!")
    assert alice.read_until("joined the chat") == "[Server] carol joined the chat"
    assert bob.read_until("joined the chat") == "[Server] carol joined the chat"


def test_quit_with_reason_is_announced(start_server, open_client):
    """
    /quit bye says goodbye, closes the connection and tells the room "(quit: bye)".
    """
    server = start_server()
    alice, bob, carol = room(server, open_client, "alice", "bob", "carol")
    alice.send("/quit bye")
    assert any("Goodbye" in line for line in alice.wait_closed(TIMEOUT))
    assert bob.read_until("left the chat") == "[Server] alice left the chat (quit: bye)"
    assert carol.read_until("left the chat") == "[Server] alice left the chat (quit: bye)"


def test_quit_aliases(start_server, open_client):
    """
    /quit, /leave and /exit all leave the chat and are announced as a quit.
    """
    server = start_server()
    alice, *others = room(server, open_client, "alice", "bob", "carol", "dave")
    for user, command in zip(others, ["/quit", "/leave", "/EXIT"]):
        user.send(command)
        assert any("Goodbye" in line for line in user.wait_closed(TIMEOUT))
    lines = [line for line in alice.read_through("dave left") if "left" in line]
    expected = ["[Server] %s left the chat (quit)" % (name,) for name in ("bob", "carol", "dave")]
    assert lines == expected


def test_eof_and_reset_are_announced_differently(start_server, open_client):
    """
    A half-close or close is "(connection closed)", a TCP reset "(connection lost)".
    """
    server = start_server()
    alice, bob, carol, dave = room(server, open_client, "alice", "bob", "carol", "dave")
    bob.sock.shutdown(socket.SHUT_WR)
    assert alice.read_until("bob left") == "[Server] bob left the chat (connection closed)"
    # Closing with unread data makes the kernel send a reset: read it all first.
    carol.read_until("bob left")
    carol.close()
    assert alice.read_until("carol left") == "[Server] carol left the chat (connection closed)"
    dave.read_until("carol left")
    dave.reset()
    assert alice.read_until("dave left") == "[Server] dave left the chat (connection lost)"


# Talking


def test_public_message_reaches_everyone_but_the_sender(start_server, open_client):
    """
    A public line reaches every other user, prefixed by the sender's nickname, but not the sender.
    """
    server = start_server()
    alice, bob, carol = room(server, open_client, "alice", "bob", "carol")
    alice.send("hello everyone")
    assert bob.read_until("hello everyone") == "alice: hello everyone"
    assert carol.read_until("hello everyone") == "alice: hello everyone"
    alice.send("/who")
    assert not [line for line in alice.read_through("online:") if "hello everyone" in line]


def test_me_shows_an_action_to_everyone(start_server, open_client):
    """
    /me waves shows "* alice waves" to the room, the sender included.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send("/me waves")
    assert bob.read_until("waves") == "* alice waves"
    assert alice.read_until("waves") == "* alice waves"


def test_who_and_its_aliases_list_everyone(start_server, open_client):
    """
    /who, /users and /online list every nickname online with their count.
    """
    server = start_server()
    carol, alice, bob = room(server, open_client, "carol", "Alice", "bob")
    for command in ("/who", "/users", "/online", "/WHO"):
        carol.send(command)
        assert carol.read_until("online") == "[Server] 3 online: Alice, bob, carol", command


def test_lines_ending_in_lf_or_crlf_work_and_blank_lines_are_ignored(start_server, open_client):
    """
    nc's LF and telnet's CR LF both end a line; blank and whitespace-only lines do nothing.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    carol = open_client(server)
    carol.join("carol", ending=b"\r\n")
    assert bob.read_until("joined") == "[Server] carol joined the chat"
    alice.send("with crlf", ending=b"\r\n")
    alice.send("with lf", ending=b"\n")
    alice.send_raw(b"\n\r\n   \n\t\r\n \t \n")
    alice.send("after blanks")
    lines = bob.read_through("after blanks")
    assert [line for line in lines if line.startswith("alice")] == [
        "alice: with crlf",
        "alice: with lf",
        "alice: after blanks",
    ]
    assert bob.raw.count(b"\r\n") == bob.raw.count(b"\n")
    alice.send("/who")
    lines = alice.read_through("online:")
    assert not [line for line in lines if "unknown" in line or "usage" in line], lines


# Nicknames


def test_nick_change_is_announced_and_frees_the_old_name(start_server, open_client):
    """
    /nick is announced to the room and the old nickname can be taken at once.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send("/nick alicia")
    assert bob.read_until("known as") == "[Server] alice is now known as alicia"
    assert alice.read_until("known as") == "[Server] alice is now known as alicia"
    newcomer = open_client(server)
    assert "Welcome, alice!" in newcomer.join("alice")
    alice.send("hi from alicia")
    assert bob.read_until("hi from alicia") == "alicia: hi from alicia"
    bob.send("/who")
    assert bob.read_until("online") == "[Server] 3 online: alice, alicia, bob"


def test_nick_change_to_a_taken_or_invalid_name_is_refused(start_server, open_client):
    """
    /nick to a name online in another case, reserved or malformed is refused with a reason.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    for wanted in ("BOB", "Server", "way_too_long_nickname", "bad!name"):
        alice.send("/nick " + wanted)
        notice = alice.read_until("[Server]")
        assert "nickname" in notice, notice
    alice.send("/who")
    assert alice.read_until("online") == "[Server] 2 online: alice, bob"


REFUSED_NICKNAMES = [
    ("a" * 17, "1 to 16"),
    ("two words", "letters, digits"),
    ("bad!", "letters, digits"),
    ("caf\u00e9", "letters, digits"),
    ("Server", "reserved"),
    ("server", "reserved"),
    ("ALICE", "already online"),
]


def test_refused_nickname_gets_a_reason_and_a_new_prompt(start_server, open_client):
    """
    A refused nickname is answered with why and the prompt again, and a good one then works.
    """
    server = start_server()
    (alice,) = room(server, open_client, "alice")
    newcomer = open_client(server)
    newcomer.read_until("Choose a nickname")
    for nickname, reason in REFUSED_NICKNAMES:
        newcomer.send(nickname)
        refusal = newcomer.read_until("[Server]")
        assert refusal.startswith("[Server] Sorry") and reason in refusal, (nickname, refusal)
        assert "Choose a nickname" in newcomer.read_until("[Server]")
    newcomer.send("dave")
    newcomer.read_until("Welcome, dave!")
    lines = alice.read_through("joined the chat")
    assert lines[-1] == "[Server] dave joined the chat", lines


def test_nobody_reads_the_room_before_joining(start_server, open_client):
    """
    A connection still at the nickname prompt receives nothing said in the room.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    lurker = open_client(server)
    lurker.read_until("Choose a nickname")
    lurker.send("alice")
    lurker.read_until("Choose a nickname")
    alice.send("secret before the join")
    alice.send("/me whispers")
    bob.read_until("whispers")
    lurker.send("lurker")
    lurker.read_until("Welcome, lurker!")
    alice.send("after the join")
    lines = lurker.read_through("after the join")
    assert not [line for line in lines if "secret" in line or "whispers" in line], lines


# Private messages


def test_private_message_reaches_only_its_target(start_server, open_client):
    """
    @bob, /msg bob and /private bob reach only bob, and the sender gets a confirmation.
    """
    server = start_server()
    alice, bob, carol = room(server, open_client, "alice", "bob", "carol")
    forms = ["@bob psst {n}", "/msg bob psst {n}", "/private bob psst {n}", "/MSG Bob psst {n}"]
    for n, form in enumerate(forms):
        alice.send(form.format(n=n))
        assert bob.read_until("psst") == "[PM from alice] psst %d" % (n,), form
        assert alice.read_until("psst") == "[PM to bob] psst %d" % (n,), form
    alice.send("sentinel")
    assert not [line for line in carol.read_through("alice: sentinel") if "psst" in line]


PRIVATE_PROBLEMS = [
        ("@nobody hi", ("nobody",)),
        ("/msg nobody hi", ("nobody",)),
        ("@bob", ("empty", "usage")),
        ("/msg bob", ("empty", "usage")),
        ("/msg bob    ", ("empty", "usage")),
        ("/private bob", ("empty", "usage")),
        ("@alice hi", ("you",)),
        ("/msg ALICE hi", ("you",)),
        ("/msg", ("usage",)),
]


def test_private_message_problems_get_a_clear_notice(start_server, open_client):
    """
    A private message to nobody, with no text or to oneself gets a notice and goes nowhere.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    for command, keywords in PRIVATE_PROBLEMS:
        alice.send(command)
        notice = alice.read_until("[Server]")
        assert any(keyword in notice for keyword in keywords), (command, notice)
    alice.send("sentinel")
    lines = bob.read_through("alice: sentinel")
    assert lines == ["alice: sentinel"], lines


# Commands


def test_help_lists_commands_and_explains_one(start_server, open_client):
    """
    /help lists every command and /help msg explains /msg.
    """
    server = start_server()
    (alice,) = room(server, open_client, "alice")
    alice.send("/help")
    alice.send("/who")
    listing = "\n".join(alice.read_through("online:"))
    for command in ("/help", "/who", "/nick", "/me", "/msg", "/quit", "/colors", "/color"):
        assert command in listing, (command, listing)
    alice.send("/help msg")
    alice.send("/who")
    explanation = alice.read_through("online:")[:-1]
    assert explanation and all(line.startswith("[Server]") for line in explanation)
    assert "/msg NICK" in "\n".join(explanation)
    assert "/quit" not in "\n".join(explanation)


def test_unknown_command_gets_a_hint(start_server, open_client):
    """
    An unknown /command is answered with a hint to /help and is not sent to the room.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send("/frobnicate now")
    notice = alice.read_until("[Server]")
    assert "frobnicate" in notice and "/help" in notice, notice
    alice.send("sentinel")
    assert bob.read_through("alice: sentinel") == ["alice: sentinel"]


def test_double_slash_sends_text_starting_with_a_slash(start_server, open_client):
    """
    //text sends "/text" to the room as it is.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    for message in ("/shrug", "/quit is not a command here", "//"):
        alice.send("/" + message)
        assert bob.read_until("alice:") == "alice: " + message


def test_double_slash_text_starting_with_color_is_sent_as_it_is(start_server, open_client):
    """
    //colorful day sends "/colorful day", not a /color usage error.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send("//colorful day")
    alice.send("//colors are nice")
    alice.send("sentinel")
    lines = bob.read_through("alice: sentinel")
    assert lines == ["alice: /colorful day", "alice: /colors are nice", "alice: sentinel"], lines


def test_colors_off_gives_plain_lines_and_on_brings_them_back(start_server, open_client):
    """
    After /colors off no ESC byte reaches that user; after /colors on colours return.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    assert b"\x1b[" in bob.raw
    bob.send("/colors off")
    bob.read_until("colours are off")
    alice.send("/me plainly waves")
    alice.send("plain please")
    bob.read_until("plain please")
    plain = bob.raw[bob.raw.index(b"colours are off") :]
    assert b"alice: plain please" in plain and b"* alice plainly waves" in plain
    assert b"\x1b" not in plain, plain
    bob.send("/colors on")
    bob.read_until("colours are on")
    alice.send("colour again")
    bob.read_until("colour again")
    colored = bob.raw[bob.raw.index(b"colours are on") :]
    assert re.search(rb"\x1b\[[0-9;]+malice\x1b\[0m: colour again", colored), colored


def test_color_command_colours_a_public_and_a_private_message(start_server, open_client):
    """
    /color red hi and @bob /color red hi send "hi" in red, to the room and privately.
    """
    server = start_server()
    alice, bob, carol = room(server, open_client, "alice", "bob", "carol")
    alice.send("/color red hi there")
    assert bob.read_until("hi there") == "alice: hi there"
    assert b"\x1b[31mhi there\x1b[0m" in bob.raw
    alice.send("@bob /color red private hi")
    assert bob.read_until("private hi") == "[PM from alice] private hi"
    assert b"\x1b[31mprivate hi\x1b[0m" in bob.raw
    alice.send("/color mauve nope")
    assert "usage" in alice.read_until("[Server]")
    alice.send("sentinel")
    lines = carol.read_through("alice: sentinel")
    assert lines == ["alice: hi there", "alice: sentinel"], lines


# Bad input


@pytest.mark.parametrize("limit", [None, 1024])
def test_over_long_line_is_refused_and_its_tail_never_runs(start_server, open_client, limit):
    """
    A line over the limit gets a notice, is not sent, and no part of it runs as a command.
    """
    server = start_server(*(["--max-line-bytes", str(limit)] if limit else []))
    limit = limit or 4096
    alice, bob = room(server, open_client, "alice", "bob")
    for tail in (b"/nick hacked", b"/quit", b"\r/nick hacked2"):
        alice.send_raw(b"x" * limit + tail + b"\n")
        notice = alice.read_until("[Server]")
        assert str(limit) in notice and "longer" in notice, notice
    alice.send_raw(b"y" * (limit * 3) + b"/nick hacked3\r\n")
    assert str(limit) in alice.read_until("[Server]")
    # A line just under the limit still goes through whole.
    alice.send("z" * (limit - 10))
    alice.send("still here")
    lines = bob.read_through("alice: still here")
    assert lines == ["alice: " + "z" * (limit - 10), "alice: still here"], [l[:60] for l in lines]
    bob.send("/who")
    assert bob.read_until("online") == "[Server] 2 online: alice, bob"


def test_over_long_line_sent_in_pieces_is_discarded_to_its_end(start_server, open_client):
    """
    An over-long line written in several pieces gets one notice and its tail never runs.
    """
    server = start_server("--max-line-bytes", "1024")
    alice, bob = room(server, open_client, "alice", "bob")
    for piece in (b"a" * 700, b"a" * 700, b"b" * 2000, b" /nick hacked", b" /quit\n"):
        alice.send_raw(piece)
        time.sleep(0.05)
    alice.send("/me is still here")
    lines = alice.read_through("is still here")
    assert len([line for line in lines if "longer than 1024" in line]) == 1, lines
    assert not [line for line in lines if "hacked" in line or "Goodbye" in line], lines
    assert bob.read_through("is still here") == ["* alice is still here"]


def test_invalid_utf8_becomes_replacement_characters(start_server, open_client):
    """
    Bytes that are not UTF-8 show as U+FFFD and the server goes on serving.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send_raw(b"bad \xc3\x28 and \x80\xc0 end\n")
    assert bob.read_until("end") == "alice: bad \ufffd( and \ufffd\ufffd end"
    alice.send("fine again")
    assert bob.read_until("fine again") == "alice: fine again"


HOSTILE_LINES = [
    b"bell\x07 nul\x00 backspace\x08 del\x7f vt\x0b ff\x0c",
    b"csi \x1b[2J\x1b[H clear",
    b"osc \x1b]0;owned title\x07 after",
    b"osc-st \x1b]2;other title\x1b\\ after",
    b"dcs \x1bPq#0;2;0;0;0\x1b\\ after",
    b"c1-csi \xc2\x9b31m red \xc2\x9b2J",
    b"c1-osc \xc2\x9d0;title\xc2\x9c after",
    b"raw-c1 \x9b2J end",
    b"bidi \xe2\x80\xae reversed \xe2\x81\xa6 isolate \xe2\x81\xa9 lrm \xe2\x80\x8e",
    b"lone esc \x1b",
    b"reset \x1bc terminal",
    b"over\rwrite",
    b"keypad \x1b= \x1b>",
    b"/me \x1b[5mblinks\x1b[0m \xe2\x80\xae",
    b"/color red \x1b[41m on red",
    b"@bob \x1b]0;pm title\x07pm \x1b[2J",
    b"/msg bob \xc2\x9b6n query",
    b"/nick \x1b[31mev il",
    b"/nick e\xe2\x80\xaevil!",
    b"/frob\x1b[2Jnicate",
    b"@\x1b[2Jghost hi",
    b"//\x1b[31m slash",
]


def test_control_characters_never_reach_another_user(start_server, open_client):
    """
    Escape sequences, C0, DEL, C1 and bidi controls in messages, nicknames and quit reasons
    never reach others.
    """
    server = start_server("--flood-rate", "0")
    alice, bob = room(server, open_client, "alice", "bob")
    mallory = open_client(server)
    mallory.read_until("Choose a nickname")
    mallory.send_raw(b"\x1b[2Jmal lory\n")
    mallory.read_until("Choose a nickname")
    mallory.send_raw(b"mal\xe2\x80\xaelory!\n")
    mallory.read_until("Choose a nickname")
    mallory.send("mallory")
    mallory.read_until("Welcome, mallory!")
    for line in HOSTILE_LINES:
        alice.send_raw(line + b"\n")
    alice.send_raw(b"/quit \x1b]0;pwned\x07bye\xe2\x80\xae\x1b[31m\x9b\n")
    lines = bob.read_through("alice left the chat")
    assert lines[-1] == "[Server] alice left the chat (quit: bye\ufffd)", lines
    needles = ("alice: csi  clear", "alice: osc  after", "* alice blinks", "[PM from alice] pm")
    for needle in needles:
        assert any(line.startswith(needle) for line in lines), (needle, lines)
    mallory.read_until("alice left the chat")
    assert_clean_output(bob.raw)
    assert_clean_output(mallory.raw)


# Shutdown, options and logging


def test_sigterm_tells_everyone_and_exits_promptly(start_server, open_client):
    """
    On SIGTERM every user is told the server is shutting down, disconnected, and the process
    exits within a second.
    """
    server = start_server()
    users = room(server, open_client, "alice", "bob", "carol")
    waiting = open_client(server)
    waiting.read_until("Choose a nickname")
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    for user in users + [waiting]:
        lines = user.wait_closed(TIMEOUT)
        assert "[Server] server is shutting down" in lines, lines
    status = server.process.wait(TIMEOUT)
    assert time.monotonic() - started < 1.5
    # twistd re-raises the signal after a clean shutdown, so -SIGTERM is what
    # a clean exit looks like; 0 or 128+15 would be too.
    assert status in (0, -signal.SIGTERM, 128 + signal.SIGTERM), status


def _twistd(tmp_path, *args, timeout=TIMEOUT * 2):
    return subprocess.run(
        [twistd_path(), "-n", "--pidfile=", *args],
        cwd=str(tmp_path),
        env=child_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
    )


def test_help_documents_every_option(tmp_path):
    """
    twistd wazzap --help documents every server option.
    """
    result = _twistd(tmp_path, "wazzap", "--help")
    output = result.stdout.decode()
    assert result.returncode == 0, output
    for option in (
        "--port",
        "--db",
        "--admin",
        "--approve-joins",
        "--approval-timeout",
        "--private-consent",
        "--max-line-bytes",
        "--max-queued-output",
        "--slow-timeout",
        "--login-timeout",
        "--idle-timeout",
        "--flood-burst",
        "--flood-rate",
        "--max-per-address",
    ):
        assert option in output, option


@pytest.mark.parametrize(
    "args",
    [
        ["--login-timeout", "soon"],
        ["--max-line-bytes", "-5"],
        ["--flood-rate", "nan"],
        ["--port", "nonsense:x"],
        ["--no-such-option"],
    ],
)
def test_bad_option_gives_one_line_and_fails(tmp_path, args):
    """
    A bad option value is reported on one line, without a traceback or usage dump, with a
    non-zero exit.
    """
    result = _twistd(tmp_path, "wazzap", *args)
    output = result.stdout.decode()
    lines = [line for line in output.splitlines() if line.strip()]
    assert result.returncode != 0, output
    assert "Traceback" not in output
    assert len(lines) == 1, output
    assert args[0].lstrip("-") in lines[0], lines[0]


def test_port_in_use_is_a_clear_error(tmp_path):
    """
    Starting on a port already listened on exits non-zero saying "address already in use".
    """
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _twistd(tmp_path, "wazzap", "--port=tcp:%d:interface=127.0.0.1" % (port,))
    output = result.stdout.decode()
    assert result.returncode != 0, output
    assert "address already in use" in output.lower(), output
    assert "Traceback" not in output, output


def test_log_records_comings_and_goings_but_not_messages(start_server, open_client):
    """
    The server log records connections, joins, nickname changes and leaves with reasons,
    never message text.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send("the-secret-public-words")
    bob.read_until("the-secret-public-words")
    alice.send("@bob the-secret-private-words")
    bob.read_until("the-secret-private-words")
    alice.send("/me the-secret-action")
    bob.read_until("the-secret-action")
    alice.send("/nick zed")
    bob.read_until("known as zed")
    alice.send("/quit the-reason")
    alice.wait_closed(TIMEOUT)
    server.wait_for_log("zed left (quit: [10 characters])", timeout=TIMEOUT)
    log = server.log()
    assert log.count("connection from 127.0.0.1") >= 2
    assert "joined as alice" in log and "joined as bob" in log
    assert [line for line in log.splitlines() if "alice" in line and "zed" in line], log
    assert "the-reason" not in log
    assert "the-secret" not in log


def test_ipv6_loopback_client(start_server, open_client):
    """
    A server on ::1 serves IPv6 clients like IPv4 ones.
    """
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        pytest.skip("no IPv6 loopback: %s" % (e,))
    server = start_server(host="::1")
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send("over six")
    assert bob.read_until("over six") == "alice: over six"
    server.wait_for_log("connection from ::1", timeout=TIMEOUT)


@pytest.mark.parametrize(
    "make_path, reason",
    [
        (lambda tmp_path: tmp_path / "missing" / "wazzap.sqlite3", "does not exist"),
        (lambda tmp_path: tmp_path / "directory.sqlite3", "is a directory"),
        (lambda tmp_path: tmp_path / "garbage.sqlite3", "not a SQLite database, or corrupt"),
    ],
)
def test_unusable_database_is_a_clear_startup_error(tmp_path, make_path, reason):
    """
    A database path that cannot be used stops the start with one clear line and a
    non-zero exit, not a traceback.
    """
    path = make_path(tmp_path)
    (tmp_path / "directory.sqlite3").mkdir()
    (tmp_path / "garbage.sqlite3").write_bytes(b"this is not a database, " * 100)
    result = _twistd(tmp_path, "wazzap", "--db", str(path), "--port", "tcp:0:interface=127.0.0.1")
    output = result.stdout.decode()
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert "wazzap: " in output and str(path) in output
    assert reason in output
