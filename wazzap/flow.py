"""
Output gathered and written once per reactor turn, on an L{IReactorTime} so
tests can drive it with a L{Clock}; and cancelling a timer that may be gone.

The pacing of input (allowances) is in L{wazzap.net.pacing}.
"""

from twisted.logger import Logger

_log = Logger()


class TurnFlusher:
    """
    Calls C{flush_output()} on whatever asked for it, once, at the end of the
    reactor turn: the core's outbox, which renders the turn's events and
    sends each member all of its lines of that turn in one send().
    """

    def __init__(self, clock):
        self._clock = clock
        self._dirty = []
        self._call = None

    def schedule(self, flushable):
        """
        Call C{flushable.flush_output()} at the end of this turn.  Each is
        expected to ask at most once per turn.
        """
        self._dirty.append(flushable)
        if self._call is None:
            self._call = self._clock.callLater(0, self.flush)

    def flush(self):
        """
        Write everything queued so far, now, including what flushing queues.
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        while self._dirty:
            dirty, self._dirty = self._dirty, []
            for flushable in dirty:
                try:
                    flushable.flush_output()
                except Exception:
                    # One connection's failure must not stop everyone's output.
                    _log.failure("writing output of {flushable}", flushable=flushable)


def cancel(timer):
    """
    Cancel C{timer} (an L{IDelayedCall} or None) if it is still pending.
    """
    if timer is not None and timer.active():
        timer.cancel()
