"""
The client on a pipe, or on a terminal it does not take over: lines in, lines
out, as C{wazzap-client} always did, so scripts and bots keep working.

L{Terminal} reads what the user (or a script) writes on standard input and
writes the server's lines to standard output, both through Twisted's
L{StandardIO} so neither side ever blocks the other.  L{HiddenInput} turns the
terminal's echo off for a password, where there is a terminal to do it on.
"""

import os
import sys

from twisted.internet import defer, error
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from wazzap.client.connection import KIB

try:
    import termios
except ImportError:  # Windows: the console does its own echo, and we leave it be.
    termios = None


class HiddenInput:
    """
    Turns the terminal's echo off while a password is typed, where there is a
    terminal to do it on, and always puts it back.
    """

    def __init__(self, fd=0):
        self._fd = fd
        self._saved = None

    def hide(self):
        """
        Stop echoing typed characters; ECHONL still shows the final Enter so
        the next output starts on a line of its own.
        """
        if termios is None or self._saved is not None:
            return
        try:
            if not os.isatty(self._fd):
                return
            saved = termios.tcgetattr(self._fd)
            quiet = list(saved)
            quiet[3] = (quiet[3] & ~termios.ECHO) | termios.ECHONL
            termios.tcsetattr(self._fd, termios.TCSAFLUSH, quiet)
        except (OSError, termios.error):
            return
        self._saved = saved

    def restore(self):
        """
        Echo again, if it was turned off; safe to call any number of times.
        """
        saved, self._saved = self._saved, None
        if saved is None:
            return
        try:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)
        except (OSError, termios.error):
            pass


@implementer(IHalfCloseableProtocol)
class Terminal(LineReceiver):
    """
    The user's side: typed lines go to the server, the server's lines come
    out here.  Half-closeable so that Ctrl+D ends input but not output, and
    the server's goodbye still shows.
    """

    delimiter = b"\n"
    MAX_LENGTH = 64 * KIB

    def __init__(self, encoding=None):
        self.client = None
        self.encoding = encoding or getattr(sys.stdout, "encoding", None) or "utf-8"
        self.closed = defer.Deferred()

    def show(self, text):
        """
        Write one line to standard output.
        """
        data = text + "\n"
        if sys.stdout is not sys.__stdout__ and sys.platform == "win32":
            # colorama wrapped stdout to translate ANSI on an old console:
            # only writes through the wrapper get translated.
            sys.stdout.write(data)
            sys.stdout.flush()
        elif self.transport is not None and not self.transport.disconnecting:
            self.transport.write(data.encode(self.encoding, "replace"))

    def close(self):
        """
        Flush what is still to be written and stop; the result fires once done.
        """
        if self.transport is not None and not self.closed.called:
            self.transport.loseConnection()
        return self.closed

    # Protocol API

    def connectionLost(self, reason=error.ConnectionDone):
        if not self.closed.called:
            self.closed.callback(None)

    # LineReceiver API

    def lineReceived(self, line):
        if self.client is not None:
            self.client.send_typed(line.decode(self.encoding, "replace").rstrip("\r"))

    def lineLengthExceeded(self, line):
        self.show("(that line was too long and was not sent)")

    # IHalfCloseableProtocol

    def readConnectionLost(self):
        if self.client is not None:
            # A last line without a line ending is still a line.
            last = self.clearLineBuffer()
            if last:
                self.lineReceived(last)
            self.client.leave()

    def writeConnectionLost(self):
        """
        Nobody reads our output any more; typing can still go on.
        """
