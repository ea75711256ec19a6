"""
What every listener's connection shares once someone logs in: the session
API the commands use (who the user is, read from their session once joined
and changed only through C{identify}; their room; a notice), the record of
their session in the login history, what joining tells them after the
listener's own welcome, and what leaving does.
"""

from dataclasses import replace

from twisted.internet import defer, error
from twisted.logger import Logger

from wazzap import addresses, text
from wazzap.flow import cancel
from wazzap.listeners.line.dialog import who_else


class SessionUser:
    """
    The session API of L{wazzap.commands}, for a connection that keeps
    C{_identity} while logging in and is given its C{session} at join, and
    has a C{factory} with the C{chat}.
    """

    __slots__ = ()

    @property
    def identity(self):
        session = self.session
        return self._identity if session is None else session.identity

    @property
    def nickname(self):
        return self.identity.nickname

    @property
    def account(self):
        return self.identity.account

    @property
    def is_admin(self):
        return self.identity.is_admin

    @property
    def color(self):
        return self.identity.color

    @property
    def room(self):
        session = self.session
        return None if session is None else session.room

    def identify(self, **fields):
        """
        Change who this user is (C{nickname}, C{account}, C{is_admin},
        C{color}): while logging in, or on its session once joined.
        """
        session = self.session
        if session is None:
            self._identity = replace(self._identity, **fields)
        else:
            self.factory.chat.change_identity(session, **fields)

    def notice(self, message):
        self.factory.chat.tell(self, message)

    def disconnect(self, reason, notice=None):
        """
        L{close}, telling the user C{notice}, by default that they were
        disconnected for C{reason}.
        """
        self.close(reason, notice or "disconnected: " + reason)

    def hold_input_until(self, deferred):
        """
        Handle none of this user's next lines until C{deferred} has fired, so
        a command that waits for the database finishes before the next one.
        """
        self._input.hold_until(deferred)

    @property
    def exact_line(self):
        """
        The line being handled exactly as sent (only the line ending, and a
        listener's own framing, removed), for passwords given on a command
        line; or L{None} if it was not valid UTF-8.
        """
        try:
            return self._exact.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def flush_output(self):
        """
        Write now what the outbox holds for this connection this turn: before
        it closes, or writes bytes of its own that must come after.
        """
        self.factory.chat.outbox.flush_member(self)

    def sending_too_fast(self):
        # IInputOwner: told once a flood, as the input gate decides.
        self.notice("you are sending too fast: your lines are being slowed down")

    def output_too_slow(self):
        # IOutputOwner: the output queue gave up on this reader.
        self.log.info("{peer} is not reading its output: disconnecting", peer=self.peer)
        self._leave_reason = "too slow: stopped reading"
        self.transport.abortConnection()

    @property
    def line_allowance(self):
        """
        This connection's allowance of lines (remembered for its address
        once it closes), or None if it was refused.
        """
        return None if self._input is None else self._input.allowance

    def limits_changed(self):
        """
        The server's limits changed (a reload): pace this connection's
        lines and time its silence by the new ones, keeping what its
        allowance holds.
        """
        if self._input is not None:
            self._input.pace_by(self.factory.addresses.line_pace)
        if self._joined and not self._gone:
            self._time_idleness()

    # Silence (--idle-timeout), for every listener (slots: _idle_timer,
    # _last_spoke)

    def _spoke(self):
        """
        The user sent a line of their own (not a keep-alive): their silence
        counts from now.
        """
        if self._idle_timer is not None:
            self._last_spoke = self.factory.clock.seconds()

    def _time_idleness(self):
        """
        Disconnect this user after the idle timeout (if there is one) of
        silence, counted from the last line they sent, or from now.
        """
        clock = self.factory.clock
        limit = self.factory.limits.idle_timeout_seconds
        self._idle_timer = cancel(self._idle_timer)
        if not limit:
            self._last_spoke = None
            return
        now = clock.seconds()
        if self._last_spoke is None:
            self._last_spoke = now
        wait = max(self._last_spoke + limit - now, 0)
        self._idle_timer = clock.callLater(wait, self._check_idle)

    def _check_idle(self):
        clock = self.factory.clock
        idle_for = clock.seconds() - self._last_spoke
        limit = self.factory.limits.idle_timeout_seconds
        if idle_for >= limit:
            self._idle_timer = None
            self.disconnect("idle for %d seconds" % (idle_for,))
        else:
            self._idle_timer = clock.callLater(limit - idle_for, self._check_idle)

    # Joining and leaving, for every listener (slots the connection keeps:
    # factory, session, _identity, peer, _input, _output, _joined,
    # _leave_reason, _record)

    def _record_session(self):
        """
        Record the start of this session in the login history.  A locked or
        full database must not stop the chat: the session then goes
        unrecorded, and the user stays.
        """
        factory = self.factory
        nickname = self.nickname
        record = self._record = factory.accounts.store.session_started(
            nickname, self.peer, factory.clock.seconds()
        )
        record.addCallbacks(self._session_recorded, self._session_not_recorded, errbackArgs=(nickname,))

    def _session_recorded(self, session_id):
        # Keep the id, not the Deferred: an idle connection should cost little.
        self._record = session_id

    def _session_not_recorded(self, failure, nickname):
        self._record = None
        _log_write_failure(failure, "the start of a session", nickname)

    def _end_session_record(self, store, now, reason, nickname):
        session = self._record
        if isinstance(session, defer.Deferred):
            # By the time this runs the start is recorded (an id) or given up
            # (None): never a Deferred again, so this cannot come back here.
            session.addCallback(lambda _: self._end_session_record(store, now, reason, nickname))
        elif session is not None:
            store.session_ended(session, now, reason).addErrback(
                _log_write_failure, "the end of a session", nickname
            )

    def _greet(self, room):
        """
        The welcome of a listener that speaks in server notices (the line
        and the browser): who else is here, the MOTD, and an admin's hints.
        """
        factory = self.factory
        self.notice(
            "Welcome, %s! %s Type /help for commands, /quit to leave."
            % (self.nickname, who_else(room, self))
        )
        for line in factory.motd_lines:
            self.notice(line)
        if self.is_admin:
            self.notice("You are an admin: /help lists your commands.")
            waiting = factory.chat.waiting()
            if waiting:
                self.notice("%d waiting to join: /pending" % (len(waiting),))

    def _tell_what_waited(self, after_history=None):
        """
        After the listener's welcome: the history of the rooms (which may
        take a registered user back into rooms; then C{after_history()}, if
        given), then the private messages that waited for this account, in
        that order however many trips to the database each takes; the next
        lines wait for them.
        """
        chat = self.factory.chat
        told = defer.succeed(None) if chat.replay is None else chat.replay.welcome(self)
        if after_history is not None:
            told.addCallback(lambda _: after_history())
        told.addCallback(lambda _: self.factory.commands.memos.deliver(self))
        self.hold_input_until(told)

    def _left(self, reason):
        """
        The end of every listener's C{connectionLost}, once its own timers
        are stopped: nothing more is read or written, the chat is told, and
        the session's record is ended.
        """
        self._idle_timer = cancel(self._idle_timer)
        if self._input is not None:
            # First: the end of this client's congestion may release senders,
            # this one among them, and nothing of it must be read any more.
            self._input.connection_lost()
        self._output.connection_lost()
        if self._leave_reason is None:
            self._leave_reason = (
                "connection closed" if reason.check(error.ConnectionDone) else "connection lost"
            )
        factory = self.factory
        factory.chat.leave(self, self._leave_reason)
        if self._joined:
            nickname = self.nickname
            self.log.info(
                "{nickname} left ({reason})",
                nickname=nickname,
                reason=text.reason_for_log(self._leave_reason),
            )
            self._end_session_record(
                factory.accounts.store, factory.clock.seconds(), self._leave_reason, nickname
            )
        factory.connection_closed(self, self._leave_reason)


_log = Logger(namespace="wazzap.listeners.session")


def _log_write_failure(failure, what, nickname):
    _log.error(
        "could not record {what} of {nickname}: {error}",
        what=what,
        nickname=nickname,
        error=failure.getErrorMessage(),
    )




def address_of(address):
    """
    The host part of a peer's address, in standard form: the key for
    per-address limits and bans.
    """
    return addresses.normalise(getattr(address, "host", None) or "local")
