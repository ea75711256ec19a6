"""
Properties of the parts that face untrusted bytes, checked with hypothesis and
no sockets: line framing, text sanitising, and the whole protocol driven
through a L{StringTransport} and a L{Clock}.
"""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.doubles import make_factory
from tests.support import assert_clean_output
from wazzap import text
from wazzap.net.framing import TOO_LONG, LineFramer
from wazzap.text import sanitize

#: Characters that must never leave sanitize: C0 (tab included, it becomes a
#: space), DEL, C1, bidirectional controls and line separators.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)

#: Single characters and whole sequences a hostile user might send.
NASTY_PIECES = list(
    "\x00\x07\x08\t\n\r\x0b\x1b\x7f\x80\x85\x9b\x9c\x9d\x90"
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
    "[]0;?Pm\\^_X(#c=>J2H\u00e9\u20ac\U0001f600 aZ/@"
) + [
    "\x1b[2J", "\x1b[31m", "\x1b]0;title\x07", "\x1b]2;t\x1b\\", "\x1bPq\x1b\\", "\x1bc",
    "\x9b6n", "\x9d0;t\x9c", "\x1b[", "\x1b]", "\x1b\x1b[1m",
]

#: Text made of those pieces mixed with any other characters; hypothesis's
#: C{text(alphabet=...)} would hardly ever pick the non-ASCII ones.
nasty_text = st.lists(
    st.one_of(st.sampled_from(NASTY_PIECES), st.characters()), max_size=30
).map("".join)


def split_at(data, cuts):
    """
    C{data} cut into pieces at the given positions.
    """
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points + [len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def frame(framer, pieces):
    """
    Feed C{pieces} to C{framer}, taking every line out after each; return them.
    """
    out = []
    for piece in pieces:
        framer.feed(piece)
        while True:
            line = framer.next_line()
            if line is None:
                break
            out.append(line)
            assert line is TOO_LONG or len(line) <= framer.max_length
        assert framer.pending() <= framer.max_length
    return out


framer_input = st.tuples(
    st.integers(min_value=1, max_value=40),
    st.lists(st.binary(max_size=90).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    st.binary(max_size=90).map(lambda b: b.replace(b"\n", b"")),
    st.lists(st.integers(min_value=0, max_value=1200), max_size=12),
)


@settings(max_examples=200, deadline=None)
@given(framer_input)
def test_framer_gives_the_same_lines_however_the_bytes_are_split(example):
    """
    Lines come out whole, or as TOO_LONG exactly where a line exceeded the limit, however
    the bytes are split.
    """
    max_length, lines, partial, cuts = example
    data = b"".join(line + b"\n" for line in lines) + partial
    expected = [line if len(line) <= max_length else TOO_LONG for line in lines]
    whole = frame(LineFramer(max_length), [data])
    pieces = frame(LineFramer(max_length), split_at(data, cuts))
    byte_by_byte = frame(LineFramer(max_length), [data[i : i + 1] for i in range(len(data))])
    # An unfinished line is reported only once it is already over the limit.
    if len(partial) > max_length:
        expected.append(TOO_LONG)
    assert whole == expected
    assert pieces == expected
    assert byte_by_byte == expected


@settings(max_examples=300, deadline=None)
@given(nasty_text)
def test_sanitize_leaves_no_control_and_is_idempotent(value):
    """
    sanitize leaves no C0, DEL, C1, ESC or bidi control, and sanitising twice changes nothing more.
    """
    clean = sanitize(value)
    assert UNSAFE.search(clean) is None, repr(clean)
    assert sanitize(clean) == clean


def test_sanitize_keeps_ordinary_text():
    """
    sanitize keeps letters, punctuation, accents and emoji, and makes tabs spaces.
    """
    assert sanitize("caf\u00e9 [1;2] 50% \U0001f600\tok") == "caf\u00e9 [1;2] 50% \U0001f600 ok"


COMMANDS = [
    "/nick", "/msg", "/private", "@", "@bob", "@bob /color", "/color", "/help", "/colors",
    "/me", "/who", "/users", "/quit", "/leave", "//", "/", "",
    "/seen", "/chats", "/history", "/consent", "/request", "/accept", "/reject", "/end",
    "/register", "/password", "/unregister", "/kick", "/mute", "/ban", "/pending",
    " /nick", "\u200b/quit", "\t@bob", " //", "\u3164",
]

command_line = st.builds(
    lambda command, args: (command + " " + args if args else command),
    st.sampled_from(COMMANDS),
    st.one_of(st.sampled_from(["on", "off", "red hi", "bob", "mallory", "msg", "red"]), nasty_text),
).map(lambda line: line.encode("utf-8", "surrogatepass"))

input_line = st.one_of(
    command_line,
    st.binary(max_size=40),
    nasty_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
)


class Harness:
    """
    A chat with its factory on a L{Clock} (flood control off), and
    connections on L{StringTransport}s.
    """

    def __init__(self):
        self.factory = make_factory()
        self.clock = self.factory.clock

    def connect(self):
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.clock.advance(0)
        return protocol, transport

    def feed(self, protocol, transport, data):
        """
        Deliver C{data} as a reactor would, and end the connection as a reactor
        would once the protocol asked for it.
        """
        if transport.disconnecting:
            return
        protocol.dataReceived(data)
        self.clock.advance(0)
        if transport.disconnecting:
            protocol.connectionLost(Failure(ConnectionDone()))
            self.clock.advance(0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(input_line, max_size=15),
    st.lists(st.integers(min_value=0, max_value=600), max_size=8),
    st.booleans(),
)
def test_protocol_survives_anything_and_never_passes_controls_on(lines, cuts, crlf):
    """
    No exception escapes for random bytes and commands, and nothing but SGR colours and CR
    LF reaches another user.
    """
    harness = Harness()
    bob, bob_transport = harness.connect()
    harness.feed(bob, bob_transport, b"bob\n")
    assert b"Welcome, bob!" in bob_transport.value()
    mallory, mallory_transport = harness.connect()
    ending = b"\r\n" if crlf else b"\n"
    data = b"mallory" + ending + b"".join(line + ending for line in lines)
    for piece in split_at(data, cuts):
        harness.feed(mallory, mallory_transport, piece)
    if not mallory_transport.disconnecting:
        mallory.connectionLost(Failure(ConnectionDone()))
        harness.clock.advance(0)
    assert_clean_output(bob_transport.value())
    assert b"mallory" in bob_transport.value()
    bob.connectionLost(Failure(ConnectionDone()))
    harness.clock.advance(0)
    assert len(harness.factory.chat) == 0
    assert not harness.factory.connections


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_protocol_survives_random_bytes_before_and_after_joining(data, cuts):
    """
    Random bytes at the nickname prompt or in the chat raise nothing and leave the chat consistent.
    """
    harness = Harness()
    bob, bob_transport = harness.connect()
    harness.feed(bob, bob_transport, b"bob\n")
    stranger, stranger_transport = harness.connect()
    for piece in split_at(data, cuts):
        harness.feed(stranger, stranger_transport, piece)
    assert_clean_output(bob_transport.value())
    assert len(harness.factory.chat) in (1, 2)
    if not stranger_transport.disconnecting:
        stranger.connectionLost(Failure(ConnectionDone()))
    bob.connectionLost(Failure(ConnectionDone()))
    harness.clock.advance(0)
    assert len(harness.factory.chat) == 0
    assert not harness.factory.connections


#: Ways to write each letter of a reserved word so that it still reads as it.
LOOKALIKES = {"o": "oO0", "i": "iI1lL", "e": "eE3", "a": "aA4", "s": "sS5", "t": "tT7", "z": "zZ2"}

@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_lookalike_of_a_reserved_name_is_refused(data):
    """
    A reserved word in any case, with digits for letters and _ or - around it, is refused.
    """
    word = data.draw(st.sampled_from(sorted(text.RESERVED_NICKNAMES)))
    letters = [data.draw(st.sampled_from(LOOKALIKES.get(c, c + c.upper()))) for c in word]
    before = data.draw(st.text(alphabet="_-", max_size=5))
    after = data.draw(st.text(alphabet="_-", max_size=5))
    nickname = before + "".join(letters) + after
    assert text.nickname_problem(nickname).endswith("is reserved"), nickname


#: Characters that show nothing on a terminal, whatever Unicode calls them.
INVISIBLE = (
    " \u00a0\u00ad\u034f\u115f\u1160\u180e\u2000\u200a\u200b\u200c\u200d\u2060\u2061"
    "\u2800\u3000\u3164\ufe0f\ufeff\uffa0\U000e0041\U000e007f"
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=INVISIBLE, min_size=1), nasty_text)
def test_invisible_characters_never_make_a_line_visible(blank, rest):
    """
    Invisible characters alone show nothing, and in front of a line change what it starts with on screen not at all.
    """
    assert not text.is_visible(blank)
    assert text.from_first_visible(blank + rest) == text.from_first_visible(rest)
    assert text.is_visible(blank + "x" + rest)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_a_reason_is_short_valid_and_a_prefix_of_what_was_typed(words):
    """
    A reason is at most MAX_REASON_BYTES of UTF-8, the start of what was typed, or None if it shows nothing.
    """
    reason = text.short_reason(words)
    if reason is None:
        assert not text.is_visible(words)
        return
    assert len(reason.encode("utf-8")) <= text.MAX_REASON_BYTES
    assert words.strip().startswith(reason.removesuffix("\u2026").rstrip())


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["quit", "kicked by alice", "banned by bob"]), st.text(min_size=1))
def test_the_log_keeps_only_the_length_of_a_reason(kind, words):
    """
    Whatever a person gives as a reason, the log line gets the kind of leaving and a length.
    """
    assert text.reason_for_log("%s: %s" % (kind, words)) == "%s: [%d characters]" % (kind, len(words))
