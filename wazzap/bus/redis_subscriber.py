"""
The connection that listens to Redis channels, read whole.

txredisapi's reader hands on each bulk string of a reply in a reactor turn
of its own, so each message published to a room arrived in its own turn,
and the outbox (which sends each member one write per turn) wrote once per
line instead of once per batch: thirty times the CPU of one process for
the same traffic.  What a subscribing connection receives is simple (the
replies to SUBSCRIBE, UNSUBSCRIBE and AUTH, and the messages), so it is
parsed here, every complete reply of a read in that read's turn.
"""

from collections import deque

from twisted.internet import defer, protocol
from twisted.logger import Logger
from txredisapi import ConnectionError as RedisConnectionError

CRLF = b"\r\n"


class RespError(Exception):
    """
    An error reply from Redis (C{-ERR ...}).
    """


class ProtocolError(Exception):
    """
    What came is not RESP: the connection cannot be read further.
    """


def _reply(buffer, start):
    """
    The reply that starts at C{start} of C{buffer}, and where the next
    begins; (L{None}, L{None}) if the buffer holds only part of it.
    """
    end = buffer.find(CRLF, start)
    if end < 0:
        return None, None
    kind, line = buffer[start : start + 1], buffer[start + 1 : end]
    after = end + 2
    try:
        if kind == b"$":
            length = int(line)
            if length < 0:
                return None, after
            if len(buffer) < after + length + 2:
                return None, None
            return bytes(buffer[after : after + length]), after + length + 2
        if kind == b"*":
            items = []
            for _ in range(int(line)):
                item, after = _reply(buffer, after)
                if after is None:
                    return None, None
                items.append(item)
            return items, after
        if kind == b":":
            return int(line), after
    except ValueError:
        raise ProtocolError("not a number in a Redis reply: %r" % (bytes(line[:40]),))
    if kind == b"+":
        return bytes(line).decode("utf-8", "replace"), after
    if kind == b"-":
        return RespError(bytes(line).decode("utf-8", "replace")), after
    raise ProtocolError("not a Redis reply: %r" % (bytes(buffer[start : start + 40]),))


class RespReader:
    """
    Replies out of the bytes of a connection, however they are cut.
    """

    def __init__(self):
        self._buffer = b""

    def feed(self, data):
        """
        The replies that C{data} completes, in order; what is left of a
        reply waits for more.
        """
        buffer = self._buffer + data if self._buffer else data
        replies = []
        start = 0
        while start < len(buffer):
            reply, after = _reply(buffer, start)
            if after is None:
                break
            replies.append(reply)
            start = after
        self._buffer = buffer[start:]
        return replies


def _command(*words):
    encoded = [word.encode("utf-8") for word in words]
    return b"*%d\r\n" % (len(encoded),) + b"".join(
        b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded
    )


class SubscriberFactory(protocol.Factory):
    """
    Builds L{RedisSubscriber}s that log in with C{password} (or not) and
    hand each message to C{on_message(channel, message)}.
    """

    noisy = False
    protocol = None  # set below

    def __init__(self, password, on_message, on_error):
        self.password = password
        self.on_message = on_message
        self.connectionError = on_error


class RedisSubscriber(protocol.Protocol):
    """
    A subscribing connection: L{subscribe}, L{unsubscribe}, and each
    message handed to the factory's C{on_message(channel, message)}.

    Its factory also has C{password} (or L{None}) and C{connectionError(why)},
    told when Redis refuses the password.
    """

    log = Logger()

    def __init__(self):
        self._reader = RespReader()
        # [kind, confirmations still to come, Deferred] for each request.
        self._expected = deque()
        self._ready = defer.Deferred()
        self._gone = []
        self.connected = False

    def connectionMade(self):
        self.connected = True
        password = self.factory.password
        if password is None:
            self._ready.callback(self)
            return
        authenticated = self._ask("auth", 1, "AUTH", password)
        authenticated.addCallbacks(lambda _: self._ready.callback(self), self._refused)

    def _refused(self, failure):
        self.factory.connectionError("could not log in: %s" % (failure.getErrorMessage(),))
        self.transport.loseConnection()
        self._ready.errback(failure)

    def whenConnected(self):
        """
        A Deferred firing with this protocol once it may subscribe.
        """
        return self._ready

    def whenDisconnected(self):
        """
        A Deferred firing with this protocol once the connection is lost.
        """
        gone = defer.Deferred()
        self._gone.append(gone)
        return gone

    def subscribe(self, channels):
        """
        Hear C{channels} (a name or a list of them); a Deferred firing once
        Redis took them all.
        """
        channels = [channels] if isinstance(channels, str) else list(channels)
        return self._ask("subscribe", len(channels), "SUBSCRIBE", *channels)

    def unsubscribe(self, channels):
        channels = [channels] if isinstance(channels, str) else list(channels)
        return self._ask("unsubscribe", len(channels), "UNSUBSCRIBE", *channels)

    def _ask(self, kind, confirmations, *words):
        if not confirmations:
            return defer.succeed(None)
        if not self.connected:
            return defer.fail(RedisConnectionError("Redis is not connected"))
        answered = defer.Deferred()
        self._expected.append([kind, confirmations, answered])
        self.transport.write(_command(*words))
        return answered

    def dataReceived(self, data):
        try:
            replies = self._reader.feed(data)
        except ProtocolError as e:
            self.log.error("Redis: {why}; connecting again", why=e)
            self.transport.abortConnection()
            return
        on_message = self.factory.on_message
        for reply in replies:
            if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
                on_message(reply[1].decode("utf-8", "replace"), reply[2].decode("utf-8", "replace"))
            else:
                self._answered(reply)

    def _answered(self, reply):
        """
        A reply to the oldest request not yet fully answered.
        """
        if not self._expected:
            return
        expected = self._expected[0]
        if isinstance(reply, RespError):
            self._expected.popleft()
            expected[2].errback(reply)
            return
        expected[1] -= 1
        if expected[1] <= 0:
            self._expected.popleft()
            expected[2].callback(reply)

    def connectionLost(self, reason):
        self.connected = False
        expected, self._expected = self._expected, deque()
        for _, _, answered in expected:
            answered.errback(RedisConnectionError("Lost connection"))
        gone, self._gone = self._gone, []
        for waiting in gone:
            waiting.callback(self)


SubscriberFactory.protocol = RedisSubscriber
