"""
The long-running part of the server: listening on every configured endpoint,
telling everyone when the server stops, keeping the login history to its
configured length, and serving the metrics and the web page.
"""

import os
import resource

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from wazzap.net.tls import ClearText, TLSOrPlainFactory
from wazzap.persist.retention import Retention
from wazzap.failures import log_failure

SHUTDOWN_NOTICE = "server is shutting down"

HOUR = 60 * 60
DAY = 24 * HOUR
#: Login history kept unless --session-history-days says otherwise.
SESSION_HISTORY_DAYS = 90
#: How often old login history is pruned, after the prune at start-up.
PRUNE_INTERVAL_SECONDS = 1 * HOUR

#: Descriptors the process needs besides clients: listening sockets, the log,
#: the database, the reactor's own.
RESERVED_FILES = 32
#: Below this open-file limit, the log warns that it caps the clients.
WANTED_OPEN_FILES = 65536


#: Twisted listens with a backlog of 50: a burst of connections (a class
#: joining at once) overflows it, and each SYN dropped costs that person a
#: second.
LISTEN_BACKLOG = 1024


def with_backlog(description):
    """
    A TCP endpoint description with a generous listen backlog, unless it
    names its own.
    """
    if description.startswith(("tcp:", "tcp6:")) and "backlog=" not in description:
        return "%s:backlog=%d" % (description, LISTEN_BACKLOG)
    return description


class CannotListen(Exception):
    """
    An endpoint did not listen; the message says why, as people say it.
    """


def listen_at_once(reactor, description, factory):
    """
    Listen with C{factory} on the endpoint C{description} now and return
    the port, or raise L{CannotListen}.

    Stream endpoints of sockets (tcp, tcp6, unix, ssl, systemd) listen at
    once, so the outcome is known before twistd goes on.
    """
    endpoint = serverFromString(reactor, with_backlog(description))
    outcome = []
    endpoint.listen(factory).addBoth(outcome.append)
    if not outcome or isinstance(outcome[0], Failure):
        raise CannotListen(_plain_reason(outcome[0].value if outcome else "did not listen at once"))
    return outcome[0]


def raise_open_file_limit(log):
    """
    Raise the soft limit on open files to the hard limit: every client is one
    file descriptor.  Return the limit in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warn("could not raise the open-file limit: {error}", error=e)
    clients = max(soft - RESERVED_FILES, 0)
    if soft < WANTED_OPEN_FILES:
        log.warn(
            "the open-file limit ({limit}) caps wazzap at about {clients} clients at once; "
            "raise it (ulimit -n, or LimitNOFILE= under systemd) to serve more",
            limit=soft,
            clients=clients,
        )
    else:
        log.info(
            "open-file limit is {limit}: room for about {clients} clients at once",
            limit=soft,
            clients=clients,
        )
    return soft


class ChatServerService(Service):
    """
    Listens with one L{wazzap.server.ChatFactory} on several endpoints.

    L{listen} is called by L{wazzap.app.tap.makeService}, before twistd turns
    into a daemon: a port in use is then told, in one line, on the terminal
    that started the server, which exits with status 1 having written no
    pid file and no log.  After the fork, the daemon inherits the sockets.
    """

    log = Logger()

    def __init__(
        self,
        factory,
        endpoint_descriptions,
        reactor=None,
        tls_descriptions=(),
        certificate=None,
        require_tls_for_passwords=False,
        irc=None,
    ):
        """
        @param tls_descriptions: the endpoints of the TLS ports (plain
            stream endpoints: TLS is added here, with C{certificate}, a
            L{wazzap.net.tls.ServerCertificate}).
        @param require_tls_for_passwords: whether connections without TLS
            refuse passwords.
        @param irc: the IRC listener's factory and its plain and TLS
            endpoints (L{wazzap.app.tap.irc_listener}), or L{None}.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.factory = factory
        self.endpoint_descriptions = endpoint_descriptions
        self.tls_descriptions = tls_descriptions
        self.certificate = certificate
        self.require_tls_for_passwords = require_tls_for_passwords
        self.irc = irc
        self._reactor = reactor
        self._ports = []

    def listen(self):
        """
        Listen on every endpoint now, or stop listening on all of them and
        raise L{SystemExit} with a one-line reason.
        """
        raise_open_file_limit(self.log)
        plain, secure = [], []
        for description in self.endpoint_descriptions:
            tls = description.startswith("ssl:")
            port = self._listen(description, self.factory, tls)
            (secure if tls else plain).append(port)
        if self.tls_descriptions:
            tls_factory = TLSOrPlainFactory(self.certificate, self.factory, self._reactor)
            self.log.info("TLS certificate: {certificate}", certificate=self.certificate.description)
            for description in self.tls_descriptions:
                secure.append(self._listen(description, tls_factory, True))
            tls_factory.plain_ports = _port_names(plain)
        if self.irc is not None:
            self._listen_irc(*self.irc)
        self.factory.clear_text = ClearText(_port_names(secure), self.require_tls_for_passwords)

    def _listen_irc(self, irc_factory, descriptions, tls_descriptions):
        """
        Listen for IRC clients: in plain text, and with TLS only on the TLS
        ports (an IRC client over TLS starts the handshake, a plain one
        waits for nothing, so there is no telling them apart as the line
        listener's TLS ports do).
        """
        for description in descriptions:
            self._listen(description, irc_factory, description.startswith("ssl:"))
        if tls_descriptions:
            tls_factory = TLSMemoryBIOFactory(self.certificate, False, irc_factory, self._reactor)
            for description in tls_descriptions:
                self._listen(description, tls_factory, True)

    def _listen(self, description, factory, tls):
        try:
            port = listen_at_once(self._reactor, description, factory)
        except CannotListen as e:
            self._fail(description, e)
        self._ports.append(port)
        self.log.info(
            "listening on {address}{tls}",
            address=describe_address(port.getHost()),
            tls=" with TLS" if tls else "",
        )
        return port

    def startService(self):
        Service.startService(self)
        self.factory.accounts.start(self._reactor.seconds(), self.log).addErrback(
            log_failure, self.log, "preparing the database"
        )

    def _fail(self, description, reason):
        for port in self._ports:
            port.stopListening()
        raise SystemExit("wazzap: cannot listen on %s: %s" % (description, reason))

    @defer.inlineCallbacks
    def stopService(self):
        Service.stopService(self)
        ports, self._ports = self._ports, []
        yield defer.gatherResults([defer.maybeDeferred(port.stopListening) for port in ports])
        yield self.factory.shut_down(SHUTDOWN_NOTICE)
        history = self.factory.chat.history
        if history is not None:
            # The rooms' last lines and the read positions of those who just
            # left, before the store closes.
            yield history.flush()
        yield self.factory.accounts.close()


class SessionHistoryRetention(Retention):
    """
    Deletes the sessions of the login history that ended more than C{days}
    ago: at start-up, then every L{PRUNE_INTERVAL_SECONDS}.

    The store deletes a few hundred rows per call, and each next call joins
    the back of its queue, so a prune of millions of rows never holds up a
    login for more than one small batch.
    """

    pruned = "the login history"

    def __init__(self, store, days, clock):
        Retention.__init__(self, store, clock, PRUNE_INTERVAL_SECONDS)
        self.days = days

    def kept(self):
        return "keeping %d days of login history" % (self.days,)

    @defer.inlineCallbacks
    def _prune(self):
        ended_before = self._clock.seconds() - self.days * DAY
        deleted, after_id = 0, 0
        while after_id is not None and self.running:
            count, after_id = yield self.store.prune_sessions(ended_before, after_id)
            deleted += count
        if deleted:
            self.log.info(
                "deleted {count} sessions of login history older than {days} days",
                count=deleted,
                days=self.days,
            )


class SiteService(Service):
    """
    Serves a web site on an endpoint.  Like L{ChatServerService}, L{listen}
    is called before twistd becomes a daemon, so a port in use is told on
    the terminal that started it.  A subclass names what it serves
    (C{what}) and where (C{path}).
    """

    log = Logger()
    what = "a web site"
    path = "/"

    def __init__(self, site, endpoint_description, reactor):
        self.site = site
        self.endpoint_description = endpoint_description
        self._reactor = reactor
        self._port = None

    def listen(self):
        """
        Listen now, or raise L{SystemExit} with a one-line reason.
        """
        description = self.endpoint_description
        try:
            self._port = listen_at_once(self._reactor, description, self.site)
        except CannotListen as e:
            raise SystemExit("wazzap: cannot serve %s on %s: %s" % (self.what, description, e))
        self.log.info(
            "serving {what} on http://{address}{path}",
            what=self.what,
            address=describe_address(self._port.getHost()),
            path=self.path,
        )

    def stopService(self):
        Service.stopService(self)
        port, self._port = self._port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else None


class MetricsService(SiteService):
    """
    Serves the L{wazzap.app.metrics.Metrics} of a server, and samples the
    reactor's lag while it runs.
    """

    what = "metrics"
    path = "/metrics"

    def __init__(self, metrics, endpoint_description, reactor):
        SiteService.__init__(self, metrics.site, endpoint_description, reactor)
        self.metrics = metrics

    def startService(self):
        SiteService.startService(self)
        self.metrics.lag.start()

    def stopService(self):
        self.metrics.lag.stop()
        return SiteService.stopService(self)


class WebService(SiteService):
    """
    Serves the browser page and its WebSocket (C{--web}); the browsers'
    connections are the chat factory's, closed with the others.
    """

    what = "the web page"


def describe_address(address):
    """
    Where a port listens, written as people write it: C{0.0.0.0:5555},
    C{[::1]:5555} (brackets keep an IPv6 address apart from its port), or a
    Unix socket's path.
    """
    host = getattr(address, "host", None)
    if host is None:
        return "unix:%s" % (os.fsdecode(address.name),)
    if ":" in host:
        return "[%s]:%d" % (host, address.port)
    return "%s:%d" % (host, address.port)


def _port_names(ports):
    """
    The TCP ports of C{ports} as a notice names them after "port" ("5556",
    "5556 or 5557"), or L{None} if none is a TCP port.
    """
    numbers = sorted({port.getHost().port for port in ports if hasattr(port.getHost(), "port")})
    if not numbers:
        return None
    return " or ".join(str(number) for number in numbers)


def _plain_reason(error):
    """
    The human part of a listening error: "address already in use", not a repr.
    """
    if isinstance(error, str):
        return error
    socket_error = getattr(error, "socketError", None)
    if socket_error is not None and getattr(socket_error, "strerror", None):
        return socket_error.strerror.lower()
    return str(error) or error.__class__.__name__
