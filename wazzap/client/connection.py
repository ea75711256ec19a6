"""
The client's connection to the server: L{ChatClient} shows what the server
says and sends what the user types.

It understands only a little of the server's talk: the nickname prompt (to
answer it with C{--nick}), password prompts (to hide what is typed next), and
its own welcome (to know it has joined).  What it shows goes to a screen (the
pipe's L{wazzap.client.pipe.Terminal}, or the prompt of
L{wazzap.client.interactive}); an interactive client also gives every line to
a L{wazzap.client.roster.Roster}, which learns names from it.

Fed by a script (standard input not a terminal), the client sends the lines
it reads only once it has joined, the ones before that answering the
server's prompts that C{--nick} and C{WAZZAP_PASSWORD} leave open; at the end
of its input it leaves only after sending all of them, so that C{echo hello |
wazzap-client --nick bot HOST} says hello.
"""

import re
from collections import deque

from twisted.internet import defer, error
from twisted.internet.interfaces import IHandshakeListener
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from wazzap.text import from_first_visible, sanitize, strip_styles

#: How long the server has to close after C{/quit} before we close ourselves.
QUIT_GRACE_SECONDS = 3
#: How long a closing connection or terminal may take before it is cut off.
CLOSE_GRACE_SECONDS = 3
KIB = 1024

SERVER_PREFIX = "[Server] "
NICKNAME_PROMPT_MARK = "Choose a nickname"
QUIT_COMMANDS = frozenset({"/quit", "/leave", "/exit"})

_JOINED = re.compile(r"^\[Server\] Welcome, [^ ]+!")


def is_password_prompt(plain_line):
    """
    Whether a server line (colours already stripped) asks for a password.

    A prompt is one phrase that ends in "password:".  Notices that quote
    what people wrote give it after a colon of their own (C{alice set the
    topic of #lobby: type your password:}), so a notice with a colon before
    its end is none: anyone could otherwise make a client hide the next line
    or give away its password.
    """
    if not plain_line.startswith(SERVER_PREFIX):
        return False
    text = plain_line[len(SERVER_PREFIX):].rstrip()
    return text.lower().endswith("password:") and ":" not in text[: -len("password:")]


@implementer(IHandshakeListener)
class ChatClient(LineReceiver):
    """
    The connection to the server: shows its lines, answers its prompts when
    told to, and knows whether leaving was our idea.

    C{ready} fires once the connection carries the chat: when it is made in
    clear, after the handshake over TLS; it fails with the reason if the
    connection is lost before that (a certificate that does not verify).
    C{finished} fires with the exit status once the connection is closed.
    """

    delimiter = b"\n"
    # The server's lines are at most a few KiB; this only bounds memory.
    MAX_LENGTH = 64 * KIB

    def __init__(
        self,
        screen,
        hidden_input,
        clock,
        nickname=None,
        password=None,
        colors=True,
        script=False,
        roster=None,
        tls=False,
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
        @param roster: a L{wazzap.client.roster.Roster} to learn names from
            every line (and to ask its questions once joined), if any.
        @param tls: whether the connection is ready only after a TLS
            handshake.
        """
        self.screen = screen
        self.hidden_input = hidden_input
        self.clock = clock
        self.nickname = nickname
        self._nickname_given = nickname is not None
        self.password = password
        self.colors = colors
        self.roster = roster
        self.joined = False
        self.ready = defer.Deferred()
        self.finished = defer.Deferred()
        self._tls = tls
        self._secret_next = False
        #: Whether the user's last line was a command (or blank, which the
        #: server may take as the answer to a prompt).
        self._command_before = False
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

    @property
    def closing(self):
        """
        Whether the connection is gone or going, so typing is over.
        """
        return self._leaving or self._lost

    # Protocol API

    def connectionMade(self):
        if not self._tls:
            self.ready.callback(None)

    def connectionLost(self, reason=error.ConnectionDone):
        self._lost = True
        self.hidden_input.restore()
        if self._cut_off is not None and self._cut_off.active():
            self._cut_off.cancel()
        if not self.ready.called:
            # Never ready: a refused handshake is a connection error, not a
            # chat that ended; unless the user gave up waiting.
            self.ready.errback(defer.CancelledError() if self._leaving else reason)
            self.finished.callback(1)
        elif self._leaving:
            self.finished.callback(0)
        else:
            self.screen.show("Disconnected from server")
            self.finished.callback(1)

    # IHandshakeListener

    def handshakeCompleted(self):
        if not self.ready.called:
            self.ready.callback(None)

    # LineReceiver API

    def lineReceived(self, line):
        line = line.decode("utf-8", "replace").rstrip("\r")
        plain = strip_styles(line)
        if self.roster is not None and self.roster.hear(plain):
            return  # the answer to a question the client asked, not the user
        self.screen.show(line if self.colors else plain)
        if NICKNAME_PROMPT_MARK in plain:
            self._nickname_asked()
        elif is_password_prompt(plain):
            self._password_asked()
        elif not self.joined and _JOINED.match(plain):
            self.joined = True
            # The environment's password is for logging in only.
            self.password = None
            if not self.colors:
                self._send("/colors off")
            if self.roster is not None:
                for question in self.roster.ask():
                    self._send(question)
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
            return
        self._send(line)
        if self.roster is not None and self.joined:
            self._ask_again_after(line)

    def _ask_again_after(self, line):
        """
        Let the roster ask again after a line that opens no prompt: text, as
        the server reads it, after a line that was not a command either (a
        command's prompt may be on its way yet).
        """
        # What the server's grammar (wazzap.listeners.line.grammar) calls a command.
        shown = from_first_visible(sanitize(line))
        public = bool(shown) and (shown[0] != "/" or shown.startswith("//"))
        if public and not self._command_before:
            for question in self.roster.ask_again():
                self._send(question)
        self._command_before = not public

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
