"""
Cutting a byte stream into lines, in time linear in its length.

L{twisted.protocols.basic.LineReceiver} re-splits its whole buffer for every
line (quadratic in the lines of one read) and, on an over-long line, throws away
the lines queued behind it as well.  A chat server that takes pastes and floods
needs neither, so the input gate (L{wazzap.net.input}) frames with
L{LineFramer} instead and hands lines over through LineReceiver's interface
(C{lineReceived}, C{lineLengthExceeded}).
"""

#: Stands in the stream of lines where a line was too long; only its end is
#: waited for, and nothing of it is kept.
TOO_LONG = object()


class LineFramer:
    """
    Accumulates bytes and hands out complete lines one at a time.

    A line longer than C{max_length} bytes is reported once as L{TOO_LONG} and
    the rest of it, up to its delimiter, is discarded as it arrives: memory per
    connection stays under C{max_length} plus one read.
    """

    __slots__ = ("max_length", "delimiter", "_buffer", "_start", "_discarding")

    def __init__(self, max_length, delimiter=b"\n"):
        self.max_length = max_length
        self.delimiter = delimiter
        self._buffer = b""
        self._start = 0
        self._discarding = False

    def feed(self, data):
        """
        Add bytes received from the peer.
        """
        if self._start:
            self._buffer = self._buffer[self._start :] + data
            self._start = 0
        else:
            self._buffer += data

    def next_line(self):
        """
        Return the next complete line without its delimiter, L{TOO_LONG} in place
        of a line over the limit, or L{None} when no whole line is buffered.
        """
        while True:
            buffer, start = self._buffer, self._start
            end = buffer.find(self.delimiter, start)
            if end < 0:
                if self._discarding or len(buffer) - start > self.max_length:
                    self._buffer, self._start = b"", 0
                    if not self._discarding:
                        self._discarding = True
                        return TOO_LONG
                return None
            self._start = end + len(self.delimiter)
            if self._discarding:
                self._discarding = False
                continue
            if end - start > self.max_length:
                return TOO_LONG
            return buffer[start:end]

    def pending(self):
        """
        How many bytes are buffered but not yet handed out.
        """
        return len(self._buffer) - self._start

    def idle(self):
        """
        Whether nothing is buffered or being discarded: a new framer would do.
        """
        return self._start == len(self._buffer) and not self._discarding
