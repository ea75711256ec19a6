"""
The input gate of one connection: the bytes read are framed into lines and
handed to its owner one by one, unless reading is held.

Reading is held while the connection is over its line allowance (flood
pacing), while it waits for something (the database, say: a token per wait),
and while another client is catching up on its output (congestion).  While
anything holds it the transport stops reading, so what a flood sends waits in
the kernel, and the line that was next waits here.
"""

from zope.interface import Attribute, Interface

from wazzap.flow import cancel
from wazzap.net.framing import TOO_LONG, LineFramer
from wazzap.net.pacing import Allowance

_NO_HOLDS = frozenset()

#: The hold of a connection that waits for a client catching up on its output.
_CONGESTION = "congestion"
#: The hold of a connection over its line allowance.
_FLOOD = "flood"
#: The hold of a connection that is gone, never released.
_LOST = "lost"

#: What ends a line; a CR before it is left to the owner.
DELIMITER = b"\n"


class IInputOwner(Interface):
    """
    The connection an input gate reads for: its transport, its
    C{LineReceiver} API, and a word when pacing starts.
    """

    transport = Attribute("The transport whose reading the gate pauses and resumes.")

    def lineReceived(line):
        """
        Handle one complete line, its delimiter removed.
        """

    def lineLengthExceeded(line):
        """
        A line was over the limit; it was discarded up to its end.
        """

    def sending_too_fast():
        """
        The peer is over its line allowance: its lines are being slowed
        down.  Said when pacing starts, not again while it goes on.
        """


class InputGate:
    """
    Frames one connection's input and hands its lines over, unless held.
    """

    # An idle connection's cost is mostly its state: keep it in slots.
    __slots__ = (
        "_owner",
        "_rules",
        "_pace",
        "_full_at",
        "_framer",
        "_held_line",
        "_holds",
        "_resume_timer",
        "_told_to_slow_down",
    )

    def __init__(self, owner, rules, allowance):
        """
        @param owner: the L{IInputOwner} handed the lines.
        @param rules: the server's L{wazzap.net.limits.ConnectionRules}: its
            limit C{max_line_bytes} (the line ending counted) applies, and
            its congestion says when to wait for a client catching up.
        @param allowance: the L{wazzap.net.pacing.Allowance} of lines; the
            gate keeps its shared pace and its one float, not the object.
        """
        self._owner = owner
        self._rules = rules
        self._pace = allowance.pace
        self._full_at = allowance.full_at
        self._framer = None
        self._held_line = None
        self._holds = _NO_HOLDS
        self._resume_timer = None
        self._told_to_slow_down = False

    @property
    def allowance(self):
        """
        The allowance of lines, remembered for the address once it closes.
        """
        return Allowance.under(self._pace, self._full_at)

    def pace_by(self, pace):
        """
        Go on under the new L{wazzap.net.pacing.Pace} C{pace} (a reload),
        keeping what the allowance holds now, up to the new burst.
        """
        self._full_at = self._pace.moved(self._full_at, pace)
        self._pace = pace

    def buffering(self):
        """
        Whether some input is kept: a partial line, or lines not handed over.
        """
        return self._framer is not None

    def feed(self, data):
        """
        Take bytes read from the peer, and hand over what lines may be.
        """
        framer = self._framer
        if framer is None:
            max_length = self._rules.limits.max_line_bytes - len(DELIMITER)
            framer = self._framer = LineFramer(max_length, DELIMITER)
        framer.feed(data)
        self._process_lines()

    def hold(self, reason):
        """
        Stop reading (and handing over buffered lines) until every reason
        given here is L{release}d.
        """
        transport = self._owner.transport
        if not self._holds and not transport.disconnecting:
            transport.pauseProducing()
        self._holds = self._holds | {reason}

    def release(self, reason):
        self._holds = (self._holds - {reason}) or _NO_HOLDS
        transport = self._owner.transport
        if not self._holds and not transport.disconnecting:
            transport.resumeProducing()
            self._process_lines()

    def hold_until(self, deferred):
        """
        Hand over none of the next lines until C{deferred} has its result.

        A Deferred already fired may still wait on one its callbacks
        returned, so what counts is whether the result has come through,
        not C{called}; one that has holds nothing, so the next line is not
        handed over from inside this one, a stack frame deeper each line.
        """
        token = object()
        waiting = True

        def release(result):
            nonlocal waiting
            waiting = False
            if token in self._holds:
                self.release(token)
            return result

        deferred.addBoth(release)
        if waiting:
            self.hold(token)

    def congestion_over(self):
        """
        Read again: no client is catching up any more.
        """
        self.release(_CONGESTION)

    def connection_lost(self):
        """
        The connection is gone: nothing is handed over or timed any more.
        """
        self._holds = self._holds | {_LOST}
        cancel(self._resume_timer)

    def _process_lines(self):
        """
        Hand complete lines to the owner until reading is held.
        """
        framer = self._framer
        owner = self._owner
        transport = owner.transport
        congestion = self._rules.congestion
        while framer is not None and not self._holds and not transport.disconnecting:
            line = self._held_line
            if line is None:
                line = framer.next_line()
                if line is None:
                    if framer.idle():
                        # Nothing partial is kept: an idle connection holds no framer.
                        self._framer = None
                    return
            if congestion.holds_back(owner):
                self._held_line = line
                self.hold(_CONGESTION)
                congestion.hold(owner, self)
                return
            wait, self._full_at = self._pace.take(self._full_at)
            if wait:
                self._held_line = line
                self._slow_down(wait)
                return
            self._held_line = None
            self._rules.counts.lines_in += 1
            if line is TOO_LONG:
                owner.lineLengthExceeded(line)
            else:
                owner.lineReceived(line)

    def _slow_down(self, seconds):
        if not self._told_to_slow_down:
            self._told_to_slow_down = True
            self._rules.counts.flood_slowdowns += 1
            self._owner.sending_too_fast()
        self.hold(_FLOOD)
        self._resume_timer = self._rules.clock.callLater(seconds, self._resume)

    def _resume(self):
        self._resume_timer = None
        # The line held for this wait goes through next: if nothing else is
        # waiting behind it, this flood is over, and the next one is told.
        if self._framer is None or self._framer.idle():
            self._told_to_slow_down = False
        self.release(_FLOOD)
