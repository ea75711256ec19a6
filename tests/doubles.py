"""
The server's parts arranged for tests that run without a reactor: the real
SQLite schema and the real argon2 hasher, answering at once instead of on
threads, so a L{Clock} drives everything.
"""

import argon2
from twisted.internet import defer
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport

from wazzap.accounts import Accounts
from wazzap.bans import Bans
from wazzap.chat import Chat
from wazzap.server import ChatFactory, Limits
from wazzap.store import BUSY_TIMEOUT_SECONDS, Database, StoreError
from wazzap.text import strip_styles


class SynchronousStore:
    """
    A L{wazzap.store.Store} whose calls run on the caller's thread: an
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
         "session_ended", "close_dangling_sessions", "add_ban", "remove_ban"]
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
        accounts.throttle,
        Limits(**limits),
        clock=clock,
        approve_joins=approve_joins,
    )


class Connection:
    """
    One protocol over a L{StringTransport}, read back as lines without colour.
    """

    def __init__(self, factory, host="127.0.0.1", port=40000):
        from twisted.internet.address import IPv4Address

        self.factory = factory
        self.protocol = factory.buildProtocol(IPv4Address("TCP", host, port))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
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
