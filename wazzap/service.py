"""
The long-running part of the server: listening on every configured endpoint,
and telling everyone when the server stops.
"""

import resource

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python.failure import Failure

SHUTDOWN_NOTICE = "server is shutting down"

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


class ListenFailed(Exception):
    """
    An endpoint could not be listened on; the message says which and why.
    """


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

    Listening happens in L{privilegedStartService} and fails loudly, so that a
    port in use stops the start-up with a clear message instead of a server
    that runs but cannot be reached.
    """

    log = Logger()

    def __init__(self, factory, endpoint_descriptions, reactor=None, foreground=True):
        if reactor is None:
            from twisted.internet import reactor
        self.factory = factory
        self.endpoint_descriptions = endpoint_descriptions
        self._reactor = reactor
        self._foreground = foreground
        self._ports = []

    def privilegedStartService(self):
        raise_open_file_limit(self.log)
        for description in self.endpoint_descriptions:
            endpoint = serverFromString(self._reactor, with_backlog(description))
            # Stream endpoints of sockets (tcp, tcp6, unix, ssl) listen at once,
            # so the outcome is known before twistd goes on.
            outcome = []
            endpoint.listen(self.factory).addBoth(outcome.append)
            if not outcome or isinstance(outcome[0], Failure):
                self._fail(description, outcome[0].value if outcome else "did not listen at once")
            self._ports.append(outcome[0])
            self.log.info("listening on {endpoint}", endpoint=description)
        Service.privilegedStartService(self)

    def startService(self):
        Service.startService(self)
        self.factory.accounts.start(self._reactor.seconds(), self.log).addErrback(
            lambda failure: self.log.failure("preparing the database", failure)
        )

    def _fail(self, description, reason):
        for port in self._ports:
            port.stopListening()
        message = "cannot listen on %s: %s" % (description, _plain_reason(reason))
        if self._foreground:
            raise SystemExit("wazzap: " + message)
        # As a daemon, twistd shows the first 100 bytes of this to the user.
        raise ListenFailed(message)

    @defer.inlineCallbacks
    def stopService(self):
        Service.stopService(self)
        ports, self._ports = self._ports, []
        yield defer.gatherResults([defer.maybeDeferred(port.stopListening) for port in ports])
        yield self.factory.shut_down(SHUTDOWN_NOTICE)
        yield self.factory.accounts.close()


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
