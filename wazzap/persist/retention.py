"""
Pruning what the database keeps beyond its time, in the background: at
start-up, then at an interval, a batch of rows a call, so that logins and
other writes never wait behind a large delete.
"""

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from wazzap.failures import log_failure


class Retention(Service):
    """
    Calls L{_prune} at start-up and then every C{interval} seconds, until
    stopped.  A subclass says what it keeps (L{kept}, for the log at
    start), what it prunes (L{pruned}, for a failure's one log line) and
    prunes it in L{_prune}, checking C{self.running} between batches.
    """

    log = Logger()
    #: What is pruned, as the log names it when a prune fails.
    pruned = "old rows"

    def __init__(self, store, clock, interval):
        self.store = store
        self._clock = clock
        self._interval = interval
        self._loop = LoopingCall(self.prune)
        self._loop.clock = clock
        self._pruning = None

    def startService(self):
        Service.startService(self)
        self.log.info(self.kept())
        self._loop.start(self._interval, now=True)

    def stopService(self):
        """
        Stop pruning once the batch under way is done (a clean shutdown
        waits for it); the rest waits for the next start.
        """
        Service.stopService(self)
        if self._loop.running:
            self._loop.stop()
        return self._pruning

    def prune(self):
        """
        Prune now; a Deferred that fires (never with a failure) once done.
        """
        self._pruning = self._prune().addErrback(log_failure, self.log, "pruning " + self.pruned)
        return self._pruning

    def kept(self):
        """
        What is kept, and for how long, as a log line says it at start.
        """
        raise NotImplementedError

    def _prune(self):
        raise NotImplementedError
