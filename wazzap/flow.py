"""
Pacing of traffic in both directions: output gathered and written once per
reactor turn, and a per-connection allowance of lines that lets a paste through
but slows a flood down.

Both take an L{IReactorTime} so tests can drive them with a L{Clock}.
"""

from twisted.logger import Logger

_ROUNDING = 1e-9
_log = Logger()


class TurnFlusher:
    """
    Calls C{flush_output()} on whatever asked for it, once, at the end of the
    reactor turn: rooms hand out their batched lines, connections write what
    was queued for them, so one send() carries all the lines that arrived
    for a connection in that turn, in the order they were queued.
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


class LineAllowance:
    """
    A token bucket of lines: C{burst} lines at once, then C{rate} a second.

    A C{rate} of 0 turns it off.
    """

    __slots__ = ("_clock", "_burst", "_rate", "_tokens", "_updated")

    def __init__(self, clock, burst, rate):
        self._clock = clock
        self._burst = burst
        self._rate = rate
        self._tokens = self._burst
        self._updated = clock.seconds()

    def wait(self):
        """
        Take a line from the allowance and return 0, or return how many seconds
        to wait until one is there (taking nothing).
        """
        if not self._rate:
            return 0
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        # A timer set for the computed wait can land a rounding error short
        # of a whole token: count that as whole rather than waiting again.
        if self._tokens >= 1 - _ROUNDING:
            self._tokens = max(self._tokens - 1, 0.0)
            return 0
        return (1 - self._tokens) / self._rate


def cancel(timer):
    """
    Cancel C{timer} (an L{IDelayedCall} or None) if it is still pending.
    """
    if timer is not None and timer.active():
        timer.cancel()
