"""
Allowances (token buckets) that let a paste or a few reconnects through but
slow a flood down; on an L{IReactorTime} so tests can drive them with a
L{Clock}.

A bucket is kept as the time it is full again (the "theoretical arrival
time" of GCRA), one float, under a L{Pace} (its burst and rate) that every
bucket of its kind shares: so an open connection's line allowance costs it a
float in its input gate, not an object of its own.
"""

_ROUNDING = 1e-9


class Pace:
    """
    The rules of a kind of bucket: C{burst} at once, then C{rate} a second.

    A C{rate} of 0 turns it off.  A bucket under it is the time it is full
    again (C{full_at}): the methods here read and take from one.
    """

    __slots__ = ("clock", "burst", "rate")

    def __init__(self, clock, burst, rate):
        self.clock = clock
        self.burst = burst
        self.rate = rate

    def holding(self, tokens=None):
        """
        A bucket holding C{tokens} now (a whole C{burst} if L{None}; never more).
        """
        if tokens is None or not self.rate:
            return 0.0
        return self.clock.seconds() + (self.burst - min(tokens, self.burst)) / self.rate

    def tokens(self, full_at):
        """
        How much the bucket C{full_at} holds now.
        """
        if not self.rate:
            return self.burst
        return self.burst - max(full_at - self.clock.seconds(), 0.0) * self.rate

    def take(self, full_at):
        """
        Take one from the bucket C{full_at}: return (0, the bucket after), or
        (how many seconds to wait until one is there, the bucket untouched).
        """
        if not self.rate:
            return 0, full_at
        tokens = self.tokens(full_at)
        # A timer set for the computed wait can land a rounding error short
        # of a whole token: count that as whole rather than waiting again.
        if tokens >= 1 - _ROUNDING:
            return 0, self.holding(max(tokens - 1, 0.0))
        return (1 - tokens) / self.rate, full_at

    def moved(self, full_at, pace):
        """
        The bucket C{full_at} under the new rules C{pace} (a reload): it keeps
        what it holds now, up to the new burst.
        """
        return pace.holding(self.tokens(full_at))


class Allowance:
    """
    A bucket with its rules: of new connections for an address, or of the
    lines a connection from there closed with.
    """

    __slots__ = ("_pace", "_full_at")

    def __init__(self, clock, burst, rate, tokens=None):
        """
        @param tokens: what it starts with, if not a whole C{burst}.
        """
        self._pace = Pace(clock, burst, rate)
        self._full_at = self._pace.holding(tokens)

    @classmethod
    def under(cls, pace, full_at):
        """
        The bucket C{full_at} under the shared rules C{pace}, as an allowance.
        """
        allowance = cls.__new__(cls)
        allowance._pace = pace
        allowance._full_at = full_at
        return allowance

    @property
    def pace(self):
        """
        Its rules, the L{Pace}.
        """
        return self._pace

    @property
    def full_at(self):
        """
        Its state: the time it is full again.
        """
        return self._full_at

    def change(self, burst, rate):
        """
        Go on at a new C{burst} and C{rate} (a reload), keeping what is
        there now, up to the new burst.
        """
        pace = Pace(self._pace.clock, burst, rate)
        self._full_at = self._pace.moved(self._full_at, pace)
        self._pace = pace

    def tokens(self):
        """
        How much is there now.
        """
        return self._pace.tokens(self._full_at)

    def full(self):
        """
        Whether it is back to a whole burst: then it is as good as a new one.
        """
        return self.tokens() >= self._pace.burst

    def wait(self):
        """
        Take one from the allowance and return 0, or return how many seconds
        to wait until one is there (taking nothing).
        """
        wait, self._full_at = self._pace.take(self._full_at)
        return wait
