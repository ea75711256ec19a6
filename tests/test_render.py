"""
The line renderer: events as the bytes nc, telnet and the wazzap client have
always been sent, with colours and without.
"""

import pytest
from zope.interface.verify import verifyObject

from wazzap import text
from wazzap.core import events
from wazzap.core.interfaces import IRenderer
from wazzap.listeners.line import render

ALICE = "1.1"

# (event, recipient, coloured bytes, plain bytes): the bytes the line
# protocol wrote for these lines before events existed.
LINES = [
    (events.Notice("hi"), None, b"\x1b[1m\x1b[33m[Server]\x1b[0m hi\r\n", b"[Server] hi\r\n"),
    (
        events.Said("alice", "red", "hello", "green"),
        None,
        b"\x1b[31malice\x1b[0m: \x1b[32mhello\x1b[0m\r\n",
        b"alice: hello\r\n",
    ),
    (events.Said("bob", "lightred", "plain"), None, b"\x1b[91mbob\x1b[0m: plain\r\n", b"bob: plain\r\n"),
    (events.Emoted("alice", "green", "waves"), None, b"* \x1b[32malice\x1b[0m waves\r\n", b"* alice waves\r\n"),
    (
        events.Private("alice", ALICE, "bob", "psst", "red"),
        "2.2",
        b"\x1b[1m\x1b[35m[PM from alice]\x1b[0m \x1b[31mpsst\x1b[0m\r\n",
        b"[PM from alice] psst\r\n",
    ),
    (
        events.Private("alice", ALICE, "bob", "psst"),
        ALICE,
        b"\x1b[1m\x1b[35m[PM to bob]\x1b[0m psst\r\n",
        b"[PM to bob] psst\r\n",
    ),
    (events.Joined("carol"), None, b"\x1b[1m\x1b[33m[Server]\x1b[0m carol joined the chat\r\n", None),
    (events.Left("carol", "quit"), None, None, b"[Server] carol left the chat (quit)\r\n"),
    (events.Left("carol"), None, None, b"[Server] carol left the chat\r\n"),
    (events.Renamed("carol", "Caro"), None, None, b"[Server] carol is now known as Caro\r\n"),
    (
        events.PresenceSummary(12, 11, 10),
        None,
        None,
        b"[Server] 12 people joined, 11 left in the last 10 s\r\n",
    ),
]


def test_both_renderers_provide_irenderer():
    """The coloured and the plain line renderer fulfil the renderer contract."""
    assert verifyObject(IRenderer, render.COLORED)
    assert verifyObject(IRenderer, render.PLAIN)


@pytest.mark.parametrize("event, recipient, colored, plain", LINES)
def test_each_event_renders_as_the_line_it_always_was(event, recipient, colored, plain):
    """Every kind of event gives the same bytes, coloured and plain, as the lines of before."""
    if colored is not None:
        assert render.COLORED.render([event], recipient) == colored
    if plain is not None:
        assert render.PLAIN.render([event], recipient) == plain


def test_a_batch_is_its_events_one_after_another():
    """Rendering several events gives the bytes of each in order, as the outbox relies on."""
    batch = [event for event, recipient, _, _ in LINES if recipient is None]
    for renderer in (render.COLORED, render.PLAIN):
        assert renderer.render(batch, None) == b"".join(renderer.render([e], None) for e in batch)


def test_every_colour_name_has_an_ansi_code():
    """Each colour handed out or offered by /color is known to the renderer."""
    assert set(text.USER_PALETTE) | set(text.NAMED_COLORS) <= set(render.ANSI_COLORS)


def test_an_unknown_or_missing_colour_shows_plain():
    """A nickname without a colour name the renderer knows shows without codes."""
    assert render.COLORED.render([events.Said("bob", None, "hi")], None) == b"bob: hi\r\n"


@pytest.mark.parametrize(
    "event, line",
    [
        (events.Said("bob", None, "hi"), b"[#maths] bob: hi\r\n"),
        (events.Joined("bob", "#maths"), b"[#maths] [Server] bob joined #maths\r\n"),
        (events.Left("bob", "done", "#maths"), b"[#maths] [Server] bob left #maths (done)\r\n"),
        (events.Left("bob", "quit"), b"[Server] bob left the chat (quit)\r\n"),
        (events.Renamed("bob", "rob"), b"[Server] bob is now known as rob\r\n"),
        (events.Announcement("bob was banned"), b"[Server] bob was banned\r\n"),
    ],
)
def test_lines_of_another_room_are_marked_with_it(event, line):
    """A room's line for someone reading another room names the room, unless it is heard once."""
    assert render.PLAIN.render([event], None, "#maths") == line


def test_a_marked_batch_is_its_lines_one_after_another():
    """Marked, a batch still renders as its events' lines in order."""
    batch = [events.Said("bob", None, "one"), events.Notice("two")]
    assert render.PLAIN.render(batch, None, "#a") == b"[#a] bob: one\r\n[#a] [Server] two\r\n"
