"""
Threads for the work that must not run on the reactor (the database, password
hashing), as a service in the service tree.

Its threads start when the service starts, which under twistd is after it
has become a daemon (threads do not survive the fork), and calls made
before that wait for them.  The services that use the threads are its
children: L{MultiService} stops its children all at once, so nesting is what
makes the threads outlive every call their users still make while stopping.
"""

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool


class ThreadPoolService(MultiService):
    """
    C{size} threads called C{name}, for the services under it: started
    before they start, and stopped once all of them have stopped.
    """

    def __init__(self, name, size, reactor=None):
        MultiService.__init__(self)
        if reactor is None:
            from twisted.internet import reactor
        self.name = name
        self.size = size
        self._reactor = reactor
        self._pool = ThreadPool(size, size, name)

    def run(self, function, *args, **kwargs):
        """
        A Deferred firing in the reactor thread with what
        C{function(*args, **kwargs)} returns (or raises) on one of the threads.
        """
        if self._pool.joined:
            # ThreadPool drops work given to it once stopped: say so instead.
            return defer.fail(RuntimeError("the %s threads have stopped" % (self.name,)))
        return deferToThreadPool(self._reactor, self._pool, function, *args, **kwargs)

    def startService(self):
        self._pool.start()
        MultiService.startService(self)

    @defer.inlineCallbacks
    def stopService(self):
        yield MultiService.stopService(self)
        # Every user has stopped, so the threads are idle or finishing their
        # last call: joining them does not hold up the reactor for long.
        self._pool.stop()
