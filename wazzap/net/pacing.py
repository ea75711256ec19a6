"""
Allowances (token buckets) that let a paste or a few reconnects through but
slow a flood down; on an L{IReactorTime} so tests can drive them with a
L{Clock}.
"""

_ROUNDING = 1e-9


class Allowance:
    """
    A token bucket: C{burst} at once, then C{rate} a second; of lines for a
    connection, of new connections for an address.

    A C{rate} of 0 turns it off.
    """

    __slots__ = ("_clock", "_burst", "_rate", "_tokens", "_updated")

    def __init__(self, clock, burst, rate, tokens=None):
        """
        @param tokens: what it starts with, if not a whole C{burst}.
        """
        self._clock = clock
        self._burst = burst
        self._rate = rate
        self._tokens = burst if tokens is None else min(tokens, burst)
        self._updated = clock.seconds()

    def change(self, burst, rate):
        """
        Go on at a new C{burst} and C{rate} (a reload), keeping what is
        there now, up to the new burst.
        """
        tokens = self.tokens()
        self._burst = burst
        self._rate = rate
        self._tokens = min(tokens, burst)
        self._updated = self._clock.seconds()

    def tokens(self):
        """
        How much is there now.
        """
        if not self._rate:
            return self._burst
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        return self._tokens

    def full(self):
        """
        Whether it is back to a whole burst: then it is as good as a new one.
        """
        return self.tokens() >= self._burst

    def wait(self):
        """
        Take one from the allowance and return 0, or return how many seconds
        to wait until one is there (taking nothing).
        """
        if not self._rate:
            return 0
        tokens = self.tokens()
        # A timer set for the computed wait can land a rounding error short
        # of a whole token: count that as whole rather than waiting again.
        if tokens >= 1 - _ROUNDING:
            self._tokens = max(tokens - 1, 0.0)
            return 0
        return (1 - tokens) / self._rate
