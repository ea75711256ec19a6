"""
The WebSocket adapter of the behaviour suite (tests/behaviour.py): browser
users of one in-memory server, each a wsproto client over a
L{StringTransport} whose HTTP request the web port's L{Site} upgrades, so
the handshake, the frames and the JSON are the real ones.
"""

import itertools
import json

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from wazzap.listeners.websocket.site import web_site

#: Where the page is served from, as a browser asks for it.
HOST = "chat.test:8080"
ORIGIN = "http://" + HOST


class BrowserTransport(StringTransport):
    """
    A transport that, once its peer stops reading, pauses its producer at
    the next write, as a socket's full buffer makes Twisted's do.
    """

    reading = True
    producer_paused = False

    def write(self, data):
        StringTransport.write(self, data)
        if not self.reading and self.producer is not None and not self.producer_paused:
            self.producer_paused = True
            self.producer.pauseProducing()


class WebSocketClient:
    """
    One browser: connects, upgrades to a WebSocket, and reads back the
    JSON messages the server sends.
    """

    def __init__(self, site, clock, port, origin=ORIGIN, answer_pings=True):
        self._clock = clock
        self.answer_pings = answer_pings
        self.nickname = None
        self.messages = []
        self.close_code = None
        self.http_status = None
        self._lost = False
        self._parts = []
        self._heard_from = 0
        address = IPv4Address("TCP", "127.0.0.1", port)
        self.transport = BrowserTransport(peerAddress=address)
        self.channel = site.buildProtocol(address)
        self.channel.makeConnection(self.transport)
        self.websocket = WSConnection(ConnectionType.CLIENT)
        headers = [] if origin is None else [(b"origin", origin.encode("ascii"))]
        self.channel.dataReceived(
            self.websocket.send(Request(host=HOST, target="/ws", extra_headers=headers))
        )
        self.settle()

    def settle(self):
        """
        End the turn, read what the server wrote, and lose the connection
        where the server closed it.
        """
        self._clock.advance(0)
        self.read()
        if self.transport.disconnecting and not self._lost:
            self._lost = True
            self.channel.connectionLost(Failure(ConnectionDone()))
            self._clock.advance(0)

    def read(self):
        data = self.transport.value()
        self.transport.clear()
        if not data or self.close_code is not None:
            return
        self.websocket.receive_data(data)
        for event in self.websocket.events():
            if isinstance(event, AcceptConnection):
                self.http_status = 101
            elif isinstance(event, RejectConnection):
                self.http_status = event.status_code
            elif isinstance(event, RejectData):
                pass
            elif isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    message, self._parts = "".join(self._parts), []
                    self.messages.extend(json.loads(line) for line in message.splitlines())
            elif isinstance(event, Ping):
                if self.answer_pings:
                    self.channel.dataReceived(self.websocket.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
                self.close_reason = event.reason

    def send_json(self, value):
        self.send_text(json.dumps(value))

    def send_text(self, message):
        self.channel.dataReceived(self.websocket.send(TextMessage(message)))
        self.settle()

    def type(self, text):
        """
        Send one typed line, as the page's input box does.
        """
        self.send_json({"type": "line", "text": text})

    def new_messages(self):
        """
        The messages read since the last call (what the server wrote read first).
        """
        self.settle()
        messages = self.messages[self._heard_from:]
        self._heard_from = len(self.messages)
        return messages

    def notices(self):
        return [m["text"] for m in self.new_messages() if m["type"] == "notice"]

    # The behaviour suite's Client

    def say(self, text):
        self.type(text)

    def private(self, nickname, text):
        self.type("@%s %s" % (nickname, text))

    def rename(self, nickname):
        self.type("/nick " + nickname)
        self.nickname = nickname

    def heard(self):
        heard = []
        for message in self.new_messages():
            kind = message["type"]
            if kind == "said":
                heard.append(("said", message["nickname"], message["text"]))
            elif kind == "private" and message["direction"] == "from":
                heard.append(("private", message["nickname"], message["text"]))
            elif kind == "renamed":
                heard.append(("renamed", message["old"], message["new"]))
            elif kind == "joined":
                heard.append(("joined", message["nickname"]))
            elif kind == "left":
                heard.append(("left", message["nickname"]))
            elif kind in ("notice", "announcement"):
                heard.append(("notice", message["text"]))
        return heard

    def stop_reading(self):
        self.transport.reading = False

    def closed(self):
        self.settle()
        return self._lost

    def lose_connection(self):
        """
        The transport reports the connection gone, as a real one would.
        """
        if not self._lost:
            self._lost = True
            self.channel.connectionLost(Failure(ConnectionDone()))
        self._clock.advance(0)


class WebSocketAdapter:
    """
    Browser users of the C{world}'s server, through its web port's L{Site}.
    """

    name = "websocket"

    def __init__(self, world):
        self.world = world
        self.site = web_site(world.factory)
        self._ports = itertools.count(52000)

    def connect(self, **options):
        """
        A browser at the nickname prompt.
        """
        return WebSocketClient(self.site, self.world.clock, next(self._ports), **options)

    def join(self, nickname, password=None):
        client = self.connect()
        client.type(nickname)
        if password is not None:
            client.type(password)
        welcome = "Welcome, %s!" % (nickname,)
        assert any(text.startswith(welcome) for text in client.notices()), client.messages
        client.nickname = nickname
        client.heard()
        return client
