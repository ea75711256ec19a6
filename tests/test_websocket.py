"""
The browser listener in memory: the JSON protocol over the web port's
L{Site} and a L{StringTransport}, the renderer, the Origin check, the limit
on inbound messages and the pings, on a L{Clock}.
"""

import json
import struct

import pytest

from tests.behaviour_websocket import HOST, WebSocketClient
from tests.doubles import Connection, add_account, make_factory
from wazzap.core import events
from wazzap.listeners.websocket import connection as web
from wazzap.listeners.websocket.render import JSON
from wazzap.listeners.websocket.site import read_static, web_site

pytestmark = pytest.mark.timeout(30)


def browser(factory, site=None, port=53000, **options):
    site = site or web_site(factory)
    return WebSocketClient(site, factory.clock, port, **options)


def joined_browser(factory, nickname, site=None, port=53000):
    client = browser(factory, site, port)
    client.type(nickname)
    assert any(text.startswith("Welcome, %s!" % (nickname,)) for text in client.notices())
    return client


def test_handshake_greets_with_the_nickname_prompt():
    """A browser's WebSocket is accepted and told the greeting and the nickname prompt as JSON notices."""
    client = browser(make_factory())
    assert client.http_status == 101
    messages = client.new_messages()
    assert [m["text"] for m in messages if m["type"] == "notice"] == [
        "Welcome to wazzap, the terminal chat.",
        "Choose a nickname (1 to 16 letters, digits, _ or -):",
    ]
    assert messages[-1]["type"] == "state" and messages[-1]["nickname"] is None


def test_joining_sends_the_state_with_nickname_room_and_rooms():
    """Once joined, the page is told who it is, the room it reads and its rooms."""
    client = browser(make_factory())
    client.new_messages()
    client.type("alice")
    state = [m for m in client.new_messages() if m["type"] == "state"][-1]
    assert state["nickname"] == "alice" and state["room"] == "#lobby"
    assert state["rooms"] == ["#lobby"] and state["color"]


def test_a_browser_and_a_line_user_talk_in_order():
    """Public lines between a browser and a line user arrive in order, with nicknames."""
    factory = make_factory()
    alice = joined_browser(factory, "alice")
    bob = Connection(factory, port=41000).join("bob")
    bob.lines()
    assert alice.heard() == [("joined", "bob")]
    for n in range(3):
        alice.say("from alice %d" % (n,))
    assert bob.lines() == ["alice: from alice %d" % (n,) for n in range(3)]
    bob.send("one")
    bob.send("two")
    assert alice.heard() == [("said", "bob", "one"), ("said", "bob", "two")]


def test_private_messages_and_commands_are_typed_as_on_the_line():
    """@nick text is a private message and /commands run, as in the line client."""
    factory = make_factory()
    alice = joined_browser(factory, "alice")
    bob = Connection(factory, port=41000).join("bob")
    bob.lines()
    alice.new_messages()
    alice.private("bob", "psst")
    assert bob.lines() == ["[PM from alice] psst"]
    bob.send("@alice back")
    assert alice.heard() == [("private", "bob", "back")]
    alice.type("/join #maths")
    state = [m for m in alice.new_messages() if m["type"] == "state"][-1]
    assert state["room"] == "#maths" and state["rooms"] == ["#lobby", "#maths"]


def test_a_registered_nickname_asks_for_its_password_as_a_secret():
    """A registered nickname's password prompt marks the state secret; the password then logs in."""
    factory = make_factory()
    add_account(factory, "carol", "correct horse")
    client = browser(factory)
    client.new_messages()
    client.type("carol")
    messages = client.new_messages()
    assert "carol is registered. Password:" in [m.get("text") for m in messages]
    assert messages[-1] == dict(messages[-1], type="state", secret=True)
    client.type("correct horse")
    assert any(text.startswith("Welcome, carol!") for text in client.notices())


def test_markup_is_sent_as_text():
    """Markup a user types reaches browsers as the same text in JSON, never changed into anything else."""
    factory = make_factory()
    alice = joined_browser(factory, "alice")
    bob = Connection(factory, port=41000).join("bob")
    alice.new_messages()
    bob.send("<img src=x onerror=alert(1)>")
    assert alice.heard() == [("said", "bob", "<img src=x onerror=alert(1)>")]


def test_a_message_that_is_not_a_line_gets_one_notice():
    """JSON that is not a typed line, or not JSON, is answered with one notice and changes nothing."""
    factory = make_factory()
    alice = joined_browser(factory, "alice")
    alice.new_messages()
    for message in ("not json", json.dumps({"type": "line", "text": 5}), json.dumps([1])):
        alice.send_text(message)
        assert alice.notices() == ['not understood: send {"type": "line", "text": "..."}']
    alice.type("one\ntwo")
    assert alice.notices() == ["one line at a time, please: that message was not sent"]
    assert not alice.closed()


def test_a_message_over_4_kib_closes_with_1009():
    """A text message bigger than 4 KiB closes the WebSocket with code 1009."""
    factory = make_factory()
    alice = joined_browser(factory, "alice")
    alice.type("x" * (web.MAX_MESSAGE_BYTES - 30))  # fits, JSON and all
    assert alice.close_code is None
    alice.type("x" * web.MAX_MESSAGE_BYTES)
    assert alice.close_code == web.MESSAGE_TOO_BIG
    assert alice.closed()
    assert factory.chat.find("alice") is None


def test_a_big_message_is_refused_while_it_arrives():
    """A frame announcing 1 MiB closes with 1009 once 4 KiB of it arrived, not after buffering it all."""
    factory = make_factory()
    alice = joined_browser(factory, "alice")
    mask = b"\x01\x02\x03\x04"
    header = struct.pack("!BBQ", 0x81, 0x80 | 127, 1 << 20) + mask
    part = bytes(byte ^ mask[i % 4] for i, byte in enumerate(b"x" * (web.MAX_MESSAGE_BYTES + 1)))
    alice.channel.dataReceived(header + part)
    alice.settle()
    assert alice.close_code == web.MESSAGE_TOO_BIG
    assert alice.closed()


def test_a_protocol_error_closes_with_its_code_and_counts_as_an_error():
    """An unmasked frame from a browser is a protocol error: closed with 1002, counted as an error."""
    factory = make_factory()
    alice = joined_browser(factory, "alice")
    alice.channel.dataReceived(b"\x81\x05hello")
    alice.settle()
    assert alice.close_code == 1002
    assert alice.closed()
    assert factory.counts.disconnections["error"] == 1


def test_a_binary_message_closes_with_1003():
    """A binary message closes with 1003: the page speaks JSON in text messages."""
    from wsproto.events import BytesMessage

    factory = make_factory()
    alice = joined_browser(factory, "alice")
    alice.channel.dataReceived(alice.websocket.send(BytesMessage(b"\x00")))
    alice.settle()
    assert alice.close_code == web.UNSUPPORTED_DATA


def test_pings_every_30_seconds_and_an_answer_keeps_it():
    """The server pings every 30 s; a browser that answers stays."""
    factory = make_factory()
    alice = joined_browser(factory, "alice")
    for _ in range(5):
        factory.clock.advance(web.PING_INTERVAL_SECONDS)
        alice.settle()
    assert not alice.closed()
    assert factory.chat.find("alice") is not None


def test_no_answer_for_60_seconds_drops_it():
    """A browser that answers no ping is dropped 60 s after it was last heard, and others hear it left."""
    factory = make_factory()
    site = web_site(factory)
    alice = joined_browser(factory, "alice", site)
    bob = joined_browser(factory, "bob", site, port=53001)
    alice.answer_pings = False
    factory.clock.advance(web.PING_INTERVAL_SECONDS)
    bob.settle()
    assert not alice.closed()
    factory.clock.advance(web.PING_TIMEOUT_SECONDS - web.PING_INTERVAL_SECONDS - 1)
    assert not alice.closed()
    factory.clock.advance(1)
    assert alice.closed()
    assert ("left", "alice") in bob.heard()


def test_flood_is_paced_as_on_the_line():
    """Lines beyond the flood burst wait for the allowance; none is lost."""
    # The nickname was the first of the burst of four.
    factory = make_factory(flood_burst_lines=4, flood_rate_lines_per_second=1)
    alice = joined_browser(factory, "alice")
    bob = Connection(factory, port=41000).join("bob")
    bob.lines()
    for n in range(6):
        alice.say("line %d" % (n,))
    assert bob.lines() == ["alice: line %d" % (n,) for n in range(3)]
    assert "you are sending too fast: your lines are being slowed down" in alice.notices()
    factory.clock.advance(3)
    assert bob.lines() == ["alice: line %d" % (n,) for n in range(3, 6)]


def test_a_browser_that_stops_reading_is_dropped():
    """A browser whose output queue passes the limit is dropped; the line user goes on."""
    factory = make_factory(max_queued_output_bytes=4096)
    alice = joined_browser(factory, "alice")
    bob = Connection(factory, port=41000).join("bob")
    alice.stop_reading()
    for n in range(40):
        bob.send("filler line %d %s" % (n, "x" * 100))
    assert alice.closed()
    assert factory.chat.find("alice") is None
    assert any("alice left" in line for line in bob.lines())


def test_connections_are_counted_with_the_others():
    """A browser counts as a connection in the metrics' totals and open connections."""
    factory = make_factory()
    before = factory.counts.connections
    alice = joined_browser(factory, "alice")
    assert factory.counts.connections == before + 1 and len(factory.connections) == 1
    alice.type("/quit")
    assert alice.closed()
    assert not factory.connections
    assert factory.counts.disconnections["quit"] == 1


def test_origin_check():
    """The page's own Origin and no Origin are allowed; another Origin gets HTTP 403."""
    factory = make_factory()
    assert browser(factory).http_status == 101
    assert browser(factory, origin=None).http_status == 101
    assert browser(factory, origin="http://evil.test").http_status == 403
    assert len(factory.connections) == 2


def test_web_origin_option_allows_that_origin_only():
    """With --web-origin, that origin is allowed and the page's own is not."""
    factory = make_factory()
    site = web_site(factory, "https://chat.example.org")
    assert browser(factory, site, origin="https://chat.example.org").http_status == 101
    assert browser(factory, site, origin="http://" + HOST).http_status == 403


def test_the_renderer_is_pure_and_concatenates():
    """The JSON of a batch is the JSON of its events one after another, one object a line."""
    batch = (events.Said("alice", "red", "hi <b>"), events.Joined("bob"), events.Notice("n"))
    whole = JSON.render(batch, None)
    assert whole == b"".join(JSON.render((event,), None) for event in batch)
    assert [json.loads(line) for line in whole.splitlines()] == [
        {"type": "said", "nickname": "alice", "color": "red", "text": "hi <b>", "style": ""},
        {"type": "joined", "nickname": "bob", "room": ""},
        {"type": "notice", "text": "n"},
    ]
    assert json.loads(JSON.render((events.Joined("bob", "#maths"),), None, "#maths"))["from_room"] == "#maths"
    assert json.loads(JSON.render((events.TopicSet("bob", "#maths", "sums"),), None)) == {
        "type": "topic", "nickname": "bob", "room": "#maths", "topic": "sums"
    }


def test_the_renderer_tells_private_messages_by_direction():
    """A private message renders as sent for its sender and as received for its target."""
    event = events.Private("alice", "key-a", "bob", "psst")
    assert json.loads(JSON.render((event,), "key-a")) == {
        "type": "private", "direction": "to", "nickname": "bob", "text": "psst", "style": ""
    }
    assert json.loads(JSON.render((event,), "key-b"))["direction"] == "from"
    history = events.History("#lobby", 0.0, False, events.Said("bob", None, "old"))
    assert json.loads(JSON.render((history,), None))["event"]["text"] == "old"


def test_a_broadcast_shares_its_bytes_between_browsers():
    """Every browser in a room gets the same payload of a broadcast, framed once each."""
    factory = make_factory()
    site = web_site(factory)
    browsers = [joined_browser(factory, "user%d" % (n,), site, port=53000 + n) for n in range(3)]
    for client in browsers:
        client.new_messages()
    bob = Connection(factory, port=41000).join("bob")
    for client in browsers:
        client.new_messages()
    payloads = []
    for member in [m for m in factory.connections if isinstance(m, web.WebConnection)]:
        original = member.send
        member.send = lambda data, original=original: (payloads.append(data), original(data))
    bob.send("to everyone")
    assert len(payloads) == 3 and len({id(payload) for payload in payloads}) == 1
    assert all(client.heard() == [("said", "bob", "to everyone")] for client in browsers)


def test_the_page_has_no_external_resources():
    """The page's files load nothing from elsewhere and put text in with textContent, never innerHTML."""
    page = read_static("index.html").decode()
    script = read_static("app.js").decode()
    assert "http://" not in page + script and "https://" not in page + script
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "<script>" not in page  # no inline script, which the CSP forbids


def test_web_options():
    """--web takes a port (all interfaces) or an endpoint; --web-origin is kept as given."""
    from twisted.python import usage

    from wazzap.app import tap

    options = tap.Options()
    options.parse_arguments(["--web=8080", "--web-origin=https://chat.example.org"])
    assert options["web"] == "tcp:8080"
    assert options["web-origin"] == "https://chat.example.org"
    options = tap.Options()
    options.parse_arguments(["--web=tcp:8080:interface=127.0.0.1"])
    assert options["web"] == "tcp:8080:interface=127.0.0.1" and options["web-origin"] is None
    with pytest.raises(usage.UsageError, match="--web 'nowhere:1' is not a port or endpoint"):
        tap.Options().parse_arguments(["--web=nowhere:1"])


def test_the_page_files_are_package_data():
    """setup.cfg ships every file of the page, so an installed server serves it too."""
    import configparser
    from pathlib import Path

    from tests.support import REPO
    from wazzap.listeners.websocket import site

    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    patterns = config["options.package_data"]["wazzap.listeners.websocket"].split()
    static = Path(site.__file__).parent
    shipped = {path.name for pattern in patterns for path in static.glob(pattern)}
    assert set(site.STATIC_FILES) <= shipped
    assert {path.name for path in (static / "static").iterdir()} == set(site.STATIC_FILES)


def test_closing_the_page_leaves_the_chat():
    """A browser's close frame (the page closed) is answered, and the others see it leave."""
    from wsproto.events import CloseConnection

    factory = make_factory()
    alice = joined_browser(factory, "alice")
    bob = Connection(factory, port=41000).join("bob")
    bob.lines()
    alice.channel.dataReceived(alice.websocket.send(CloseConnection(1001, "going away")))
    alice.settle()
    assert alice.closed()
    assert bob.lines() == ["[Server] alice left the chat (connection closed)"]
    assert factory.counts.disconnections["quit"] == 1


def test_a_silent_http_connection_is_closed_after_a_minute():
    """An HTTP connection that sends nothing is closed after a minute; a WebSocket is not."""
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    from wazzap.listeners.websocket.site import HTTP_IDLE_TIMEOUT_SECONDS

    factory = make_factory()
    site = web_site(factory)
    alice = joined_browser(factory, "alice", site)
    transport = StringTransport()
    site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1)).makeConnection(transport)
    for _ in range(HTTP_IDLE_TIMEOUT_SECONDS * 2):
        factory.clock.advance(1)
        alice.settle()  # answering pings
    assert transport.disconnecting
    assert not alice.closed()
