"""
C{wazzap-client [HOST] [PORT]} (or C{python -m wazzap.client}): the command
line, and the run from connecting to the exit status.

On a terminal (standard input and output both one) the client takes it over:
an input line at the bottom, completion, highlights
(L{wazzap.client.interactive}).  Otherwise it is line in, line out
(L{wazzap.client.pipe}), as scripts expect.

Exit status: 0 when the user leaves (C{/quit}, Ctrl+D, Ctrl+C), 1 when the
server cannot be reached, fails TLS verification or goes away, 2 for a usage
error.
"""

import argparse
import os
import signal
import sys

from twisted.internet import defer, error
from twisted.internet.protocol import Factory

from wazzap.client.attention import BELL_MODES, DEFAULT_BELL, Attention, Timestamped
from wazzap.client.connection import CLOSE_GRACE_SECONDS, ChatClient
from wazzap.client.pipe import HiddenInput, Terminal
from wazzap.client.roster import Roster

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 5555
#: The port of C{--tls} without one: the server's C{--tls-port} example.
DEFAULT_TLS_PORT = 5556
CONNECT_TIMEOUT_SECONDS = 10

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
    parser.add_argument("port", nargs="?", type=_port,
                        help="its port (default: %d, or %d with --tls)"
                        % (DEFAULT_PORT, DEFAULT_TLS_PORT))
    parser.add_argument("--nick", metavar="NAME",
                        help="answer the nickname prompt with NAME")
    parser.add_argument("--no-color", dest="colors", action="store_false",
                        help="plain text, without colours (the default when standard "
                        "output is not a terminal, or %s is set)" % (NO_COLOR_VARIABLE,))
    parser.add_argument("--tls", action="store_true",
                        help="connect over TLS, checking the server's certificate and "
                        "host name against the system's trust store")
    parser.add_argument("--cafile", metavar="FILE",
                        help="with --tls: trust the certificates in this PEM file instead "
                        "(a private CA, or the server's self-signed certificate)")
    parser.add_argument("--insecure", action="store_true",
                        help="with --tls: do not check the server's certificate at all")
    parser.add_argument("--bell", choices=BELL_MODES, default=DEFAULT_BELL,
                        help="ring the terminal's bell for lines that mention you and "
                        "private messages, for every message, or never (default: "
                        "%(default)s)")
    parser.add_argument("--timestamps", action="store_true",
                        help="show the time before every line")
    options = parser.parse_args(argv)
    if (options.cafile or options.insecure) and not options.tls:
        parser.error("--cafile and --insecure go with --tls")
    if options.cafile and options.insecure:
        parser.error("--cafile and --insecure do not go together")
    if options.port is None:
        options.port = DEFAULT_TLS_PORT if options.tls else DEFAULT_PORT
    return options


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def is_interactive(stdin, stdout):
    """
    Whether a person types and reads here: both ends are a terminal.
    """
    return _is_terminal(stdin) and _is_terminal(stdout)


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


def _fail(options, reason):
    sys.stderr.write("wazzap: cannot connect to %s:%d: %s\n" % (options.host, options.port, reason))
    raise SystemExit(1)


def _tls_options(options):
    """
    The TLS options C{--tls}, C{--cafile} and C{--insecure} ask for, or exit
    with status 1 after one line saying why there are none.
    """
    try:
        from wazzap.client.tls import INSECURE_WARNING, TrustProblem, client_options
    except ImportError:
        sys.stderr.write("wazzap: --tls needs pyOpenSSL and service_identity: "
                         "pip install 'twisted[tls]'\n")
        raise SystemExit(1)
    try:
        tls_options = client_options(options.host, options.cafile, options.insecure)
    except TrustProblem as problem:
        sys.stderr.write("wazzap: %s\n" % (problem,))
        raise SystemExit(1)
    if options.insecure:
        sys.stderr.write(INSECURE_WARNING + "\n")
    return tls_options


class _Pipe:
    """
    Line in, line out on standard input and output.
    """

    def __init__(self, options, clock):
        self.terminal = Terminal()
        self.hidden_input = HiddenInput()
        self.screen = Timestamped(self.terminal, clock) if options.timestamps else self.terminal
        self.roster = None

    def start(self, client, reactor):
        from twisted.internet.stdio import StandardIO

        self.terminal.client = client
        StandardIO(self.terminal, reactor=reactor)

    def stop(self):
        return self.terminal.close()


class _Prompt:
    """
    The input line at the bottom of the terminal, the chat above it.
    """

    def __init__(self, options, clock):
        from wazzap.client.interactive import ChatPrompt, PromptScreen

        self.roster = Roster(clock, on_change=lambda: self.prompt.refresh())
        self.prompt = ChatPrompt(self.roster)
        self.hidden_input = self.prompt
        self.output = PromptScreen(self.prompt.application, clock)
        screen = Timestamped(self.output, clock) if options.timestamps else self.output
        self.screen = Attention(screen, self.output.ring, lambda: self.roster.me, options.bell)

    def start(self, client, reactor):
        self.prompt.start(client)

    def stop(self):
        stopped = self.prompt.stop()
        stopped.addCallback(lambda _: self.output.drain())
        return stopped


async def run(reactor, options, environ, interactive=False):
    """
    Connect, chat until either side ends it, and return the exit status by
    raising L{SystemExit}, as L{twisted.internet.task.react} expects.
    """
    from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS

    face = (_Prompt if interactive else _Pipe)(options, reactor)
    password = environ.get(PASSWORD_VARIABLE) if options.nick else None
    client = ChatClient(
        face.screen,
        face.hidden_input,
        reactor,
        options.nick,
        password or None,
        colors=options.colors and wants_colors(sys.stdout, environ),
        script=not interactive and not _is_terminal(sys.stdin),
        roster=face.roster,
        tls=options.tls,
    )
    endpoint = HostnameEndpoint(
        reactor, options.host, options.port, timeout=CONNECT_TIMEOUT_SECONDS
    )
    if options.tls:
        endpoint = wrapClientTLS(_tls_options(options), endpoint)
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
            _fail(options, describe_connect_error(problem))
        try:
            await client.ready
        except defer.CancelledError:
            raise SystemExit(0)
        except Exception as problem:
            from wazzap.client.tls import describe_tls_failure

            _fail(options, describe_tls_failure(problem, options.host))
        face.start(client, reactor)
        code = await client.finished
        closing = face.stop()
        closing.addTimeout(CLOSE_GRACE_SECONDS, reactor)
        try:
            await closing
        except defer.TimeoutError:
            pass
        raise SystemExit(code)
    finally:
        face.hidden_input.restore()
        done.callback(None)


def install_asyncio_reactor():
    """
    Run Twisted on an asyncio loop, where prompt_toolkit runs too.  The loop
    is made the current one first (prompt_toolkit draws on the current loop:
    on another, the prompt never appears), and it is a selector loop, the
    kind Twisted's asyncio reactor needs (Windows defaults to another).
    """
    import asyncio

    from twisted.internet import asyncioreactor

    loop = asyncio.SelectorEventLoop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)


def main(argv=None):
    """
    Run the client on C{argv} (default: the command line) and exit.
    """
    import colorama

    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    interactive = is_interactive(sys.stdin, sys.stdout)
    if interactive:
        # Before anything imports twisted.internet.reactor, which would
        # install the default reactor instead.
        install_asyncio_reactor()
    from twisted.internet.task import react

    colorama.just_fix_windows_console()
    react(run, (options, os.environ, interactive))
