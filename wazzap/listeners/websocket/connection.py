"""
One browser's connection, after its WebSocket handshake: the WebSocket
frames (read with wsproto, the library under Twisted's own WebSocket
support), the JSON messages inside them, and the same member and user API
as the line connection (L{wazzap.listeners.line.protocol.ChatProtocol}),
so the login dialog, admission, the chat and the commands treat a browser
user as anyone else.

Inbound, each text message is one JSON object; a message of
C{{"type": "line", "text": ...}} is a line typed (a nickname, a password,
a chat line, a C{/command}), paced and held by the same input gate as a
line connection's.  Outbound, what the outbox sends in a turn (rendered
once for every browser by L{wazzap.listeners.websocket.render}) goes out as
one text frame through the connection's output queue, so the slow-reader
limits hold for browsers too.
"""

import json
import struct

from twisted.internet import error
from twisted.logger import Logger
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.utilities import RemoteProtocolError
from zope.interface import implementer

from wazzap import text
from wazzap.core.identity import Identity, new_session_key
from wazzap.core.interfaces import IMember
from wazzap.flow import cancel
from wazzap.listeners.line import grammar
from wazzap.listeners.line.dialog import LoginDialog
from wazzap.listeners.session_user import SessionUser
from wazzap.listeners.websocket.render import JSON, encode
from wazzap.net.counts import REFUSED_REASON
from wazzap.net.input import IInputOwner, InputGate
from wazzap.net.output import IOutputOwner, OutputQueue

#: The largest message a browser may send, in bytes; a bigger one closes
#: the connection with L{MESSAGE_TOO_BIG}.
MAX_MESSAGE_BYTES = 4 * 1024
#: How often the server pings a browser.
PING_INTERVAL_SECONDS = 30
#: Silence (no pong, no message) after which a browser is dropped.
PING_TIMEOUT_SECONDS = 60

#: WebSocket close codes (RFC 6455, 7.4.1).
NORMAL_CLOSURE = 1000
UNSUPPORTED_DATA = 1003
MESSAGE_TOO_BIG = 1009
#: What a browser closing a page says: normal closure, going away, no code.
LEAVING_CODES = (NORMAL_CLOSURE, 1001, 1005)

#: The leave reason of a browser that stopped answering pings.
PING_TIMEOUT_REASON = "ping timeout: no answer to pings"


def text_frame(payload):
    """
    C{payload} (UTF-8 bytes) as one unmasked WebSocket text frame, as a
    server sends it (RFC 6455, 5.2): framed here so that the bytes a
    broadcast is rendered to once are shared by every browser, each only
    adding its few header bytes.
    """
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


@implementer(IMember, IOutputOwner, IInputOwner)
class WebConnection(SessionUser):
    """
    One browser, from the handshake, through the login and the chat, to leaving.

    It is the protocol of the TCP connection once the HTTP request upgraded
    it (L{wazzap.listeners.websocket.site}).
    """

    log = Logger()

    def __init__(self, factory, websocket, peer):
        """
        @param factory: the server's L{wazzap.server.ChatFactory}.
        @param websocket: the server's side of the wsproto connection the
            handshake made.
        @param peer: the browser's address, in standard form.
        """
        self.factory = factory
        self.peer = peer
        self.transport = None
        self.connected = 0
        self.session = None
        self.session_key = new_session_key()
        self.renderer = JSON
        #: What this connection says of passwords: the web port has no TLS
        #: of its own, so the server's rule for connections without it.
        self.clear_text = factory.clear_text
        self._websocket = websocket
        self._identity = Identity(None)
        self._output = None
        self._input = None
        self._dialog = None
        self._joined = False
        self._gone = False
        self._closing = False
        self._leave_reason = None
        self._record = None
        self._answer = None
        self._secret_answer = False
        self._exact = b""
        self._message_bytes = 0
        self._message_parts = []
        self._last_heard = None
        self._ping_timer = None
        self._idle_timer = None
        self._last_spoke = None
        self._state_sent = None

    # IProtocol of the upgraded TCP connection

    def makeConnection(self, transport):
        self.transport = transport
        self.connected = 1
        self.connectionMade()

    def connectionMade(self):
        factory = self.factory
        # The HTTP channel was the transport's producer; the output queue is now.
        self.transport.unregisterProducer()
        self._output = OutputQueue(self, factory.rules)
        refusal = factory.connection_opened(self)
        if refusal is not None:
            self._close_with(refusal)
            return
        self._input = InputGate(self, factory.rules, factory.addresses.line_allowance(self.peer))
        self._last_heard = factory.clock.seconds()
        self._ping_timer = factory.clock.callLater(PING_INTERVAL_SECONDS, self._ping)
        self.log.info("browser connection from {peer}", peer=self.peer)
        self._dialog = LoginDialog(self, factory.admission, factory.clock, factory.limits)
        self._dialog.start()

    def dataReceived(self, data):
        if self._input is None or self._closing:
            return  # refused, or closing: nothing it sends is read
        self._last_heard = self.factory.clock.seconds()
        try:
            self._websocket.receive_data(data)
            for event in self._websocket.events():
                self._frame_received(event)
                if self._closing:
                    return
        except RemoteProtocolError:
            self._leave_reason = "connection lost"
            self.transport.abortConnection()

    def connectionLost(self, reason=error.ConnectionDone):
        self.connected = 0
        self._gone = True
        self._ping_timer = cancel(self._ping_timer)
        if self._dialog is not None:
            self._dialog.connection_lost()
        self._left(reason)

    # WebSocket frames

    def _frame_received(self, event):
        kind = type(event)
        if kind is TextMessage:
            self._text_received(event)
        elif kind is Ping:
            self._write_in_order(self._websocket.send(event.response()))
        elif kind is Pong:
            pass  # heard: dataReceived noted the time
        elif kind is CloseConnection:
            # A browser leaving says 1000 or 1001 (or nothing, 1005); any
            # other code is a protocol error, wsproto's or the peer's.
            if event.code in LEAVING_CODES:
                self._leave_reason = "connection closed"
                self._close(NORMAL_CLOSURE)
            else:
                self._leave_reason = "connection lost: WebSocket error %d" % (event.code,)
                self._close(event.code)
        elif kind is BytesMessage:
            self._close_frame(UNSUPPORTED_DATA, "this chat speaks JSON in text messages")

    def _text_received(self, event):
        """
        Gather the parts of a text message, refusing it as soon as it is too big.
        """
        part = event.data
        self._message_bytes += len(part.encode("utf-8"))
        if self._message_bytes > MAX_MESSAGE_BYTES:
            self._close_frame(
                MESSAGE_TOO_BIG, "messages are at most %d bytes" % (MAX_MESSAGE_BYTES,)
            )
            return
        self._message_parts.append(part)
        if event.message_finished:
            message = "".join(self._message_parts)
            self._message_parts = []
            self._message_bytes = 0
            self._message_received(message)

    def _message_received(self, message):
        """
        Take one JSON message from the page: a typed line goes through the
        input gate, paced like any line.
        """
        try:
            value = json.loads(message)
        except ValueError:
            value = None
        typed = value.get("text") if isinstance(value, dict) and value.get("type") == "line" else None
        if not isinstance(typed, str):
            self.notice('not understood: send {"type": "line", "text": "..."}')
            return
        if "\n" in typed or "\r" in typed:
            self.notice("one line at a time, please: that message was not sent")
            return
        self._input.feed(typed.encode("utf-8") + b"\n")

    # IInputOwner

    def lineReceived(self, line):
        self._exact = line
        if self._secret_answer:
            self._answer_secret(line)
            return
        line = text.sanitize(line.decode("utf-8", "replace")).rstrip()
        if line.strip():
            answer, self._answer = self._answer, None
            if answer is not None:
                answer(line)
            elif self._joined:
                self._spoke()
                self.factory.commands.dispatch(self, grammar.parse(line))
            elif self._dialog is not None:
                self._dialog.line_received(line)
        self._exact = b""

    def _answer_secret(self, line):
        """
        Hand a secret (a password) over exactly as typed.
        """
        secret = line.decode("utf-8", "replace")
        if secret:
            answer, self._answer, self._secret_answer = self._answer, None, False
            answer(secret)

    def lineLengthExceeded(self, line):
        self.notice(
            "that line was longer than %d bytes and was not sent"
            % (self.factory.limits.max_line_bytes,)
        )

    # IMember

    def send(self, data):
        """
        Send what the outbox gathered this turn as one WebSocket message,
        with the page's state after it when that changed; nothing after
        the close frame.
        """
        if self._closing:
            return
        self._output.send(text_frame(data + self._state_change()))

    def close(self, reason, farewell):
        self.notice(farewell)
        self._leave_reason = reason
        self._close()

    # The user API of the login dialog and the commands

    def quit(self, reason=None):
        self.notice("Goodbye!")
        self._leave_reason = "quit: " + reason if reason else "quit"
        self._close()

    def refuse(self, message):
        """
        Tell C{message} (which the line listener writes as it is) as a
        notice, and close.
        """
        self._close_with(message)

    def admit(self):
        self._dialog.end()
        self._dialog = None
        self._join()

    def ask(self, prompt, answer, secret=False):
        self.notice(prompt)
        self._answer = answer
        self._secret_answer = secret

    def set_colors(self, on):
        """
        The page always shows colours: C{/colors} changes nothing here.
        """

    # Joining, as the line connection does

    def _join(self):
        factory = self.factory
        chat = factory.chat
        self.identify(color=chat.pick_color())
        room = chat.join(self)
        self._identity = None  # the session holds it now
        self._joined = True
        self._record_session()
        self.log.info("{peer} joined as {nickname} from a browser", peer=self.peer, nickname=self.nickname)
        self._greet(room)
        self._time_idleness()
        self._tell_what_waited()

    # The page's state

    def _state_change(self):
        """
        The page's C{state} message (who the user is, which room they read,
        the rooms they are in, whether the next line is a secret) if it
        changed since the last one sent, else nothing.
        """
        rooms = ()
        if self._joined and not self._gone:
            rooms = tuple(self.factory.chat.presence.rooms_of(self.session_key))
        room = self.room
        state = (
            self.nickname, None if room is None else room.name, rooms, self._secret_answer, self.color
        )
        if state == self._state_sent:
            return b""
        self._state_sent = state
        return encode(
            {
                "type": "state",
                "nickname": state[0] if self._joined else None,
                "room": state[1],
                "rooms": list(rooms),
                "secret": state[3],
                "color": state[4],
            }
        )

    # Pings

    def _ping(self):
        clock = self.factory.clock
        silent_for = clock.seconds() - self._last_heard
        if silent_for >= PING_TIMEOUT_SECONDS:
            self._ping_timer = None
            self.log.info("{peer} did not answer pings: dropping", peer=self.peer)
            self._leave_reason = PING_TIMEOUT_REASON
            self.transport.abortConnection()
            return
        self._write_in_order(self._websocket.send(Ping(b"wazzap")))
        wait = min(PING_INTERVAL_SECONDS, PING_TIMEOUT_SECONDS - silent_for)
        self._ping_timer = clock.callLater(wait, self._ping)

    # Closing

    def _write_in_order(self, data):
        if data and not self._closing:
            self.flush_output()
            self._output.send(data)

    def _close(self, code=NORMAL_CLOSURE):
        """
        Write what is queued, then a close frame, and close, once.
        """
        if self._closing or self.transport.disconnecting:
            return
        self.flush_output()
        self._closing = True
        self._answer = None
        self._secret_answer = False
        self._ping_timer = cancel(self._ping_timer)
        self._output.send(self._close_bytes(code, ""))
        self._output.close()
        self.transport.loseConnection()

    def _close_frame(self, code, why):
        """
        Close at once with C{code}: the browser was told C{why} in the frame.
        """
        if self._closing:
            return
        self._leave_reason = self._leave_reason or "refused: " + why
        self.flush_output()
        self._closing = True
        self._ping_timer = cancel(self._ping_timer)
        self._output.send(self._close_bytes(code, why))
        self._output.close()
        self.transport.loseConnection()

    def _close_bytes(self, code, why):
        try:
            return self._websocket.send(CloseConnection(code, why))
        except Exception:
            # wsproto refuses a second close; the first one is on its way.
            return b""

    def _close_with(self, message):
        self._leave_reason = self._leave_reason or REFUSED_REASON
        self.notice(message.strip().removeprefix("[Server] "))
        self._close()
