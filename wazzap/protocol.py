"""
The line protocol spoken by nc, telnet and the wazzap client.

Wire grammar (UTF-8 text; invalid bytes become U+FFFD; telnet commands are
answered and cut out before framing, see L{wazzap.telnet}):

    line      = *OCTET ( LF / CR LF )        ; at most MAX_LINE_BYTES, ending included
    server    = "[Server] " text             ; notices and prompts, one per line
    prompt    = first line after connect asks for a nickname; the client answers
                with a bare nickname line, then every line is a chat line
    chat-line = "/" command [ SP args ]      ; see wazzap.commands and /help
              / "//" text                    ; text that starts with "/"
              / "@" nickname SP text         ; a private message
              / text                         ; a public message

The protocol owns one connection: framing, decoding, pacing and output.  The
login dialog is L{wazzap.listeners.line.dialog}, over the admission step of
L{wazzap.core.admission}; what a chat line means is left to
L{wazzap.commands}; who hears it to L{wazzap.chat}; what all connections share
to L{wazzap.server}.
"""

import socket

from twisted.internet import defer, error, tcp
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from wazzap import addresses, text
from wazzap.core.identity import new_session_key
from wazzap.core.interfaces import IMember
from wazzap.flow import cancel
from wazzap.framing import TOO_LONG, LineFramer
from wazzap.listeners.line import grammar, render
from wazzap.listeners.line.dialog import LoginDialog, who_else
from wazzap.telnet import Telnet

_NO_HOLDS = frozenset()

#: The kernel's send buffer for each client (Linux doubles it for its own
#: bookkeeping): with Twisted's 64 KiB and --max-queued-output, what a client
#: that stopped reading can hold up is bounded.
SEND_BUFFER_BYTES = 64 * 1024

#: How long one client that is catching up on its output may hold senders
#: back, once per spell of blocked output: then it is skipped (its output
#: queues for it) until it has caught up, so one slow link never freezes a
#: room, and it is dropped by the usual slow-reader rule if it cannot.
MAX_HOLD_BACK_SECONDS = 0.1


@implementer(IMember, IPushProducer)
class ChatProtocol(LineReceiver):
    """
    One connection: from the nickname prompt, through the chat, to leaving.
    """

    delimiter = b"\n"
    log = Logger()

    # Slots for everything wazzap keeps per connection (Twisted's own few
    # attributes stay in the instance dictionary): with thousands of idle
    # people online, this state is much of their cost.
    __slots__ = (
        "nickname",
        "color",
        "room",
        "account",
        "is_admin",
        "peer",
        "session_key",
        "renderer",
        "_plain_transport",
        "_blocked",
        "_pending_seen",
        "_congesting",
        "_skipped",
        "_hold_back_timer",
        "_backlog",
        "_backlog_bytes",
        "_slow_timer",
        "_idle_timer",
        "_resume_timer",
        "_held_line",
        "_holds",
        "_told_to_slow_down",
        "_joined",
        "_gone",
        "_leave_reason",
        "_session",
        "_answer",
        "_secret_answer",
        "_exact",
        "_framer",
        "_telnet",
        "_state",
        "_dialog",
        "line_allowance",
        "_last_heard",
    )

    def __init__(self):
        self.nickname = None
        self.color = None
        self.room = None
        self.account = None
        self.is_admin = False
        self.peer = None
        self.session_key = new_session_key()
        self.renderer = render.COLORED
        self._plain_transport = None
        self._blocked = False
        self._pending_seen = None
        self._congesting = False
        self._skipped = False
        self._hold_back_timer = None
        self._backlog = None
        self._backlog_bytes = 0
        self._slow_timer = None
        self._idle_timer = None
        self._resume_timer = None
        self._held_line = None
        self._holds = _NO_HOLDS
        self._told_to_slow_down = False
        self._joined = False
        self._gone = False
        self._leave_reason = None
        self._session = None
        self._answer = None
        self._secret_answer = False
        self._exact = b""
        self._framer = None
        self._telnet = None
        self.line_allowance = None
        self._last_heard = None
        # The state is a plain function called with self: unlike a bound
        # method it costs an idle connection nothing.
        self._state = ChatProtocol._logging_in
        self._dialog = None

    # Protocol API

    def connectionMade(self):
        factory = self.factory
        limits = factory.limits
        self.peer = _address_of(self.transport.getPeer())
        self.transport.registerProducer(self, True)
        carrier = _socket_transport_under(self.transport)
        if carrier is not None:
            # Nagle's algorithm against the client's delayed ACK costs ~40 ms a
            # line; keepalive finds peers that vanished without a FIN.
            carrier.setTcpNoDelay(True)
            carrier.setTcpKeepAlive(True)
            # Left alone, Linux grows a send buffer to 4 MiB for a peer that
            # stopped reading, before Twisted (and so we) ever see it blocked.
            carrier.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            if carrier is self.transport and not carrier.TLS:
                # Nothing (TLS above all) stands between us and the socket:
                # the fast path of _send may write it directly.
                self._plain_transport = carrier
        refusal = factory.connection_opened(self)
        if refusal is not None:
            self._close_with(refusal)
            return
        self.line_allowance = factory.line_allowance(self.peer)
        self.log.info("connection from {peer}", peer=self.peer)
        self._dialog = LoginDialog(self, factory.admission, factory.clock, limits)
        self._dialog.start()

    def dataReceived(self, data):
        framer = self._framer
        if framer is None and self._state is ChatProtocol._logging_in:
            if self._dialog.refuses_bytes(data):
                return
        interrupted = False
        if self._telnet is not None or b"\xff" in data:
            data, interrupted = self._telnet_received(data)
        if framer is None:
            # The limit counts the line ending; a CR before it is part of
            # what the framer sees.
            framer = self._framer = LineFramer(
                self.factory.limits.max_line_bytes - len(self.delimiter), self.delimiter
            )
        framer.feed(data)
        self._process_lines()
        if interrupted and not self.transport.disconnecting:
            # Ctrl+C (IAC IP) or a break: the one way telnet users know to leave.
            self.quit()

    def connectionLost(self, reason=error.ConnectionDone):
        self._gone = True
        if self._dialog is not None:
            self._dialog.connection_lost()
        for timer in (self._idle_timer, self._resume_timer, self._slow_timer):
            cancel(timer)
        self._end_congestion()
        if self._leave_reason is None:
            self._leave_reason = (
                "connection closed" if reason.check(error.ConnectionDone) else "connection lost"
            )
        factory = self.factory
        factory.chat.leave(self, self._leave_reason)
        if self._joined:
            self.log.info(
                "{nickname} left ({reason})",
                nickname=self.nickname,
                reason=text.reason_for_log(self._leave_reason),
            )
            self._end_session(factory.accounts.store, factory.clock.seconds())
        factory.connection_closed(self)

    # LineReceiver API

    def lineReceived(self, line):
        if line.endswith(b"\r"):
            line = line[:-1]
            if self._telnet is None:
                # Debian's telnet sends no command until Ctrl+C, but ends its
                # lines in CR LF: enough to ask it not to echo a password.
                self._telnet = Telnet(spoken=True)
        self._exact = line
        if self._secret_answer:
            self._answer_secret(line)
            return
        line = text.sanitize(line.decode("utf-8", "replace")).rstrip()
        if line.strip():
            answer, self._answer = self._answer, None
            if answer is None:
                self._state(self, line)
            else:
                answer(line)
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
            answer, self._answer, self._secret_answer = self._answer, None, False
            answer(secret)
            if not self._secret_answer:  # no second secret asked for at once
                self._show_input()

    def lineLengthExceeded(self, line):
        self.notice(
            "that line was longer than %d bytes and was not sent"
            % (self.factory.limits.max_line_bytes,)
        )

    # IMember

    def send(self, data):
        self._write(data)

    def close(self, reason, farewell):
        self.notice(farewell)
        self._leave_reason = reason
        self._close()

    def disconnect(self, reason, notice=None):
        """
        L{close}, telling the user C{notice}, by default that they were
        disconnected for C{reason}.
        """
        self.close(reason, notice or "disconnected: " + reason)

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
        clock = factory.clock
        self.color = chat.pick_color()
        room = chat.join(self)
        self._joined = True
        self._state = type(self)._chat
        self._session = factory.accounts.store.session_started(nickname, self.peer, clock.seconds())
        self._session.addCallbacks(self._session_started, self._session_not_recorded)
        self.log.info("{peer} joined as {nickname}", peer=self.peer, nickname=nickname)
        self.notice(
            "Welcome, %s! %s Type /help for commands, /quit to leave."
            % (nickname, who_else(room, self))
        )
        if self.is_admin:
            self.notice("You are an admin: /help lists your commands.")
            waiting = chat.waiting()
            if waiting:
                self.notice("%d waiting to join: /pending" % (len(waiting),))
        if factory.limits.idle_timeout_seconds:
            self._last_heard = clock.seconds()
            self._idle_timer = clock.callLater(
                factory.limits.idle_timeout_seconds, self._check_idle
            )

    def _session_started(self, session_id):
        # Keep the id, not the Deferred: an idle connection should cost little.
        self._session = session_id

    def _session_not_recorded(self, failure):
        # A locked or full database must not stop the chat: the session goes
        # unrecorded, the user stays, and leaving has nothing to finish.
        self._session = None
        self._log_write_failure(failure, "the start of a session")

    def _end_session(self, store, now):
        """
        Record the end of this session, once its start has been recorded.
        """
        session, reason = self._session, self._leave_reason
        if isinstance(session, defer.Deferred):
            # By the time this runs the start is recorded (an id) or given up
            # (None): never a Deferred again, so this cannot come back here.
            session.addCallback(lambda _: self._end_session(store, now))
        elif session is not None:
            store.session_ended(session, now, reason).addErrback(
                self._log_write_failure, "the end of a session"
            )

    def _log_write_failure(self, failure, what):
        """
        Log a failed database write as one line: what, whose, and why.
        """
        self.log.error(
            "could not record {what} of {nickname}: {error}",
            what=what,
            nickname=self.nickname,
            error=failure.getErrorMessage(),
        )

    # The session API of wazzap.commands

    def notice(self, message):
        self.factory.chat.tell(self, message)

    def hold_input_until(self, deferred):
        """
        Handle none of this user's next lines until C{deferred} has fired, so
        a command that waits for the database finishes before the next one.
        """
        token = object()
        self._hold(token)

        def release(result):
            self._release(token)
            return result

        deferred.addBoth(release)

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
        self._answer = answer
        self._secret_answer = secret

    @property
    def exact_line(self):
        """
        The line being handled exactly as typed (only the line ending and
        telnet commands removed), for passwords given on a command line; or
        L{None} if it was not valid UTF-8.
        """
        try:
            return self._exact.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def set_colors(self, on):
        self.renderer = render.COLORED if on else render.PLAIN

    def quit(self, reason=None):
        self.notice("Goodbye!")
        self._leave_reason = "quit: " + reason if reason else "quit"
        self._close()

    # Output

    def flush_output(self):
        """
        Write now what the outbox holds for this connection this turn: before
        it closes, or writes bytes of its own that must come after.
        """
        self.factory.chat.outbox.flush_member(self)

    def _write_in_order(self, data):
        """
        Send C{data} after whatever is queued for this connection.
        """
        if data:
            self.flush_output()
            self._write(data)

    def _write(self, data):
        """
        Send C{data} now, or hold it while the peer is not reading.
        """
        if not self._blocked:
            self._send(data)
            return
        if self._backlog is None:
            return  # dropped as too slow; the connection is on its way out
        self._backlog.append(data)
        self._backlog_bytes += len(data)
        if not self._congesting and not self._skipped and self._draining():
            # It reads, only slower than others write: senders wait for it a
            # moment (reading from them pauses), so that a short burst does
            # not pile up or drop someone who reads.
            self._congesting = True
            self.factory.congestion_started(self)
            self._hold_back_timer = self.factory.clock.callLater(
                MAX_HOLD_BACK_SECONDS, self._stop_holding_back
            )
        limit = self.factory.limits.max_queued_output_bytes
        if not self._congesting and self._backlog_bytes > limit:
            self._drop_slow_consumer()

    def _pending_output(self):
        """
        Bytes the transport still holds for the socket, or None where it does
        not say: only Twisted's plain socket transport keeps them in these
        attributes.
        """
        plain = self._plain_transport
        if plain is None:
            return None
        return len(plain.dataBuffer) - plain.offset + plain._tempDataLen

    def _draining(self):
        """
        Whether the peer took some of its output since the last look: a
        client that stopped reading never does.
        """
        pending, seen = self._pending_output(), self._pending_seen
        self._pending_seen = pending
        return pending is not None and seen is not None and pending < seen

    def _stop_holding_back(self):
        """
        This client had its moment: senders go on without it until it has
        caught up, and it is dropped if what queues for it is too much.
        """
        self._skipped = True
        self._end_congestion()
        if self._backlog_bytes > self.factory.limits.max_queued_output_bytes:
            self._drop_slow_consumer()

    def _end_congestion(self):
        if self._congesting:
            self._congesting = False
            cancel(self._hold_back_timer)
            self.factory.congestion_ended(self)

    def congestion_over(self):
        """
        Read from this connection again: no client is catching up any more.
        """
        self._release("congestion")

    def _send(self, data):
        """
        Hand C{data} to the socket at once when Twisted holds nothing for it,
        else to the transport.

        Twisted's write() always waits for the next reactor turn and asks
        epoll to watch the socket for writability, then to stop: two system
        calls and a turn per write.  When nothing is buffered, one send()
        now is the same bytes in the same order, sooner and cheaper; what the
        kernel does not take goes to the transport as usual.  Any other
        transport (TLS above all: its socket carries ciphertext) always takes
        the write() path.
        """
        plain = self._plain_transport
        if (
            plain is not None
            and not plain._tempDataBuffer
            and not plain.dataBuffer
            and not plain.disconnecting
        ):
            try:
                sent = plain.socket.send(data)
            except OSError:
                sent = 0  # EAGAIN, or an error the reactor will report on its own
            if sent == len(data):
                return
            data = data[sent:]
        self.transport.write(data)

    # IPushProducer: registered with our own transport, which pauses us when
    # the peer stops reading.  (LineReceiver's use of these names, pausing
    # our reading, is not used here: see _hold.)

    def pauseProducing(self):
        self.output_blocked()

    def resumeProducing(self):
        self.output_unblocked()

    def stopProducing(self):
        pass

    def output_blocked(self):
        """
        The transport's buffer is full: the peer is not reading fast enough.
        """
        self._blocked = True
        self._pending_seen = self._pending_output()
        self._backlog = []
        if self._slow_timer is None or not self._slow_timer.active():
            self._slow_timer = self.factory.clock.callLater(
                self.factory.limits.slow_timeout_seconds, self._drop_slow_consumer
            )

    def output_unblocked(self):
        self._blocked = False
        self._skipped = False
        self._end_congestion()
        if self._slow_timer is not None and self._slow_timer.active():
            self._slow_timer.cancel()
        backlog, self._backlog, self._backlog_bytes = self._backlog, None, 0
        if backlog:
            self.transport.writeSequence(backlog)

    def _drop_slow_consumer(self):
        self.log.info("{peer} is not reading its output: disconnecting", peer=self.peer)
        self._leave_reason = "too slow: stopped reading"
        self._end_congestion()
        self._backlog = None
        self.transport.unregisterProducer()
        self.transport.abortConnection()

    def _close(self):
        """
        Write what is queued and close the connection, once.
        """
        if self.transport.disconnecting:
            return
        self._state = _ignore
        self._answer = None
        self._secret_answer = False
        self._show_input()
        self.flush_output()
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def _close_with(self, message):
        self._leave_reason = self._leave_reason or message.strip()
        self.flush_output()
        self._write(message.encode("utf-8"))
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

    def _process_lines(self):
        """
        Hand complete lines to L{lineReceived} until reading is held: while
        the connection is over its line allowance, waits for the database, or
        waits for a client that is catching up on its output.
        """
        framer = self._framer
        factory = self.factory
        while framer is not None and not self._holds and not self.transport.disconnecting:
            line = self._held_line
            if line is None:
                line = framer.next_line()
                if line is None:
                    if framer.idle():
                        # Nothing partial is kept: an idle connection holds no framer.
                        self._framer = None
                    return
            if factory.congested and not self._congesting:
                self._held_line = line
                self._hold("congestion")
                factory.hold_until_congestion_ends(self)
                return
            wait = self.line_allowance.wait()
            if wait:
                self._held_line = line
                self._slow_down(wait)
                return
            self._held_line = None
            if line is TOO_LONG:
                self.lineLengthExceeded(line)
            else:
                self.lineReceived(line)

    def _hold(self, reason):
        """
        Stop reading (and handling buffered lines) until every reason given
        here is L{_release}d.
        """
        if not self._holds and not self.transport.disconnecting:
            self.transport.pauseProducing()
        self._holds = self._holds | {reason}

    def _release(self, reason):
        self._holds = (self._holds - {reason}) or _NO_HOLDS
        if not self._holds and not self._gone and not self.transport.disconnecting:
            self.transport.resumeProducing()
            self._process_lines()

    def _slow_down(self, seconds):
        if not self._told_to_slow_down:
            self._told_to_slow_down = True
            self.notice("you are sending too fast: your lines are being slowed down")
        self._hold("flood")
        self._resume_timer = self.factory.clock.callLater(seconds, self._resume)

    def _resume(self):
        self._resume_timer = None
        if (self._framer is None or self._framer.idle()) and self._held_line is None:
            self._told_to_slow_down = False
        self._release("flood")

    # Chat

    def _chat(self, line):
        if self._idle_timer is not None:
            self._last_heard = self.factory.clock.seconds()
        self.factory.commands.dispatch(self, grammar.parse(line))

    def _check_idle(self):
        clock = self.factory.clock
        idle_for = clock.seconds() - self._last_heard
        limit = self.factory.limits.idle_timeout_seconds
        if idle_for >= limit:
            self.disconnect("idle for %d seconds" % (idle_for,))
        else:
            self._idle_timer = clock.callLater(limit - idle_for, self._check_idle)


def _ignore(protocol, line):
    """
    Lines that arrive after a connection began to close mean nothing.
    """


def _socket_transport_under(transport):
    """
    Twisted's own socket transport that carries C{transport}: itself, or the
    one under a wrapper such as TLS; L{None} for anything else (tests).
    """
    while not isinstance(transport, tcp.Connection):
        transport = getattr(transport, "transport", None)
        if transport is None:
            return None
    return transport


def _address_of(address):
    """
    The host part of a peer's address, in standard form: the key for
    per-address limits and bans.
    """
    return addresses.normalise(getattr(address, "host", None) or "local")
