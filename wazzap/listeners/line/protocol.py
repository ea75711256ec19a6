"""
The line protocol spoken by nc, telnet and the wazzap client.

Wire grammar (UTF-8 text; invalid bytes become U+FFFD; telnet commands are
answered and cut out before framing, see L{wazzap.listeners.line.telnet}):

    line      = *OCTET ( LF / CR LF )        ; at most MAX_LINE_BYTES, ending included
    server    = "[Server] " text             ; notices and prompts, one per line
    prompt    = first line after connect asks for a nickname; the client answers
                with a bare nickname line, then every line is a chat line
    chat-line = "/" command [ SP args ]      ; see wazzap.commands and /help
              / "//" text                    ; text that starts with "/"
              / "@" nickname SP text         ; a private message
              / text                         ; a public message

The protocol owns one connection and composes its mechanics: the output
queue (L{wazzap.net.output}) and the input gate (framing and holds,
L{wazzap.net.input}); it decodes lines and speaks telnet.  The login dialog
is L{wazzap.listeners.line.dialog}, over the admission step of
L{wazzap.core.admission}; the line grammar is
L{wazzap.listeners.line.grammar}, what a chat line means is left to
L{wazzap.commands}; who hears it to L{wazzap.chat}, whose outbox calls
L{send} once a turn with bytes rendered by L{wazzap.listeners.line.render};
what all connections share to L{wazzap.server}.
"""

from collections import namedtuple

from twisted.internet import error
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from wazzap import text
from wazzap.core.identity import Identity, new_session_key
from wazzap.core.interfaces import IMember
from wazzap.listeners.line import grammar, render
from wazzap.listeners.line.dialog import LoginDialog
from wazzap.net import tls
from wazzap.net.counts import REFUSED_REASON
from wazzap.net.input import IInputOwner, InputGate
from wazzap.net.output import IOutputOwner, OutputQueue
from wazzap.listeners.line.telnet import Telnet
from wazzap.listeners.session_user import SessionUser, address_of


#: What the next line answers (L{ChatProtocol.ask}): kept only while a
#: question waits, so an idle connection keeps one slot for it, not two.
_Question = namedtuple("_Question", ("answer", "secret"))


@implementer(IMember, IOutputOwner, IInputOwner)
class ChatProtocol(SessionUser, LineReceiver):
    """
    One connection: from the nickname prompt, through the chat, to leaving.
    """

    log = Logger()

    # Slots for everything kept per connection, Twisted's own three
    # attributes (set by makeConnection and buildProtocol) included, so that
    # no instance dictionary is ever made: with thousands of idle people
    # online, this state is much of their cost.
    __slots__ = (
        "transport",
        "factory",
        "connected",
        "session",
        "_identity",
        "peer",
        "session_key",
        "renderer",
        "_output",
        "_input",
        "_dialog",
        "_idle_timer",
        "_joined",
        "_gone",
        "_leave_reason",
        "_record",
        "_question",
        "_exact",
        "_telnet",
        "_state",
        "_last_spoke",
    )

    def __init__(self):
        # Who this user is: held here while logging in, then by the
        # session the chat makes at join (and keeps until they leave).
        self._identity = Identity(None)
        self.session = None
        self.peer = None
        self.transport = None
        self.factory = None
        self.connected = 0
        self.session_key = new_session_key()
        self.renderer = render.COLORED
        self._output = None
        self._input = None
        self._dialog = None
        self._idle_timer = None
        self._joined = False
        self._gone = False
        self._leave_reason = None
        self._record = None
        self._question = None
        self._exact = b""
        self._telnet = None
        self._last_spoke = None
        # The state is a plain function called with self: unlike a bound
        # method it costs an idle connection nothing.
        self._state = ChatProtocol._logging_in

    # Protocol API

    def connectionMade(self):
        factory = self.factory
        limits = factory.limits
        self.peer = address_of(self.transport.getPeer())
        self._output = OutputQueue(self, factory.rules)
        refusal = factory.connection_opened(self)
        if refusal is not None:
            self._close_with(refusal)
            return
        self._input = InputGate(self, factory.rules, factory.addresses.line_allowance(self.peer))
        self.log.info("connection from {peer}", peer=self.peer)
        self._dialog = LoginDialog(self, factory.admission, factory.clock, limits)
        self._dialog.start()

    def dataReceived(self, data):
        gate = self._input
        if gate is None:
            return  # refused: nothing it sends is read
        if not gate.buffering() and self._state is ChatProtocol._logging_in:
            if self._dialog.refuses_bytes(data):
                return
        interrupted = False
        if self._telnet is not None or b"\xff" in data:
            data, interrupted = self._telnet_received(data)
        gate.feed(data)
        if interrupted and not self.transport.disconnecting:
            # Ctrl+C (IAC IP) or a break: the one way telnet users know to leave.
            self.quit()

    def connectionLost(self, reason=error.ConnectionDone):
        self._gone = True
        if self._dialog is not None:
            self._dialog.connection_lost()
        self._left(reason)

    # LineReceiver API

    def lineReceived(self, line):
        if line.endswith(b"\r"):
            line = line[:-1]
            if self._telnet is None:
                # Debian's telnet sends no command until Ctrl+C, but ends its
                # lines in CR LF: enough to ask it not to echo a password.
                self._telnet = Telnet(spoken=True)
        self._exact = line
        if self._question is not None and self._question.secret:
            self._answer_secret(line)
            return
        line = text.sanitize(line.decode("utf-8", "replace")).rstrip()
        if line.strip():
            question, self._question = self._question, None
            if question is None:
                self._state(self, line)
            else:
                question.answer(line)
        self._exact = b""  # an idle connection keeps no line alive

    def _answer_secret(self, line):
        """
        Hand a secret (a password) to its handler exactly as typed: only the
        line ending is gone, nothing is sanitised, so what is hashed is what
        the user typed.
        """
        try:
            secret = line.decode("utf-8")
        except UnicodeDecodeError:
            self.notice("that was not valid UTF-8 text: type it again")
            return
        if secret:
            question, self._question = self._question, None
            question.answer(secret)
            # No second secret asked for at once:
            if self._question is None or not self._question.secret:
                self._show_input()

    def lineLengthExceeded(self, line):
        self.notice(
            "that line was longer than %d bytes and was not sent"
            % (self.factory.limits.max_line_bytes,)
        )

    # IMember (and send, below)

    def close(self, reason, farewell):
        self.notice(farewell)
        self._leave_reason = reason
        self._close()

    def admit(self):
        """
        Join the chat: admission, or an admin's /approve, let this user in.
        """
        self._dialog.end()
        self._dialog = None
        self._join()

    # Logging in and joining (see wazzap.listeners.line.dialog)

    def _logging_in(self, line):
        self._dialog.line_received(line)

    def refuse(self, message):
        """
        Write C{message} exactly as it is and close: what the login dialog
        tells a browser, a TLS client or a banned address, which are not
        spoken to in server notices.
        """
        self._close_with(message)

    def _join(self):
        factory = self.factory
        chat = factory.chat
        nickname = self.nickname
        self.identify(color=chat.pick_color())
        room = chat.join(self)
        self._identity = None  # the session holds it now
        self._joined = True
        self._state = type(self)._chat
        self._record_session()
        self.log.info("{peer} joined as {nickname}", peer=self.peer, nickname=nickname)
        self._greet(room)
        self._time_idleness()
        self._tell_what_waited()

    def ask(self, prompt, answer, secret=False):
        """
        Show C{prompt} and hand the next line to C{answer} instead of the chat.

        A C{secret} answer (a password) is handed over exactly as typed, only
        its line ending removed (see L{exact_line}); a telnet client is asked
        not to echo it.
        """
        if secret and self._telnet is not None:
            self._write_in_order(self._telnet.hide_input())
        self.notice(prompt)
        self._question = _Question(answer, secret)

    @property
    def clear_text(self):
        """
        What this connection says of passwords: L{None} over TLS (or a Unix
        socket), else the server's L{wazzap.net.tls.ClearText}.  Looked up
        when a password is asked for, not kept by every connection.
        """
        if tls.is_private(self.transport):
            return None
        return self.factory.clear_text

    def set_colors(self, on):
        self.renderer = render.COLORED if on else render.PLAIN

    def quit(self, reason=None):
        self.notice("Goodbye!")
        self._leave_reason = "quit: " + reason if reason else "quit"
        self._close()

    # Output

    def _write_in_order(self, data):
        """
        Send C{data} after whatever is queued for this connection.
        """
        if data:
            self.flush_output()
            self.send(data)

    def send(self, data):
        """
        Queue C{data} for the client, after everything sent before: the one
        way bytes reach its output queue.
        """
        self._output.send(data)

    def _close(self):
        """
        Write what is queued and close the connection, once.
        """
        if self.transport.disconnecting:
            return
        self._state = _ignore
        self._question = None
        self._show_input()
        self.flush_output()
        self._output.close()
        self.transport.loseConnection()

    def _close_with(self, message):
        self._leave_reason = self._leave_reason or REFUSED_REASON
        self.flush_output()
        self.send(message.encode("utf-8"))
        self._close()

    # Input

    def _telnet_received(self, data):
        """
        Answer and cut out the telnet commands in C{data}; return the bytes
        left and whether the user interrupted (Ctrl+C).
        """
        if self._telnet is None:
            self._telnet = Telnet()
        data, answer, interrupted = self._telnet.receive(data)
        self._write_in_order(answer)
        return data, interrupted

    def _show_input(self):
        """
        Give a telnet client its echo back if a secret prompt took it.
        """
        if self._telnet is not None:
            self._write_in_order(self._telnet.show_input())

    # Chat

    def _chat(self, line):
        self._spoke()
        self.factory.commands.dispatch(self, grammar.parse(line))


def _ignore(protocol, line):
    """
    Lines that arrive after a connection began to close mean nothing.
    """
