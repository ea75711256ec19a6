"""
The line protocol spoken by nc, telnet and the wazzap client.

Wire grammar (UTF-8 text; invalid bytes become U+FFFD):

    line      = *OCTET ( LF / CR LF )        ; at most MAX_LINE_BYTES, CR included
    server    = "[Server] " text             ; notices and prompts, one per line
    prompt    = first line after connect asks for a nickname; the client answers
                with a bare nickname line, then every line is a chat line
    chat-line = "/" command [ SP args ]      ; see wazzap.commands and /help
              / "//" text                    ; text that starts with "/"
              / "@" nickname SP text         ; a private message
              / text                         ; a public message

The protocol owns one connection: framing, decoding, pacing and the login
prompt.  What a line means is left to L{wazzap.commands}; who hears it to
L{wazzap.chat}.
"""

import re
import time
from itertools import islice
from dataclasses import dataclass

from twisted.internet import defer, error
from twisted.internet.interfaces import IPushProducer, ITCPTransport
from twisted.internet.protocol import ServerFactory
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from wazzap import text
from wazzap.chat import IMember
from wazzap.commands import Commands
from wazzap.flow import LineAllowance
from wazzap.framing import TOO_LONG, LineFramer
from wazzap.passwords import MAX_ATTEMPTS_PER_CONNECTION

SECOND = 1
MINUTE = 60 * SECOND
KIB = 1024

# wazzap.client recognises "Choose a nickname", "[Server] Welcome, NICK!" and any
# server line ending in "password:" (case-insensitive): keep those wordings.
NICKNAME_PROMPT = "Choose a nickname (1 to 16 letters, digits, _ or -):"

#: Names listed in a newcomer's welcome; /who lists everyone.
WELCOME_NAMES = 20

# Telnet clients send IAC commands (Ctrl+C becomes IAC IP); 0xFF never occurs in
# UTF-8, so they can be cut out of the bytes before decoding.
_TELNET_COMMAND = re.compile(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa\xff]", re.DOTALL)
_HTTP_REQUEST = re.compile(r"[A-Z]{3,7} \S+ HTTP/\d")
_TLS_HANDSHAKE = b"\x16\x03"

_NOT_CHAT = (
    "This is a wazzap chat server, not a web or TLS server: "
    "connect with nc, telnet or python -m wazzap.client.\r\n"
)


_NO_HOLDS = frozenset()


@dataclass
class Limits:
    """
    What one connection may do; every value is a documented server option.
    """

    #: Longest line accepted, in bytes, line ending included.
    max_line_bytes: int = 4 * KIB
    #: Output queued for a client that stopped reading, beyond the kernel's and
    #: Twisted's buffers, before it is disconnected as too slow.
    max_queued_output_bytes: int = 256 * KIB
    #: How long a client may leave its output blocked before it is disconnected.
    slow_timeout_seconds: float = 30 * SECOND
    #: How long a new connection has to choose a nickname.
    login_timeout_seconds: float = 60 * SECOND
    #: Silence after which a joined user is disconnected; 0 for never.
    idle_timeout_seconds: float = 0
    #: Lines a connection may send at once before being slowed down.
    flood_burst_lines: int = 20
    #: Lines per second allowed after the burst; 0 turns flood control off.
    flood_rate_lines_per_second: float = 5
    #: Connections allowed from one address; 0 for no limit.
    max_connections_per_address: int = 50
    #: How long a newcomer waits for an admin's approval (--approve-joins).
    approval_timeout_seconds: float = 10 * MINUTE


@implementer(IPushProducer)
class _OutputGate:
    """
    Registered with the transport so it tells us when the peer stops reading:
    from then on output is held, and counted, by the protocol instead.
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol):
        self._protocol = protocol

    def pauseProducing(self):
        self._protocol.output_blocked()

    def resumeProducing(self):
        self._protocol.output_unblocked()

    def stopProducing(self):
        pass


@implementer(IMember)
class ChatProtocol(LineReceiver):
    """
    One connection: from the nickname prompt, through the chat, to leaving.

    Class attributes hold the defaults of per-connection state, so an idle
    connection's instance dictionary keeps only what differs.
    """

    delimiter = b"\n"
    log = Logger()

    nickname = None
    color = None
    room = None
    account = None
    is_admin = False
    peer = None
    _variant = text.COLORED
    _flush_scheduled = False
    _blocked = False
    _backlog = None
    _backlog_bytes = 0
    _slow_timer = None
    _login_timer = None
    _idle_timer = None
    _resume_timer = None
    _held_line = None
    _holds = _NO_HOLDS
    _told_to_slow_down = False
    _joined = False
    _gone = False
    _leave_reason = None
    _session = None
    _outbox = ()
    _failed_logins = 0
    _answer = None
    _framer = None

    # Protocol API

    def connectionMade(self):
        factory = self.factory
        limits = factory.limits
        self.peer = _address_of(self.transport.getPeer())
        # The state is a plain function called with self: unlike a bound
        # method it costs an idle connection nothing.
        self._state = ChatProtocol._choose_nickname
        self._allowance = LineAllowance(
            factory.clock, limits.flood_burst_lines, limits.flood_rate_lines_per_second
        )
        self.transport.registerProducer(_OutputGate(self), True)
        if ITCPTransport.providedBy(self.transport):
            # Nagle's algorithm against the client's delayed ACK costs ~40 ms a
            # line; keepalive finds peers that vanished without a FIN.
            self.transport.setTcpNoDelay(True)
            self.transport.setTcpKeepAlive(True)
        refusal = factory.connection_opened(self)
        if refusal is not None:
            self._close_with(refusal)
            return
        self.log.info("connection from {peer}", peer=self.peer)
        self._login_timer = factory.clock.callLater(
            limits.login_timeout_seconds, self._login_timed_out
        )
        self._await(factory.bans.find(None, self.peer), self._greet)

    def dataReceived(self, data):
        framer = self._framer
        if framer is None:
            if self._state is ChatProtocol._choose_nickname and data.startswith(_TLS_HANDSHAKE):
                self._close_with(_NOT_CHAT)
                return
            framer = self._framer = LineFramer(self.factory.limits.max_line_bytes, self.delimiter)
        framer.feed(data)
        self._process_lines()

    def connectionLost(self, reason=error.ConnectionDone):
        self._gone = True
        for timer in (self._login_timer, self._idle_timer, self._resume_timer, self._slow_timer):
            _cancel(timer)
        if self._leave_reason is None:
            self._leave_reason = (
                "connection closed" if reason.check(error.ConnectionDone) else "connection lost"
            )
        factory = self.factory
        factory.chat.leave(self, self._leave_reason)
        if self._joined:
            self.log.info(
                "{nickname} left ({reason})", nickname=self.nickname, reason=self._leave_reason
            )
            self._end_session(factory.accounts.store, factory.clock.seconds())
        factory.connection_closed(self)

    # LineReceiver API

    def lineReceived(self, line):
        if line.endswith(b"\r"):
            line = line[:-1]
        if b"\xff" in line:
            line = _TELNET_COMMAND.sub(b"", line)
        line = text.sanitize(line.decode("utf-8", "replace")).rstrip()
        if line.strip():
            answer, self._answer = self._answer, None
            if answer is None:
                self._state(self, line)
            else:
                answer(line)

    def lineLengthExceeded(self, line):
        self.notice(
            "that line was longer than %d bytes and was not sent"
            % (self.factory.limits.max_line_bytes,)
        )

    # IMember

    def deliver(self, line):
        if self.room is not None:
            self.room.catch_up(self)
        if self._flush_scheduled:
            self._outbox.append(line.variants[self._variant])
        else:
            self._outbox = [line.variants[self._variant]]
            self._flush_scheduled = True
            self.factory.chat.flusher.schedule(self)

    def write(self, line):
        if self._outbox:
            self._outbox.append(line.variants[self._variant])
        else:
            self._write(line.variants[self._variant])

    def disconnect(self, reason, notice=None):
        self.notice(notice or "disconnected: " + reason)
        self._leave_reason = reason
        self._close()

    def admit(self):
        self._login_timer = _cancel(self._login_timer)
        self._join()

    # The session API of wazzap.commands

    def notice(self, message):
        self.deliver(text.server_line(message))

    def ask(self, prompt, answer):
        """
        Show C{prompt} and hand the next line to C{answer} instead of the chat.
        """
        self.notice(prompt)
        self._answer = answer

    def set_colors(self, on):
        self._variant = text.COLORED if on else text.PLAIN

    def quit(self, reason=None):
        self.notice("Goodbye!")
        self._leave_reason = "quit: " + reason if reason else "quit"
        self._close()

    # Output

    def flush_output(self):
        """
        Write what was queued in this turn, or hold it while the peer is not
        reading; called by the factory's L{TurnFlusher}.
        """
        self._flush_scheduled = False
        outbox, self._outbox = self._outbox, ()
        if outbox:
            self._write(outbox[0] if len(outbox) == 1 else b"".join(outbox))

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
        if self._backlog_bytes > self.factory.limits.max_queued_output_bytes:
            self._drop_slow_consumer()

    def _send(self, data):
        """
        Hand C{data} to the socket at once when Twisted holds nothing for it,
        else to the transport.

        Twisted's write() always waits for the next reactor turn and asks
        epoll to watch the socket for writability, then to stop: two system
        calls and a turn per write.  When nothing is buffered, one send()
        now is the same bytes in the same order, sooner and cheaper; what the
        kernel does not take goes to the transport as usual.  Transports
        without a plain socket (TLS, tests) always take the write() path.
        """
        transport = self.transport
        sock = getattr(transport, "socket", None)
        if (
            sock is not None
            and not getattr(transport, "_tempDataBuffer", True)
            and not transport.dataBuffer
            and not transport.disconnecting
        ):
            try:
                sent = sock.send(data)
            except OSError:
                sent = 0  # EAGAIN, or an error the reactor will report on its own
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def output_blocked(self):
        """
        The transport's buffer is full: the peer is not reading fast enough.
        """
        self._blocked = True
        self._backlog = []
        if self._slow_timer is None or not self._slow_timer.active():
            self._slow_timer = self.factory.clock.callLater(
                self.factory.limits.slow_timeout_seconds, self._drop_slow_consumer
            )

    def output_unblocked(self):
        self._blocked = False
        if self._slow_timer is not None and self._slow_timer.active():
            self._slow_timer.cancel()
        backlog, self._backlog, self._backlog_bytes = self._backlog, None, 0
        if backlog:
            self.transport.writeSequence(backlog)

    def _drop_slow_consumer(self):
        self.log.info("{peer} is not reading its output: disconnecting", peer=self.peer)
        self._leave_reason = "too slow: stopped reading"
        self._outbox = ()
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
        self.flush_output()
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def _close_with(self, message):
        self._leave_reason = self._leave_reason or message.strip()
        self.transport.write(message.encode("utf-8"))
        self._close()

    # Input

    def _process_lines(self):
        """
        Hand complete lines to L{lineReceived} until reading is held: while
        the connection is over its line allowance, or waits for the database.
        """
        framer = self._framer
        while framer is not None and not self._holds and not self.transport.disconnecting:
            line = self._held_line
            if line is None:
                line = framer.next_line()
                if line is None:
                    if framer.idle():
                        # Nothing partial is kept: an idle connection holds no framer.
                        self._framer = None
                    return
            wait = self._allowance.wait()
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

    def _await(self, deferred, then, *args):
        """
        Hold input until C{deferred} fires, then call C{then(result, *args)}
        if the connection is still open.  A failure is logged and ends the
        connection with an apology: the user never sees a traceback.
        """
        token = object()
        self._hold(token)

        def done(result):
            if not self._gone:
                then(result, *args)
                self._release(token)

        deferred.addCallback(done).addErrback(self._broke)

    def _broke(self, failure):
        self._log_failure(failure, "serving " + (self.nickname or self.peer or "a connection"))
        if not self._gone:
            self.disconnect("server error", "sorry, something went wrong on the server")

    def _log_failure(self, failure, doing):
        self.log.failure("failed {doing}", failure, doing=doing)

    # Login

    def _greet(self, ban):
        if ban is not None:
            self._close_with("[Server] This address is banned%s.\r\n" % (_ban_details(ban),))
            return
        self.notice("Welcome to wazzap, the terminal chat.")
        self.notice(NICKNAME_PROMPT)

    def _choose_nickname(self, line):
        if _HTTP_REQUEST.match(line):
            self._close_with(
                "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n" + _NOT_CHAT
            )
            return
        nickname = line.strip()
        problem = self.factory.chat.nickname_problem(nickname)
        if problem is not None:
            self._ask_nickname_again("Sorry, " + problem + ".")
            return
        self._await(self._look_up(nickname), self._nickname_checked, nickname)

    @defer.inlineCallbacks
    def _look_up(self, nickname):
        ban = yield self.factory.bans.find(nickname, self.peer)
        account = yield self.factory.accounts.lookup(nickname)
        return ban, account

    def _nickname_checked(self, found, nickname):
        ban, account = found
        if ban is not None:
            self.disconnect("banned", "%s is banned%s." % (nickname, _ban_details(ban)))
        elif account is not None:
            self.ask(
                "%s is registered. Password:" % (account.nickname,),
                lambda password: self._check_password(nickname, password),
            )
        else:
            self._admit_or_wait(nickname)

    def _ask_nickname_again(self, why):
        self.notice(why)
        self.notice(NICKNAME_PROMPT)

    def _check_password(self, nickname, password):
        factory = self.factory
        delay = factory.throttle.delay(nickname, self.peer)
        check = deferLater(factory.clock, delay, factory.accounts.verify, nickname, password)
        self._await(check, self._password_checked, nickname)

    def _password_checked(self, account, nickname):
        throttle = self.factory.throttle
        if account is None:
            throttle.failed(nickname, self.peer)
            self._failed_logins += 1
            self.log.info("wrong password for {nickname} from {peer}", nickname=nickname, peer=self.peer)
            if self._failed_logins >= MAX_ATTEMPTS_PER_CONNECTION:
                self.disconnect("too many wrong passwords", "wrong nickname or password: goodbye")
            else:
                self._ask_nickname_again("Wrong nickname or password.")
            return
        throttle.succeeded(nickname, self.peer)
        self.account = account.nickname
        self.is_admin = account.is_admin
        self._admit_or_wait(nickname)

    def _admit_or_wait(self, nickname):
        factory = self.factory
        problem = factory.chat.nickname_problem(nickname)
        if problem is not None:
            self._ask_nickname_again("Sorry, " + problem + ".")
            return
        self.nickname = nickname
        if not factory.approve_joins or self.is_admin:
            self.admit()
            return
        _cancel(self._login_timer)
        self._state = ChatProtocol._wait_for_approval
        self.log.info("{nickname} from {peer} waits for approval", nickname=nickname, peer=self.peer)
        admins = factory.chat.wait_for_approval(self)
        self.notice("This room needs an admin's approval to join; please wait.")
        if not admins:
            self.notice("No admin is online right now: you will be let in or turned away when one decides.")
        self._login_timer = factory.clock.callLater(
            factory.limits.approval_timeout_seconds, self._approval_timed_out
        )

    def _wait_for_approval(self, line):
        self.notice("still waiting for an admin's approval")

    def _approval_timed_out(self):
        self.factory.chat.stop_waiting(self.nickname)
        self.disconnect("no approval in time", "no admin approved you in time: goodbye")

    def _join(self):
        factory = self.factory
        chat = factory.chat
        nickname = self.nickname
        clock = factory.clock
        self.color = chat.pick_color()
        room = chat.join(self)
        self._joined = True
        self._state = ChatProtocol._chat
        self._session = factory.accounts.store.session_started(nickname, self.peer, clock.seconds())
        self._session.addCallbacks(self._session_started, self._log_failure, errbackArgs=("recording a session",))
        self.log.info("{peer} joined as {nickname}", peer=self.peer, nickname=nickname)
        self.notice(
            "Welcome, %s! %s Type /help for commands, /quit to leave."
            % (nickname, _who_else(room, self))
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

    def _end_session(self, store, now):
        """
        Record the end of this session, once its start has been recorded.
        """
        session, reason = self._session, self._leave_reason
        if isinstance(session, defer.Deferred):
            session.addCallback(lambda _: self._end_session(store, now))
        elif session is not None:
            store.session_ended(session, now, reason).addErrback(
                self._log_failure, "recording the end of a session"
            )

    def _login_timed_out(self):
        self.disconnect("login timeout", "no nickname chosen in time: goodbye")

    # Chat

    def _chat(self, line):
        if self._idle_timer is not None:
            self._last_heard = self.factory.clock.seconds()
        self.factory.commands.handle(self, line)

    def _check_idle(self):
        clock = self.factory.clock
        idle_for = clock.seconds() - self._last_heard
        limit = self.factory.limits.idle_timeout_seconds
        if idle_for >= limit:
            self.disconnect("idle for %d seconds" % (idle_for,))
        else:
            self._idle_timer = clock.callLater(limit - idle_for, self._check_idle)


def _ban_details(ban):
    until = " until %s" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ban.until)),) if ban.until else ""
    return until + (": " + ban.reason if ban.reason else "")


def _who_else(room, member):
    """
    Who else is in C{room}, for a welcome: a few names, then how many more, so
    that joining a room of thousands costs no more than joining a small one.
    """
    others = len(room) - 1
    if not others:
        return "You are the first one here."
    names = [m.nickname for m in islice(room.members(), WELCOME_NAMES + 1) if m is not member]
    names = names[:WELCOME_NAMES]
    if others > len(names):
        return "Also here: %s and %d more (/who lists everyone)." % (
            ", ".join(names),
            others - len(names),
        )
    return "Also here: %s." % (", ".join(names),)


def _cancel(timer):
    """
    Cancel C{timer} if it is pending; return None, to drop the reference.
    """
    if timer is not None and timer.active():
        timer.cancel()


def _ignore(protocol, line):
    """
    Lines that arrive after a connection began to close mean nothing.
    """


def _address_of(address):
    """
    The host part of a peer's address: the key for per-address limits.
    """
    return getattr(address, "host", None) or "local"


class ChatFactory(ServerFactory):
    """
    The state shared by all connections of one server: the chat, its commands,
    limits and clock, and every open connection (for limits and shutdown).
    """

    protocol = ChatProtocol
    log = Logger()

    def __init__(self, chat, accounts, bans, throttle, limits=None, clock=None, approve_joins=False):
        if clock is None:
            from twisted.internet import reactor as clock
        self.chat = chat
        self.accounts = accounts
        self.bans = bans
        self.throttle = throttle
        self.commands = Commands(chat, accounts, bans, clock)
        self.limits = limits or Limits()
        self.clock = clock
        self.approve_joins = approve_joins
        self.connections = set()
        self._per_address = {}
        self._all_closed = None

    def connection_opened(self, connection):
        """
        Count a new connection; return why it is refused, or L{None}.
        """
        self.connections.add(connection)
        count = self._per_address.get(connection.peer, 0) + 1
        self._per_address[connection.peer] = count
        limit = self.limits.max_connections_per_address
        if limit and count > limit:
            self.log.warn(
                "refused {peer}: over {limit} connections", peer=connection.peer, limit=limit
            )
            return "[Server] Too many connections from your address (limit %d).\r\n" % (limit,)
        return None

    def connection_closed(self, connection):
        if connection in self.connections:
            self.connections.discard(connection)
            count = self._per_address[connection.peer] - 1
            if count:
                self._per_address[connection.peer] = count
            else:
                del self._per_address[connection.peer]
        if not self.connections:
            self._finish_shutdown()

    def shut_down(self, notice, grace_seconds=0.5):
        """
        Tell every connection C{notice}, close them all, and return a Deferred
        that fires once they are closed; any still open after C{grace_seconds}
        are aborted.
        """
        if not self.connections:
            return defer.succeed(None)
        self._all_closed = defer.Deferred()
        for connection in list(self.connections):
            connection.disconnect(notice, notice)
        self.chat.flusher.flush()
        abort = self.clock.callLater(grace_seconds, self._abort_all)
        self._all_closed.addBoth(lambda result: abort.cancel() if abort.active() else None)
        return self._all_closed

    def _abort_all(self):
        for connection in list(self.connections):
            connection.transport.abortConnection()
        # Aborting closes a connection in the next turn; after that, shutting
        # down goes on even if one of them never reported being lost.
        self.clock.callLater(0.1, self._finish_shutdown)

    def _finish_shutdown(self):
        if self._all_closed is not None and not self._all_closed.called:
            self._all_closed.callback(None)
