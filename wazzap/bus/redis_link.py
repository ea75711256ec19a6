"""
One process's two connections to Redis: one for commands and publishing,
one for the channels it listens to (a connection that subscribes can send
nothing else).  Each reconnects with backoff (L{ClientService}); the link is
up while both are, and says so to its owner, who resynchronises on every
return.

The client is txredisapi's protocol, native to Twisted; the connecting,
retrying and timing are Twisted's own, so the reactor is the one passed in.
"""

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import txredisapi
from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, protocol
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.logger import Logger

from wazzap.bus.redis_subscriber import SubscriberFactory
from wazzap.failures import OperatorError

#: Seconds Redis may take to answer a command before the connection is
#: taken for dead and made again: what notices a Redis that hangs.
REPLY_TIMEOUT_SECONDS = 5

#: Seconds to connect before trying again.
CONNECT_TIMEOUT_SECONDS = 5

#: Backoff between attempts to reach Redis again: from half a second,
#: growing, to at most this many seconds.
MAX_RETRY_SECONDS = 10


@dataclass(frozen=True)
class RedisAddress:
    """
    Where Redis is, from a C{redis://} or C{rediss://} (TLS) URL.
    """

    host: str
    port: int
    db: int
    password: str | None
    tls: bool

    def __str__(self):
        scheme = "rediss" if self.tls else "redis"
        return "%s://%s:%d/%d" % (scheme, self.host, self.port, self.db)


def parse_redis_url(url, environ=None):
    """
    The L{RedisAddress} of C{url}: C{redis://[:PASSWORD@]HOST[:PORT][/DB]},
    or C{rediss://} for TLS; without a password in it, C{REDIS_PASSWORD} of
    C{environ} (the process's environment by default).  Raise
    L{OperatorError} saying what is wrong with it.
    """
    environ = os.environ if environ is None else environ
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise OperatorError(
            "--redis %r: a Redis URL starts redis:// or rediss:// (TLS), "
            "like redis://127.0.0.1:6379/0" % (url,)
        )
    try:
        port = parts.port or 6379
    except ValueError:
        raise OperatorError("--redis %r: the port is not a number from 1 to 65535" % (url,))
    if not parts.hostname:
        raise OperatorError("--redis %r: no host" % (url,))
    path = parts.path.strip("/") or "0"
    if not (path.isascii() and path.isdigit()):
        raise OperatorError("--redis %r: the database is a number, like /0" % (url,))
    password = unquote(parts.password) if parts.password else environ.get("REDIS_PASSWORD")
    return RedisAddress(parts.hostname, port, int(path), password or None, parts.scheme == "rediss")


def _endpoint(reactor, address):
    """
    Where to connect: an address as it is, a name through the resolver.
    """
    host, port = address.host, address.port
    if isIPAddress(host):
        return TCP4ClientEndpoint(reactor, host, port, CONNECT_TIMEOUT_SECONDS)
    if isIPv6Address(host):
        return TCP6ClientEndpoint(reactor, host, port, CONNECT_TIMEOUT_SECONDS)
    return HostnameEndpoint(reactor, host, port, CONNECT_TIMEOUT_SECONDS)


#: The publishes of one turn, in order: KEYS the channels, ARGV the messages.
_PUBLISH_ALL = "for i, channel in ipairs(KEYS) do redis.call('PUBLISH', channel, ARGV[i]) end"


def _fire_all(result, outgoing):
    for _, _, sent in outgoing:
        sent.callback(None)


def _fail_all(failure, outgoing):
    for _, _, sent in outgoing:
        sent.errback(failure)


class _CommandsFactory(protocol.Factory):
    """
    Builds the commands connection's txredisapi protocol for a
    L{ClientService}, and takes txredisapi's calls when logging in to Redis
    fails.
    """

    #: txredisapi logs a failed login only for "lazy" connections; ours are
    #: logged by C{on_error}.
    isLazy = False
    noisy = False

    def __init__(self, address, on_error):
        self._address = address
        self.connectionError = on_error

    def buildProtocol(self, addr):
        built = txredisapi.RedisProtocol(
            charset="utf-8",
            replyTimeout=REPLY_TIMEOUT_SECONDS,
            password=self._address.password,
            dbid=self._address.db,
            # Session keys look like numbers ("1.2"): keep them strings.
            convertNumbers=False,
        )
        built.factory = self
        return built

    def stopTrying(self):
        """
        txredisapi gives up on a refused password; the service goes on
        trying, since the operator may mend Redis while wazzap runs.
        """


class RedisLink(service.MultiService):
    """
    Commands and subscriptions to one Redis, up or down together.

    @ivar up: whether both connections are ready.
    """

    log = Logger()

    def __init__(self, address, reactor, on_message, on_up, on_down):
        """
        @param address: the L{RedisAddress}.
        @param on_message: called with (channel, message) for each message
            on a subscribed channel.
        @param on_up: called when both connections are ready (again), after
            the channels are subscribed.
        @param on_down: called when the link, up, loses either.
        """
        super().__init__()
        self.address = address
        self.up = False
        self._on_up = on_up
        self._on_down = on_down
        self._reactor = reactor
        # (channel, message, Deferred) published this turn, not yet sent.
        self._outgoing = []
        self._sending = None
        self._channels = set()
        # Commands asked while a subscription is on its way, in order, with
        # the Deferreds their answers go to; None when none is.
        self._held = None
        self._subscribing = 0
        self._commands = None
        self._subscriber = None
        endpoint = _endpoint(reactor, address)
        if address.tls:
            from twisted.internet.ssl import optionsForClientTLS

            endpoint = wrapClientTLS(optionsForClientTLS(address.host), endpoint)
        retry = backoffPolicy(initialDelay=0.5, maxDelay=MAX_RETRY_SECONDS)
        for factory, prepare in (
            (_CommandsFactory(address, self._refused), self._commands_ready),
            (SubscriberFactory(address.password, on_message, self._refused), self._subscriber_ready),
        ):
            ClientService(
                endpoint, factory, retryPolicy=retry, clock=reactor, prepareConnection=prepare
            ).setServiceParent(self)

    def _refused(self, why):
        self.log.error("Redis at {address}: {why}", address=self.address, why=why)

    def _commands_ready(self, connection):
        return connection.whenConnected().addCallback(self._connected, "_commands")

    def _subscriber_ready(self, connection):
        ready = connection.whenConnected()

        def subscribe(connection):
            if self._channels:
                return connection.subscribe(sorted(self._channels)).addCallback(
                    lambda _: connection
                )
            return connection

        return ready.addCallback(subscribe).addCallback(self._connected, "_subscriber")

    def _connected(self, connection, slot):
        setattr(self, slot, connection)
        connection.whenDisconnected().addCallback(self._lost, slot)
        if not self.up and self._commands is not None and self._subscriber is not None:
            self.up = True
            self.log.info("connected to Redis at {address}", address=self.address)
            self._on_up()
        return connection

    def _lost(self, connection, slot):
        if getattr(self, slot) is not connection:
            return
        setattr(self, slot, None)
        # Its subscriptions' answers fail next; the held commands go, or fail.
        self._release_held()
        if self.up:
            self.up = False
            self.log.warn("lost Redis at {address}; trying again", address=self.address)
            self._on_down()

    def execute(self, *command):
        """
        Send C{command} (its words); a Deferred firing with Redis's answer,
        or failing with L{txredisapi.ConnectionError} when it cannot be sent.

        A command asked after a subscription waits until Redis has taken
        that subscription: the two connections are not in order with each
        other, and what this process publishes (a member's arrival, say)
        must not reach another that answers it in a room this one does
        not hear yet.
        """
        if self._commands is None:
            return defer.fail(txredisapi.ConnectionError("Redis is not connected"))
        if self._held is not None:
            answered = defer.Deferred()
            self._held.append((command, answered))
            return answered
        return defer.maybeDeferred(self._commands.execute_command, *command)

    def _subscribed(self, result):
        """
        Redis took a subscription, or the connection asking for it was lost.
        """
        self._subscribing -= 1
        if not self._subscribing:
            self._release_held()

    def _release_held(self):
        """
        Send the commands held for subscriptions, in order; if the link
        went down meanwhile, fail them.
        """
        held, self._held = self._held, None
        for command, answered in held or ():
            self.execute(*command).chainDeferred(answered)

    def publish(self, channel, message):
        """
        Publish C{message} (a str) on C{channel} at the end of this reactor
        turn, in one command with the turn's other publishes: a command
        costs this process some 30 microseconds of the client's work, the
        most of what a line through Redis costs it.  A Deferred firing once
        Redis took it, or failing as L{execute} does.
        """
        sent = defer.Deferred()
        self._outgoing.append((channel, message, sent))
        if self._sending is None:
            self._sending = self._reactor.callLater(0, self._publish_outgoing)
        return sent

    def _publish_outgoing(self):
        if self._sending is not None and self._sending.active():
            self._sending.cancel()
        self._sending = None
        outgoing, self._outgoing = self._outgoing, []
        if not outgoing:
            return
        if len(outgoing) == 1:
            channel, message, _ = outgoing[0]
            answered = self.execute("PUBLISH", channel, message)
        else:
            channels = [channel for channel, _, _ in outgoing]
            messages = [message for _, message, _ in outgoing]
            answered = self.execute("EVAL", _PUBLISH_ALL, len(outgoing), *channels, *messages)
        answered.addCallbacks(_fire_all, _fail_all, (outgoing,), None, (outgoing,))

    def subscribe(self, channel):
        """
        Hear C{channel} from now on, and after every reconnection.
        """
        if channel in self._channels:
            return
        self._channels.add(channel)
        if self._subscriber is not None:
            if self._held is None:
                self._held = []
            self._subscribing += 1
            self._subscriber.subscribe(channel).addBoth(self._subscribed)

    def unsubscribe(self, channel):
        """
        Hear C{channel} no more.
        """
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        if self._subscriber is not None:
            self._subscriber.unsubscribe(channel).addErrback(lambda _: None)

    def stopService(self):
        # What was published this turn (a goodbye) goes before the link does.
        self._publish_outgoing()
        self.up = False
        return super().stopService()
