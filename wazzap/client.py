"""
The friendly way into a wazzap chat: C{wazzap-client [HOST] [PORT]}, or
C{python -m wazzap.client [HOST] [PORT]}.

Two line protocols meet here.  L{ChatClient} speaks to the server over TCP and
shows what it says; L{Terminal} reads what the user types on standard input and
writes to standard output, both through Twisted's L{StandardIO} so neither side
ever blocks the other.  The client understands only a little of the server's
talk: the nickname prompt (to answer it with C{--nick}), password prompts (to
hide what is typed next), and its own welcome (to know it has joined).

Fed by a script (standard input not a terminal), the client sends the lines
it reads only once it has joined, the ones before that answering the
server's prompts that C{--nick} and C{WAZZAP_PASSWORD} leave open; at the end
of its input it leaves only after sending all of them, so that C{echo hello |
wazzap-client --nick bot HOST} says hello.

Exit status: 0 when the user leaves (C{/quit}, Ctrl+D, Ctrl+C), 1 when the
server cannot be reached or goes away, 2 for a usage error.
"""

import argparse
import os
import re
import signal
import sys
from collections import deque

from twisted.internet import defer, error
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from wazzap.text import strip_styles

try:
    import termios
except ImportError:  # Windows: the console does its own echo, and we leave it be.
    termios = None

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 5555
CONNECT_TIMEOUT_SECONDS = 10
#: How long the server has to close after C{/quit} before we close ourselves.
QUIT_GRACE_SECONDS = 3
#: How long a closing connection or terminal may take before it is cut off.
CLOSE_GRACE_SECONDS = 3
KIB = 1024

#: The environment variable that may hold the password for C{--nick}; a
#: password is never accepted on the command line, where C{ps} would show it.
PASSWORD_VARIABLE = "WAZZAP_PASSWORD"
#: Set to a non-empty value to turn colours off, as https://no-color.org asks.
NO_COLOR_VARIABLE = "NO_COLOR"

def program_name(script, module):
    """
    How the user ran this command, for usage and error messages: the
    console script C{script} if that is what ran, else C{python -m module}.
    """
    if os.path.basename(sys.argv[0] or "") == script:
        return script
    return "python -m " + module


PROGRAM = program_name("wazzap-client", "wazzap.client")

SERVER_PREFIX = "[Server] "
NICKNAME_PROMPT_MARK = "Choose a nickname"
QUIT_COMMANDS = frozenset({"/quit", "/leave", "/exit"})

_JOINED = re.compile(r"^\[Server\] Welcome, [^ ]+!")


def is_password_prompt(plain_line):
    """
    Whether a server line (colours already stripped) asks for a password.
    """
    if not plain_line.startswith(SERVER_PREFIX):
        return False
    return plain_line[len(SERVER_PREFIX):].rstrip().lower().endswith("password:")


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


class ChatClient(LineReceiver):
    """
    The connection to the server: shows its lines, answers its prompts when
    told to, and knows whether leaving was our idea.

    C{finished} fires with the exit status once the connection is closed.
    """

    delimiter = b"\n"
    # The server's lines are at most a few KiB; this only bounds memory.
    MAX_LENGTH = 64 * KIB

    def __init__(
        self, screen, hidden_input, clock, nickname=None, password=None, colors=True, script=False
    ):
        """
        @param screen: has C{show(text)}, where the server's lines go.
        @param hidden_input: a L{HiddenInput}, or anything with C{hide} and
            C{restore}.
        @param nickname: answers the first nickname prompt, if given.
        @param password: answers the first password prompt, if given.
        @param colors: when false, ask the server for plain text and strip any
            colours that arrive anyway.
        @param script: when true, input is a script's, not a person's: lines
            read before joining wait (or answer the server's prompts), and
            leaving at the end of input waits until they are sent.
        """
        self.screen = screen
        self.hidden_input = hidden_input
        self.clock = clock
        self.nickname = nickname
        self._nickname_given = nickname is not None
        self.password = password
        self.colors = colors
        self.joined = False
        self.finished = defer.Deferred()
        self._secret_next = False
        self._leaving = False
        self._lost = False
        self._cut_off = None
        self._script = script
        #: A script's lines read before joining, oldest first.
        self._unsent = deque()
        #: Whether the server asked for an answer the script is to give.
        self._answer_wanted = False
        #: How a script leaves once joined and its lines are sent, if its
        #: input ended before that.
        self._leave_when_sent = None

    # Protocol API

    def connectionLost(self, reason=error.ConnectionDone):
        self._lost = True
        self.hidden_input.restore()
        if self._cut_off is not None and self._cut_off.active():
            self._cut_off.cancel()
        if self._leaving:
            self.finished.callback(0)
        else:
            self.screen.show("Disconnected from server")
            self.finished.callback(1)

    # LineReceiver API

    def lineReceived(self, line):
        line = line.decode("utf-8", "replace").rstrip("\r")
        plain = strip_styles(line)
        self.screen.show(line if self.colors else plain)
        if NICKNAME_PROMPT_MARK in plain:
            self._nickname_asked()
        elif is_password_prompt(plain):
            self._password_asked()
        elif not self.joined and _JOINED.match(plain):
            self.joined = True
            if not self.colors:
                self._send("/colors off")
            self._send_unsent()

    def lineLengthExceeded(self, line):
        self.screen.show("(a line from the server was too long to show)")

    # What the terminal asks of the connection

    def send_typed(self, line):
        """
        Send a line the user typed; a password ends hiding, C{/quit} is ours.
        """
        if self._lost:
            return
        if self._script and not self.joined:
            self._unsent.append(line)
            self._answer_from_script()
            return
        if self._secret_next:
            self._secret_next = False
            self.hidden_input.restore()
            self._send(line)
            return
        if line.split(" ", 1)[0].lower() in QUIT_COMMANDS:
            self.leave(line)
        else:
            self._send(line)

    def leave(self, command="/quit"):
        """
        Leave as the user asked: politely through the server once joined
        (which says goodbye), or by just closing before that.
        """
        if self._lost or self._leaving:
            return
        if self._script and not self.joined and self._unsent:
            self._leave_when_sent = command
            return
        self._leaving = True
        if self.joined:
            self._send(command)
            self._cut_off = self.clock.callLater(QUIT_GRACE_SECONDS, self._close)
        else:
            self.screen.show("Goodbye!")
            self._close()

    def interrupt(self):
        """
        Ctrl+C: close now, without waiting for the server.
        """
        if self._lost:
            return
        if not self._leaving:
            self._leaving = True
            self.screen.show("Closing connection")
        self._close()

    def _nickname_asked(self):
        nickname, self.nickname = self.nickname, None
        if nickname is not None:
            self._send(nickname)
        elif self._script and self._nickname_given and not self.joined:
            # The server refused --nick: a script has no other name to try,
            # and its lines must not become nicknames.
            self._close()
        elif self._script and not self.joined:
            self._answer_wanted = True
            self._answer_from_script()

    def _password_asked(self):
        password, self.password = self.password, None
        if password is not None:
            self._send(password)
        elif self._script and not self.joined:
            self._answer_wanted = True
            self._answer_from_script()
        else:
            self._secret_next = True
            self.hidden_input.hide()

    def _answer_from_script(self):
        """
        Answer the prompt the server is waiting on with the script's next
        line, once there is one; with none left and the input ended, give up.
        """
        if not self._answer_wanted:
            return
        if self._unsent:
            self._answer_wanted = False
            self._send(self._unsent.popleft())
        elif self._leave_when_sent is not None:
            self._leave_now()

    def _send_unsent(self):
        """
        Joined: send the script's lines read meanwhile, then leave if its
        input has ended.
        """
        while self._unsent and not self._leaving:
            self.send_typed(self._unsent.popleft())
        if self._leave_when_sent is not None:
            self._leave_now()

    def _leave_now(self):
        command, self._leave_when_sent = self._leave_when_sent, None
        self._unsent.clear()
        self.leave(command)

    def _send(self, line):
        self.sendLine(line.encode("utf-8"))

    def _close(self):
        """
        Close the connection, cutting it off if it has not closed in time.
        """
        if self._lost:
            return
        self.transport.loseConnection()
        if self._cut_off is None or not self._cut_off.active():
            self._cut_off = self.clock.callLater(
                CLOSE_GRACE_SECONDS, self.transport.abortConnection
            )


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


def _port(value):
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("not a port number: %r" % (value,))
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError("a port is 1 to 65535, not %d" % (port,))
    return port


def parse_arguments(argv):
    """
    The command line as a namespace; on a usage error argparse prints the
    usage and exits with status 2.
    """
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Chat on a wazzap server from this terminal.",
        epilog="With --nick, the password of that account may be given in the "
        "environment variable %s." % (PASSWORD_VARIABLE,),
    )
    parser.add_argument("host", nargs="?", default=DEFAULT_HOST,
                        help="server to connect to (default: %(default)s)")
    parser.add_argument("port", nargs="?", type=_port, default=DEFAULT_PORT,
                        help="its port (default: %(default)s)")
    parser.add_argument("--nick", metavar="NAME",
                        help="answer the nickname prompt with NAME")
    parser.add_argument("--no-color", dest="colors", action="store_false",
                        help="plain text, without colours (the default when standard "
                        "output is not a terminal, or %s is set)" % (NO_COLOR_VARIABLE,))
    return parser.parse_args(argv)


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def wants_colors(stdout, environ):
    """
    Whether output is for a person: colours on a terminal, unless NO_COLOR
    is set; plain text into a file or a pipe, where escapes are noise.
    """
    return _is_terminal(stdout) and not environ.get(NO_COLOR_VARIABLE)


def describe_connect_error(exception):
    """
    A short, human reason why connecting failed.
    """
    for kind, words in (
        (error.ConnectionRefusedError, "connection refused"),
        (error.DNSLookupError, "unknown host"),
        (error.NoRouteError, "host unreachable"),
        (error.TimeoutError, "timed out"),
    ):
        if isinstance(exception, kind):
            return words
    return str(exception).strip() or type(exception).__name__


async def run(reactor, options, environ):
    """
    Connect, chat until either side ends it, and return the exit status by
    raising L{SystemExit}, as L{twisted.internet.task.react} expects.
    """
    from twisted.internet.endpoints import HostnameEndpoint
    from twisted.internet.stdio import StandardIO

    hidden_input = HiddenInput()
    terminal = Terminal()
    password = environ.get(PASSWORD_VARIABLE) if options.nick else None
    client = ChatClient(
        terminal,
        hidden_input,
        reactor,
        options.nick,
        password or None,
        colors=options.colors and wants_colors(sys.stdout, environ),
        script=not _is_terminal(sys.stdin),
    )
    endpoint = HostnameEndpoint(
        reactor, options.host, options.port, timeout=CONNECT_TIMEOUT_SECONDS
    )
    connecting = endpoint.connect(Factory.forProtocol(lambda: client))
    done = defer.Deferred()

    def shutting_down():
        # Ctrl+C (or SIGTERM) stopped the reactor: close before it goes, and
        # let a second Ctrl+C wait for that instead of tracing back.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if client.transport is not None:
            client.interrupt()
        else:
            connecting.cancel()
        return done

    reactor.addSystemEventTrigger("before", "shutdown", shutting_down)
    try:
        try:
            await connecting
        except (defer.CancelledError, error.ConnectingCancelledError):
            raise SystemExit(0)
        except Exception as problem:
            sys.stderr.write(
                "wazzap: cannot connect to %s:%d: %s\n"
                % (options.host, options.port, describe_connect_error(problem))
            )
            raise SystemExit(1)
        terminal.client = client
        StandardIO(terminal, reactor=reactor)
        code = await client.finished
        closing = terminal.close()
        closing.addTimeout(CLOSE_GRACE_SECONDS, reactor)
        try:
            await closing
        except defer.TimeoutError:
            pass
        raise SystemExit(code)
    finally:
        hidden_input.restore()
        done.callback(None)


def main(argv=None):
    """
    Run the client on C{argv} (default: the command line) and exit.
    """
    import colorama
    from twisted.internet.task import react

    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    colorama.just_fix_windows_console()
    react(run, (options, os.environ))


if __name__ == "__main__":
    main()
