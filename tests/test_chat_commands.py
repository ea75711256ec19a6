"""
The chat commands through the real protocol on L{StringTransport}s and a
L{Clock}: what a line means by how it looks, invisible lines, reasons.
"""

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from tests.doubles import Connection, admin_and_user, make_factory
from wazzap import text


@pytest.fixture
def room():
    """
    A factory with alice and bob joined, their welcome lines read.
    """
    factory = make_factory()
    alice = Connection(factory, port=40001).join("alice")
    bob = Connection(factory, port=40002).join("bob")
    alice.lines()
    return factory, alice, bob


@pytest.fixture
def log_lines():
    """
    The text of every log event emitted while the test runs.
    """
    lines = []

    def observe(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


@pytest.mark.parametrize("line", [" /register secret99", "\t /register secret99", "\u200b/register secret99"])
def test_a_command_after_spaces_or_invisible_characters_is_a_command(room, line):
    """A line whose first visible character is / runs as a command and reaches nobody."""
    factory, alice, bob = room
    alice.send(line)
    assert any("registered" in reply for reply in alice.lines())
    assert bob.lines() == []


def test_double_slash_after_spaces_still_escapes(room):
    """Spaces before // still send the rest as text starting with /."""
    factory, alice, bob = room
    alice.send("  //etc/passwd is a file")
    assert bob.lines() == ["alice: /etc/passwd is a file"]


def test_private_message_after_a_space_stays_private(room):
    """A leading space before @nick does not make the private message public."""
    factory, alice, bob = room
    carol = Connection(factory, port=40003).join("carol")
    bob.lines()
    alice.send(" @bob psst")
    assert bob.lines() == ["[PM from alice] psst"]
    assert carol.lines() == []


def test_ordinary_text_keeps_its_leading_spaces(room):
    """A public message that is not a command is sent as typed, indentation included."""
    factory, alice, bob = room
    alice.send("   indented")
    assert bob.lines() == ["alice:    indented"]


@pytest.mark.parametrize(
    "line",
    [
        "\u200b",
        "\u3164\u3164",
        "\u200b \u2060\ufeff",
        "@bob \u200b",
        "/msg bob \u3164",
        "/me \u200b",
        "/color red \u200b",
        "  \u200b  ",
    ],
)
def test_lines_that_show_nothing_are_dropped_with_a_notice(room, line):
    """A message made only of invisible characters reaches nobody and its sender is told."""
    factory, alice, bob = room
    alice.send(line)
    assert alice.lines() == ["[Server] that shows nothing (only spaces or invisible characters): not sent"]
    assert bob.lines() == []


def test_me_help_shows_the_nickname_not_you(room):
    """The help of /me shows an action with a nickname, as the sender and everyone see it."""
    factory, alice, bob = room
    alice.send("/help me")
    (help_line,) = alice.lines()
    assert "* you" not in help_line and '"* alice waves"' in help_line
    alice.send("/me waves")
    assert alice.lines() == ["* alice waves"]


def test_quit_reason_is_capped_for_the_room_and_the_history(room):
    """A long quit reason is cut to 200 bytes at a character boundary wherever it goes."""
    factory, alice, bob = room
    alice.send("/quit " + "\u00e9" * 2000)
    alice.close()
    (notice,) = bob.lines()
    reason = notice[len("[Server] alice left the chat (quit: ") : -1]
    assert reason == "\u00e9" * 98 + "\u2026"
    assert len(reason.encode("utf-8")) <= text.MAX_REASON_BYTES
    (session,) = factory.accounts.store.database.history("alice", 1)
    assert len(session.reason.encode("utf-8")) <= text.MAX_REASON_BYTES + len("quit: ")


def test_invisible_quit_reason_is_no_reason(room):
    """A quit reason that shows nothing leaves as a plain quit."""
    factory, alice, bob = room
    alice.send("/quit \u200b\u3164")
    alice.close()
    assert bob.lines() == ["[Server] alice left the chat (quit)"]


def test_log_keeps_the_length_of_quit_and_kick_reasons_not_the_words(log_lines):
    """The leave log line names the kind of leaving and the length of the reason, never its text."""
    factory = make_factory(admins=["root1"])
    alice = Connection(factory, port=40001).join("alice")
    alice.send("/quit my secret plans")
    alice.close()
    admin, bob = admin_and_user(factory)
    admin.send("/kick bob you know why")
    bob.close()
    logged = "\n".join(log_lines)
    assert "alice left (quit: [15 characters])" in logged
    assert "bob left (kicked by root1: [12 characters])" in logged
    assert "secret" not in logged and "know why" not in logged
