"""
The server's parts arranged for tests that run without a reactor: the real
SQLite schema and the real argon2 hasher, answering at once instead of on
threads, so a L{Clock} drives everything; connections over
L{StringTransport}s and the steps of joining and logging in through them;
and just enough reactor for the threaded parts.
"""

import queue
import random

import argon2
from twisted.internet import defer
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from wazzap.persist.accounts import Accounts
from wazzap.persist.bans import Bans
from wazzap.chat import Chat
from wazzap.core.identity import new_session_key
from wazzap.core.interfaces import IMember
from wazzap.listeners.line import render
from wazzap.server import ChatFactory, Limits
from wazzap.persist.store import BUSY_TIMEOUT_SECONDS, Database, StoreError
from wazzap.text import strip_styles
from wazzap.threads import ThreadPoolService

#: What precedes every password prompt over a connection without TLS.
CLEAR_TEXT_WARNING = (
    "[Server] Warning: this connection is not encrypted: a password typed here "
    "can be read on the network."
)

#: The longest a test waits for a worker thread's answer.
WAIT_SECONDS = 10


class SynchronousStore:
    """
    A L{wazzap.persist.store.Store} whose calls run on the caller's thread: an
    in-memory L{Database} behind the same Deferred-returning methods.
    """

    def __init__(self):
        self.database = Database.open(":memory:")

    def __getattr__(self, name):
        method = getattr(self.database, name)
        return lambda *args, **kwargs: defer.maybeDeferred(method, *args, **kwargs)

    def close(self):
        self.database.close()
        return defer.succeed(None)


class LockedStore(SynchronousStore):
    """
    A L{SynchronousStore} whose writes fail as they do while another process
    holds SQLite's write lock: after the busy timeout on C{clock}.
    """

    WRITES = frozenset(
        ["create_account", "set_password", "delete_account", "set_admin", "session_started",
         "session_ended", "close_dangling_sessions", "add_ban", "remove_ban",
         "leave_memo", "delete_memos", "take_back_memo"]
    )

    def __init__(self, clock):
        SynchronousStore.__init__(self)
        self._clock = clock

    def __getattr__(self, name):
        if name not in self.WRITES:
            return SynchronousStore.__getattr__(self, name)
        return lambda *args, **kwargs: deferLater(self._clock, BUSY_TIMEOUT_SECONDS, self._fail)

    def _fail(self):
        raise StoreError(
            "cannot write to database :memory:: locked by another process for more than %d seconds"
            % (BUSY_TIMEOUT_SECONDS,)
        )


class ThreadedReactor:
    """
    Just enough reactor for L{Store}: results from the worker thread are
    queued for the test's thread, which runs them in L{wait}.
    """

    def __init__(self):
        self.calls = queue.Queue()
        self.triggers = []

    def callFromThread(self, function, *args, **kwargs):
        self.calls.put((function, args, kwargs))

    def addSystemEventTrigger(self, phase, event, function, *args, **kwargs):
        handle = (phase, event, function)
        self.triggers.append(handle)
        return handle

    def removeSystemEventTrigger(self, handle):
        self.triggers.remove(handle)

    def wait(self, deferred):
        """
        Run queued calls until C{deferred} has fired, for at most
        WAIT_SECONDS; return its result or raise its exception.
        """
        results = []
        deferred.addBoth(results.append)
        while not results:
            function, args, kwargs = self.calls.get(timeout=WAIT_SECONDS)
            function(*args, **kwargs)
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]


def started_threads(reactor, size, name="wazzap-test"):
    """
    A started L{ThreadPoolService} of C{size} threads on C{reactor}.
    """
    threads = ThreadPoolService(name, size, reactor)
    threads.startService()
    return threads


class SynchronousHasher:
    """
    argon2id at a cost low enough for unit tests, answering at once.
    """

    def __init__(self):
        self._argon2 = argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)

    def hash(self, password, lane=None):
        return defer.succeed(self._argon2.hash(password))

    def verify(self, password_hash, password, lane=None):
        try:
            return defer.succeed(self._argon2.verify(password_hash, password))
        except argon2.exceptions.VerificationError:
            return defer.succeed(False)

    def close(self):
        pass


def add_account(factory, nickname, password, admin=False):
    """
    Register C{nickname} straight in C{factory}'s database, as the admin
    command does: the way to create an C{--admin} account.
    """
    database = factory.accounts.store.database
    assert database.create_account(nickname, factory.accounts.hasher._argon2.hash(password))
    if admin:
        database.set_admin(nickname, True)


def make_factory(admins=(), approve_joins=False, consent=False, locked=False, **limits):
    """
    A L{ChatFactory} on a L{Clock}, with flood control off unless asked for;
    with C{locked}, its database refuses every write (L{LockedStore}).
    """
    clock = Clock()
    limits.setdefault("flood_rate_lines_per_second", 0)
    store = LockedStore(clock) if locked else SynchronousStore()
    accounts = Accounts(store, SynchronousHasher(), admins, clock)
    return ChatFactory(
        Chat(clock, consent_by_default=consent),
        accounts,
        Bans(store, clock),
        Limits(**limits),
        clock=clock,
        approve_joins=approve_joins,
    )


class Connection:
    """
    One protocol over a L{StringTransport}, read back as lines without colour.
    """

    def __init__(self, factory, host="127.0.0.1", port=40000, private=True):
        """
        @param private: whether the server's end is a Unix socket, where
            passwords draw no warning; else it is TCP without TLS.
        """
        from twisted.internet.address import IPv4Address, UNIXAddress

        self.factory = factory
        self.protocol = factory.buildProtocol(IPv4Address("TCP", host, port))
        self.transport = StringTransport(
            hostAddress=UNIXAddress(b"/run/wazzap.sock") if private else None,
            peerAddress=IPv4Address("TCP", host, port),
        )
        self.protocol.makeConnection(self.transport)
        self.settle()

    def settle(self):
        """
        Let the clock run this turn's calls, so queued output is written.
        """
        self.factory.clock.advance(0)

    def send(self, line, ending=b"\n"):
        data = line.encode("utf-8") if isinstance(line, str) else line
        self.protocol.dataReceived(data + ending)
        self.settle()

    def raw(self):
        """
        The bytes written since the last read, and forget them.
        """
        value = self.transport.value()
        self.transport.clear()
        return value

    def lines(self):
        """
        The lines written since the last read, colours removed.
        """
        return [strip_styles(line) for line in self.raw().decode("utf-8").splitlines()]

    def join(self, nickname):
        self.send(nickname)
        lines = self.lines()
        assert any(line.startswith("[Server] Welcome, %s!" % (nickname,)) for line in lines), lines
        return self

    def close(self):
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.settle()


def joined(factory, *nicknames):
    """
    Connections joined under C{nicknames}, everything they were told so far read.
    """
    connections = [Connection(factory, port=40000 + i).join(name) for i, name in enumerate(nicknames)]
    for connection in connections:
        connection.lines()
    return connections


def connect(factory, port):
    """
    A new connection at the nickname prompt, the greeting read.
    """
    connection = Connection(factory, port=port)
    connection.lines()
    return connection


def registered(factory, nickname, password="correct horse", port=45000):
    """
    Join as C{nickname}, register it, and return the connection.
    """
    connection = Connection(factory, port=port).join(nickname)
    connection.send("/register " + password)
    assert "[Server] registered: from now on %s needs this password" % (nickname,) in connection.lines()
    return connection


def admin_logged_in(factory, nickname, port, password="correct horse"):
    """
    Create the admin account C{nickname} as the admin command would, log in
    to it, and return the connection.
    """
    add_account(factory, nickname, password, admin=True)
    connection = log_in(factory, nickname, password, port)
    assert "[Server] You are an admin: /help lists your commands." in connection.lines()
    return connection


def log_in(factory, nickname, password="correct horse", port=46000):
    """
    Connect as the registered C{nickname} and give C{password}; the answer is left unread.
    """
    connection = connect(factory, port)
    connection.send(nickname)
    assert connection.lines() == ["[Server] %s is registered. Password:" % (nickname,)]
    connection.send(password)
    return connection


def admin_and_user(factory):
    """
    The admin root1 and the user bob (from 192.0.2.7), both joined, the admin's lines read.
    """
    admin = admin_logged_in(factory, "root1", port=56000)
    bob = Connection(factory, port=56001, host="192.0.2.7").join("bob")
    admin.lines()
    return admin, bob


@implementer(IMember)
class RecordingMember:
    """
    A member that keeps what it is sent, as bytes and as plain lines, and
    the reason it was closed with.
    """

    is_admin = False
    account = None
    peer = "192.0.2.1"
    room = None

    def __init__(self, nickname, renderer=render.PLAIN):
        self.nickname = nickname
        self.color = None
        self.session_key = new_session_key()
        self.renderer = renderer
        self.sent = []
        self.lines = []
        self.closed = None

    def send(self, data):
        self.sent.append(data)
        self.lines.extend(strip_styles(data.decode("utf-8")).splitlines())

    def close(self, reason, farewell):
        self.closed = (reason, farewell)

    def disconnect(self, reason, notice=None):
        self.close(reason, notice or "disconnected: " + reason)


class Socket:
    """
    A socket whose kernel buffer takes C{room} bytes, then nothing.
    """

    def __init__(self, room=0):
        self.room = room
        self.sent = []

    def send(self, data):
        taken = data[: self.room]
        self.room -= len(taken)
        self.sent.append(taken)
        return len(taken)


def socket_like(transport, pending=0, room=0):
    """
    Give a test transport the buffers of Twisted's socket transports, with
    C{pending} bytes its peer has not taken yet, and a L{Socket} that takes
    C{room} bytes.
    """
    transport.dataBuffer, transport.offset, transport._tempDataLen = b"x" * pending, 0, 0
    transport._tempDataBuffer = []
    if not isinstance(getattr(transport, "socket", None), Socket):
        transport.socket = Socket(room)


def fired(deferred):
    """
    What C{deferred}, answered at once (as in-memory presence answers),
    fired with.
    """
    results = []
    deferred.addBoth(results.append)
    assert results, "the answer came at once"
    return results[0]


def settle(chat, *members):
    """
    End the turn and forget what the recording C{members} were sent.
    """
    chat.flusher.flush()
    for member in members:
        member.lines.clear()
        member.sent.clear()


def chat_with(*nicknames, **options):
    """
    A L{Chat} on a L{Clock} (C{options} as it takes them) with a
    L{RecordingMember} joined for each of C{nicknames}, the turn ended and
    what they were told forgotten.
    """
    chat = Chat(Clock(), rng=random.Random(1), **options)
    members = []
    for nickname in nicknames:
        member = RecordingMember(nickname)
        member.color = chat.pick_color()
        chat.join(member)
        members.append(member)
    settle(chat, *members)
    return chat, members
