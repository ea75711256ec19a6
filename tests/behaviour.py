"""
One chat server in memory (L{World}) and an adapter per listener that logs
people in through it and reads back what they were told as plain tuples,
so that one suite of behaviours (L{tests.test_behaviour}) runs over every
listener and every pair of them:

    ("said", nickname, text)     ("private", from_nickname, text)
    ("renamed", old, new)        ("joined", nickname)
    ("left", nickname)           ("notice", text)

Each step that sends settles the clock (C{world.clock.advance(0)}), so what
was queued is written.  A listener's adapter has C{name}, C{join(nickname,
password=None)} -> a client in #lobby with its welcome read and forgotten;
a client has C{nickname}, C{say}, C{private}, C{rename}, C{heard},
C{stop_reading} and C{closed}.
"""

import itertools
import re

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.behaviour_websocket import WebSocketAdapter
from tests.doubles import Connection, make_factory
from wazzap.listeners.irc import wire
from wazzap.listeners.irc.connection import IrcFactory
from wazzap.text import strip_styles

#: The name the IRC listener of a L{World} gives itself.
SERVER_NAME = "irc.test"


class World:
    """
    One chat server on one Clock, with each listener's factory around it.
    """

    def __init__(self, **limits):
        self.factory = make_factory(**limits)
        self.clock = self.factory.clock
        self.irc_factory = IrcFactory(self.factory, SERVER_NAME)
        self._ports = itertools.count(41000)

    def next_port(self):
        return next(self._ports)

    def settle(self):
        self.clock.advance(0)


class _Client:
    """
    What every adapter's client shares: its transport and connection.
    """

    def __init__(self, world, transport, protocol, nickname):
        self.world = world
        self.transport = transport
        self.protocol = protocol
        self.nickname = nickname

    def _raw(self):
        value = self.transport.value()
        self.transport.clear()
        return value

    def stop_reading(self):
        self.transport.producer.pauseProducing()

    def closed(self):
        return bool(self.transport.disconnecting)

    def lose_connection(self):
        """
        The transport reports the connection gone, as a real one would.
        """
        self.protocol.connectionLost(Failure(ConnectionLost()))
        self.world.settle()


class LineAdapter:
    """
    People on the line listener (nc, telnet, wazzap-client).
    """

    name = "line"

    def __init__(self, world):
        self.world = world

    def join(self, nickname, password=None):
        connection = Connection(self.world.factory, port=self.world.next_port())
        connection.send(nickname)
        if password is not None:
            connection.send(password)
        client = LineClient(self.world, connection, nickname)
        told = client.heard()
        welcome = "Welcome, %s!" % (nickname,)
        assert any(event[0] == "notice" and event[1].startswith(welcome) for event in told), told
        return client


_LINE_SAID = re.compile(r"(?:\[#[^\]]+\] )?([A-Za-z0-9_-]{1,16}): (.*)\Z")
_LINE_JOINED = re.compile(r"(\S+) joined (?:the chat|#\S+)\Z")
_LINE_LEFT = re.compile(r"(\S+) left (?:the chat|#\S+)(?: \(.*\))?\Z")
_LINE_RENAMED = re.compile(r"(\S+) is now known as (\S+)\Z")


class LineClient(_Client):
    def __init__(self, world, connection, nickname):
        _Client.__init__(self, world, connection.transport, connection.protocol, nickname)
        self.connection = connection

    def _line(self, line):
        self.connection.send(line)

    def say(self, text):
        self._line(text)

    def private(self, nickname, text):
        self._line("@%s %s" % (nickname, text))

    def rename(self, nickname):
        self._line("/nick " + nickname)
        self.nickname = nickname

    def heard(self):
        told = []
        for line in strip_styles(self._raw().decode("utf-8")).splitlines():
            told.extend(_line_event(line))
        return told


def _line_event(line):
    if line.startswith("[Server] "):
        words = line[len("[Server] ") :]
        for pattern, kind in (
            (_LINE_RENAMED, "renamed"),
            (_LINE_JOINED, "joined"),
            (_LINE_LEFT, "left"),
        ):
            match = pattern.match(words)
            if match:
                return [(kind,) + match.groups()]
        return [("notice", words)]
    if line.startswith("[PM from "):
        sender, _, words = line[len("[PM from ") :].partition("] ")
        return [("private", sender, words)]
    if line.startswith("[PM to "):
        return []  # the copy of one's own private message
    match = _LINE_SAID.match(line)
    if match:
        return [("said",) + match.groups()]
    return [("notice", line)]


class IrcAdapter:
    """
    People on the IRC listener, registering as an IRC client does (CAP LS,
    NICK, USER, CAP END).
    """

    name = "irc"

    def __init__(self, world):
        self.world = world

    def connect(self):
        """
        An IRC client connected but not registered.
        """
        port = self.world.next_port()
        address = IPv4Address("TCP", "127.0.0.1", port)
        protocol = self.world.irc_factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        self.world.settle()
        return IrcClient(self.world, transport, protocol, None)

    def join(self, nickname, password=None):
        client = self.connect()
        if password is not None:
            client.send("PASS :" + password)
        client.send("CAP LS 302", "NICK " + nickname, "USER %s 0 * :%s" % (nickname, nickname))
        client.send("CAP END")
        client.nickname = nickname
        welcome = client.lines()
        assert any(" 001 %s " % (nickname,) in line for line in welcome), welcome
        return client


class IrcClient(_Client):
    def send(self, *lines):
        """
        Send C{lines} (str or bytes) as IRC lines, in one read.
        """
        data = b"".join(
            (line.encode("utf-8") if isinstance(line, str) else line) + b"\r\n" for line in lines
        )
        self.protocol.dataReceived(data)
        self.world.settle()

    def lines(self):
        """
        The lines written since the last read, decoded.
        """
        return self._raw().decode("utf-8", "replace").splitlines()

    def say(self, text):
        self.send("PRIVMSG #lobby :" + text)

    def private(self, nickname, text):
        self.send("PRIVMSG %s :%s" % (nickname, text))

    def rename(self, nickname):
        self.send("NICK " + nickname)
        self.nickname = nickname

    def heard(self):
        told = []
        for line in self.lines():
            told.extend(_irc_event(line, self.nickname))
        return told


def _irc_event(line, nickname):
    source, command, params = _irc_message(line)
    sender = source.partition("!")[0]
    if command == "PRIVMSG":
        target, text = params
        action = wire.action_of(text)
        text = wire.strip_formatting(text if action is None else "* %s %s" % (sender, action))
        if target.startswith("#"):
            return [("said", sender, text)]
        return [("private", sender, text)]
    if command == "NOTICE":
        return [("notice", params[-1])]
    if command == "JOIN":
        return [("joined", sender)]
    if command in ("PART", "QUIT"):
        return [("left", sender)]
    if command == "NICK":
        return [("renamed", sender, params[0])]
    return []  # numerics, PING: the protocol's own business


def _irc_message(line):
    source = ""
    if line.startswith(":"):
        source, _, line = line[1:].partition(" ")
    command, params = wire.parse(line)
    return source, command, params


ADAPTERS = (LineAdapter, IrcAdapter, WebSocketAdapter)
