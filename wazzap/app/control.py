"""
The operator at the server's own terminal: approving and refusing
newcomers, kicking, announcing and listing who is online without a chat
account, through the control socket that C{wazzap-admin} talks to, or with
C{--console} on the server's own standard input, where each request to join
is printed as it arrives.

The control socket is a UNIX socket beside the database
(C{wazzap.sqlite3.control}), never on a network: it is made mode 0600 from
its first instant, and where the kernel says who connects (SO_PEERCRED) it
answers only the user the server runs as, and root.  Its grammar (UTF-8;
one request a line, each answered before the next is read):

    request = command [ SP args ] LF      ; at most MAX_REQUEST_BYTES, "/" before
                                          ; the command allowed, as in the chat
    answer  = *( "- " text LF ) ( "ok" / "error" ) LF

The console reads the same requests and prints only the answers' text.

Each command runs the chat's own (C{/pending}, C{/approve}, C{/deny},
C{/kick}, C{/who}; L{wazzap.commands}) with an L{Operator} as the user: what
they tell that user is the answer, and what others hear of it names
L{OPERATOR} ("bob left the chat (kicked by the operator)").
"""

import fcntl
import os
import socket
import stat
import struct
from dataclasses import dataclass
from typing import Tuple

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from wazzap import text
from wazzap.commands.base import plural, split_word
from wazzap.net.framing import TOO_LONG, LineFramer
from wazzap.failures import log_failure
from wazzap.persist.store import default_db_path

#: Who the users are told did what the operator does.
OPERATOR = "the operator"

#: The control socket is the database's path with this added.
CONTROL_SUFFIX = ".control"
#: Readable and writable by the server's own user only.
SOCKET_MODE = 0o600
#: Longest request line, in bytes: an announcement fits in it as a chat line would.
MAX_REQUEST_BYTES = 4096
#: How long C{wazzap-admin} waits for the server to answer.
ANSWER_TIMEOUT_SECONDS = 10
#: How long a start waits to learn whether a control socket left behind is live.
PROBE_TIMEOUT_SECONDS = 2

TEXT_PREFIX = "- "
OK = "ok"
ERROR = "error"

log = Logger()


def control_socket_for(db_path):
    """
    Where the control socket of a server on the database C{db_path} (L{None}
    for the default one) is: beside it; L{None} for C{":memory:"}, which has
    no place on disk.
    """
    path = os.fspath(db_path) if db_path is not None else default_db_path()
    if path == ":memory:":
        return None
    return os.path.abspath(os.path.expanduser(path)) + CONTROL_SUFFIX


class Operator:
    """
    The user the chat's commands see when the operator runs one: an admin
    with no account and no connection, called L{OPERATOR} in what others are
    told.  What it is told is the answer.
    """

    nickname = OPERATOR
    account = None
    is_admin = True

    def __init__(self):
        self.told = []

    def notice(self, message):
        self.told.append(message)


@dataclass(frozen=True)
class Answer:
    """
    The answer to one request: its lines of text, and whether the command
    did what was asked.
    """

    lines: Tuple[str, ...]
    ok: bool = True


class ControlCommands:
    """
    The operator's commands, each through the chat's own command of that
    name where there is one.
    """

    def __init__(self, chat, registry):
        """
        @param chat: the L{wazzap.chat.Chat}.
        @param registry: the L{wazzap.commands.registry.Registry} of the
            chat's commands.
        """
        self._chat = chat
        self._registry = registry
        # name -> (usage, what it does, whether it needs arguments, action)
        self._commands = {
            "pending": ("pending [PAGE]", "who waits to join, 20 a page", False, self._pending),
            "approve": ("approve NICK", "let NICK, who waits, join", True, self._approve),
            "deny": ("deny NICK [REASON]", "turn NICK away", True, self._deny),
            "kick": ("kick NICK [REASON]", "disconnect NICK", True, self._kick),
            "announce": ("announce TEXT", "tell everyone online TEXT", True, self._announce),
            "who": ("who", "list who is online, with their rooms", False, self._who),
            "help": ("help", "list these commands", False, self._help),
        }

    def run(self, request):
        """
        A Deferred that fires with the L{Answer} to C{request}, a line of
        text; it never fails.
        """
        name, args = split_word(request)
        # "/approve bob", as an admin types it in the chat, does too.
        name = name[1:] if name.startswith("/") else name
        entry = self._commands.get(name.lower())
        if entry is None:
            return defer.succeed(Answer(("unknown command %s: help lists them" % (name,),), False))
        usage, _, needs_arguments, action = entry
        if needs_arguments and not args:
            return defer.succeed(Answer(("usage: " + usage,), False))
        return defer.maybeDeferred(action, args).addErrback(self._failed, name)

    def _failed(self, failure, name):
        log_failure(failure, log, "the operator's " + name)
        return Answer(("%s failed on the server: see its log" % (name,),), False)

    def _as_operator(self, name, args, ok=True, done=None):
        """
        Run the chat's C{/name} with C{args} as the L{Operator}; the answer
        is what it was told, or C{done} when it was told nothing.
        """
        operator = Operator()
        ran = defer.maybeDeferred(self._registry.find(name).handler, operator, args)

        def answer(_):
            told = operator.told or ([done] if done else [])
            return Answer(tuple(told), ok)

        return ran.addCallback(answer)

    def _waits(self, nickname):
        key = text.nickname_key(nickname)
        return any(text.nickname_key(member.nickname) == key for member in self._chat.waiting())

    def _pending(self, args):
        return self._as_operator("pending", args)

    def _approve(self, args):
        nickname = split_word(args)[0]
        return self._as_operator("approve", nickname, ok=self._waits(nickname))

    def _deny(self, args):
        return self._as_operator("deny", args, ok=self._waits(split_word(args)[0]))

    def _kick(self, args):
        member = self._chat.find(split_word(args)[0])
        done = None if member is None else "%s was kicked" % (member.nickname,)
        return self._as_operator("kick", args, ok=member is not None, done=done)

    def _announce(self, args):
        message = text.sanitize(args).strip()
        if not text.is_visible(message):
            return Answer(("usage: announce TEXT",), False)
        self._chat.announce(message)
        log.info("the operator made an announcement")
        return Answer(("announced to %s online" % (plural(len(self._chat), "person", "people"),),))

    def _who(self, args):
        if not len(self._chat):
            # The chat's /who is always asked by someone online.
            return Answer(("nobody is online",))
        return self._as_operator("who", args)

    def _help(self, args):
        return Answer(
            tuple("%-20s %s" % (usage, summary) for usage, summary, _, _ in self._commands.values())
        )


class ControlProtocol(Protocol):
    """
    One connection to the control socket: requests in, each answered before
    the next one is read.
    """

    def __init__(self, commands):
        self._commands = commands
        self._framer = LineFramer(MAX_REQUEST_BYTES)
        self._pending = None

    # Protocol API

    def connectionMade(self):
        uid = peer_uid(self.transport)
        if uid is not None and uid not in (os.getuid(), 0):
            log.warn("refused a control connection from user id {uid}", uid=uid)
            self.write_answer(
                Answer(("only the user the server runs as may use its control socket",), False)
            )
            self.transport.loseConnection()

    def dataReceived(self, data):
        if self.transport.disconnecting:
            return
        self._framer.feed(data)
        self._next()

    # Requests and answers

    def _next(self):
        while self._pending is None:
            line = self._framer.next_line()
            if line is None:
                return
            if line is TOO_LONG:
                self.write_answer(
                    Answer(("a request is at most %d bytes" % (MAX_REQUEST_BYTES,),), False)
                )
                continue
            request = text.sanitize(line.decode("utf-8", "replace")).strip()
            if not request:
                continue
            self._pending = self._commands.run(request)
            self._pending.addCallback(self._answered)
            if self._pending is not None:
                # It waits on something: read no more until it is answered.
                self.transport.pauseProducing()
                self._pending.addCallback(self._resume)

    def _answered(self, answer):
        self._pending = None
        self.write_answer(answer)

    def _resume(self, _):
        self.transport.resumeProducing()
        self._next()

    def write_answer(self, answer):
        """
        Write C{answer} in the socket's grammar.
        """
        lines = [TEXT_PREFIX + line for line in answer.lines]
        lines.append(OK if answer.ok else ERROR)
        self.transport.write("".join(line + "\n" for line in lines).encode("utf-8"))


class ControlFactory(Factory):
    """
    Makes a L{ControlProtocol} for each connection to the control socket.
    """

    noisy = False

    def __init__(self, commands):
        self.commands = commands

    def buildProtocol(self, addr):
        return ControlProtocol(self.commands)


@implementer(IHalfCloseableProtocol)
class ConsoleProtocol(ControlProtocol):
    """
    The server's own standard input and output: the same requests, answers
    as plain lines, and every request to join (or summary of them) that
    admins are told, as it comes.
    """

    def __init__(self, commands, approval_listeners):
        """
        @param approval_listeners: the chat's list of callables told of
            requests to join (L{wazzap.chat.Chat.approval_listeners}).
        """
        ControlProtocol.__init__(self, commands)
        self._listeners = approval_listeners

    def connectionMade(self):
        self._listeners.append(self.print_line)
        self.print_line("wazzap console: type help for the commands")

    def print_line(self, line):
        self.transport.write((line + "\n").encode("utf-8"))

    def write_answer(self, answer):
        for line in answer.lines:
            self.print_line(line)

    # IHalfCloseableProtocol

    def readConnectionLost(self):
        # The output still shows requests to join; Ctrl+C stops the server.
        log.info("the console's input ended; the server goes on")

    def writeConnectionLost(self):
        self._stop_listening()

    def connectionLost(self, reason):
        self._stop_listening()

    def _stop_listening(self):
        if self.print_line in self._listeners:
            self._listeners.remove(self.print_line)


def peer_uid(transport):
    """
    The user id of the process at the other end of a UNIX socket, or L{None}
    where the kernel does not say.
    """
    option = getattr(socket, "SO_PEERCRED", None)
    get_handle = getattr(transport, "getHandle", None)
    if option is None or get_handle is None:
        return None
    credentials = get_handle().getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def console_problem(nodaemon, fd=0):
    """
    Why C{--console} cannot read the file descriptor C{fd} (standard input)
    of a server run with C{-n} (C{nodaemon}) or not, or L{None}.
    """
    if not nodaemon:
        return "--console needs twistd -n: a daemon has no terminal to read"
    try:
        status = os.fstat(fd)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError:
        return "--console reads standard input, and it is closed"
    if flags & os.O_ACCMODE == os.O_WRONLY:
        return "--console reads standard input, and it is not open for reading"
    if stat.S_ISCHR(status.st_mode) and status.st_rdev == os.stat(os.devnull).st_rdev:
        return "--console reads standard input, and it is %s" % (os.devnull,)
    return None


class ControlService(Service):
    """
    The control socket at C{path} (if any) and, with C{console}, the
    server's standard input, from start to stop.
    """

    def __init__(self, commands, approval_listeners, path=None, console=False, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self.commands = commands
        self.path = path
        self._approval_listeners = approval_listeners
        self._console = console
        self._reactor = reactor
        self._port = None

    def listen(self):
        """
        Make the control socket now, before twistd goes on, so a problem is
        told in one line where the server was started: raise L{SystemExit}.
        A socket left by a server that was killed is replaced; a live one
        means another server runs on this database.
        """
        if self.path is None:
            return
        _remove_stale(self.path)
        factory = ControlFactory(self.commands)
        # The umask, not a chmod after bind, keeps the socket from being
        # open to others for even an instant.  twistd has started no thread
        # yet that could make a file meanwhile.
        umask = os.umask(0o777 & ~SOCKET_MODE)
        try:
            self._port = self._reactor.listenUNIX(self.path, factory, mode=SOCKET_MODE)
        except CannotListenError as e:
            reason = _reason(e.socketError)
            raise SystemExit(
                "wazzap: cannot make the control socket %s: %s (--control-socket puts it elsewhere)"
                % (self.path, reason)
            )
        finally:
            os.umask(umask)
        log.info("control socket at {path} (for wazzap-admin)", path=self.path)

    def startService(self):
        Service.startService(self)
        if self._console:
            from twisted.internet.stdio import StandardIO

            console = ConsoleProtocol(self.commands, self._approval_listeners)
            stdin, stdout = _own_standard_io()
            StandardIO(console, stdin=stdin, stdout=stdout, reactor=self._reactor)

    def stopService(self):
        Service.stopService(self)
        port, self._port = self._port, None
        if port is not None:
            return port.stopListening()  # which removes the file
        return None


def _own_standard_io():
    """
    Standard input and output for the console, opened afresh where the
    system allows (Linux's /proc), else descriptors 0 and 1.

    StandardIO makes its descriptors non-blocking, and that flag belongs to
    the open file they share with the log (twistd -n logs to descriptor 1,
    and a terminal is often one open file for 0, 1 and 2): a log line
    written while the terminal or pipe is slow would then fail, and the
    log's observer be dropped.  Files of their own keep the log blocking.
    """
    opened = []
    try:
        for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY)):
            opened.append(os.open("/proc/self/fd/%d" % (fd,), mode | os.O_NOCTTY))
    except OSError:
        for fd in opened:
            os.close(fd)
        return 0, 1
    return tuple(opened)


def _remove_stale(path):
    """
    Remove the control socket at C{path} if a server left it behind; raise
    L{SystemExit} if a server answers on it or something else is there.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise SystemExit("wazzap: cannot use the control socket %s: %s" % (path, _reason(e)))
    if not stat.S_ISSOCK(mode):
        raise SystemExit(
            "wazzap: %s is in the way of the control socket: it is not a socket (move it away)"
            % (path,)
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(PROBE_TIMEOUT_SECONDS)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        log.info("removed the control socket {path} a stopped server left", path=path)
        return
    except OSError as e:
        if not isinstance(e, socket.timeout):
            raise SystemExit("wazzap: cannot use the control socket %s: %s" % (path, _reason(e)))
    finally:
        probe.close()
    raise SystemExit(
        "wazzap: another server runs on this database: its control socket %s answers "
        "(stop it first, or give this one another --db; processes sharing one through "
        "--redis need a --control-socket each)" % (path,)
    )


def _reason(error):
    """
    What went wrong, as in a sentence: "permission denied", not an errno.
    """
    strerror = getattr(error, "strerror", None)
    return strerror.lower() if strerror else str(error)


class NoAnswer(Exception):
    """
    No server answered on the control socket; the message says why.
    """


def ask(path, request, timeout=ANSWER_TIMEOUT_SECONDS):
    """
    Send C{request} (one line of text) to the server whose control socket
    is at C{path}, and return its L{Answer}; raise L{NoAnswer} if there is
    no server, or it does not answer within C{timeout} seconds.
    """
    line = " ".join(request.splitlines()).encode("utf-8") + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        try:
            connection.connect(path)
        except FileNotFoundError:
            raise NoAnswer("no server is running (there is no control socket %s)" % (path,))
        except ConnectionRefusedError:
            raise NoAnswer("no server is running (%s is left from one that stopped)" % (path,))
        except PermissionError:
            raise NoAnswer(
                "%s: permission denied: run this as the user the server runs as" % (path,)
            )
        except OSError as e:
            raise NoAnswer("cannot reach the server at %s: %s" % (path, _reason(e)))
        try:
            connection.sendall(line)
            return _read_answer(connection.makefile("rb"))
        except socket.timeout:
            raise NoAnswer("the server did not answer within %d seconds" % (timeout,))
        except OSError as e:
            raise NoAnswer("the server closed the control socket: %s" % (_reason(e),))


def _read_answer(lines):
    told = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith(TEXT_PREFIX):
            told.append(line[len(TEXT_PREFIX) :])
        elif line in (OK, ERROR):
            return Answer(tuple(told), line == OK)
    raise NoAnswer(
        "the server closed the control socket without answering%s"
        % (": " + told[-1] if told else "",)
    )
