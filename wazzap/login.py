"""
The steps from connecting to joining: the greeting, the nickname, the
password of a registered nickname (whose owner takes it over from a session
still holding it), the wait for an admin's approval, and the session record
in the login history.

Each step is a line handler of L{wazzap.protocol.ChatProtocol}; a step that
needs the database holds the connection's input until the answer comes
(C{_await}), so lines typed meanwhile wait their turn.
"""

import re
from itertools import islice

from twisted.internet import defer

from wazzap import text
from wazzap.accounts import Refused, ReservedNickname
from wazzap.bans import format_time
from wazzap.flow import cancel
from wazzap.passwords import MAX_ATTEMPTS_PER_CONNECTION

# wazzap.client recognises "Choose a nickname", "[Server] Welcome, NICK!" and any
# server line ending in "password:" (case-insensitive): keep those wordings.
NICKNAME_PROMPT = "Choose a nickname (1 to 16 letters, digits, _ or -):"

#: Names listed in a newcomer's welcome; /who lists everyone.
WELCOME_NAMES = 20

#: People from one address who may wait for approval (--approve-joins) at
#: once: each holds a nickname until an admin decides or the wait times out.
MAX_WAITERS_PER_ADDRESS = 3
#: What a waiting newcomer may type to give up waiting.
WAITING_QUIT_COMMANDS = ("/quit", "/leave", "/exit")

#: Why a session ends when its nickname is logged in to elsewhere.
TAKEN_OVER = "logged in from elsewhere"

#: What a web browser or TLS client is told instead of being taken as a nickname.
NOT_CHAT = (
    "This is a wazzap chat server, not a web or TLS server: "
    "connect with nc, telnet or wazzap-client.\r\n"
)
HTTP_REQUEST = re.compile(r"[A-Z]{3,7} \S+ HTTP/\d")


class LoginSteps:
    """
    The login line handlers, mixed into the protocol.
    """

    def _greet(self, ban):
        if ban is not None:
            self._close_with("[Server] This address is banned%s.\r\n" % (_ban_details(ban),))
            return
        self.notice("Welcome to wazzap, the terminal chat.")
        self.notice(NICKNAME_PROMPT)

    def _choose_nickname(self, line):
        if HTTP_REQUEST.match(line):
            self._close_with(
                "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n" + NOT_CHAT
            )
            return
        nickname = line.strip()
        # Whether the nickname is online is asked after the database: the
        # owner of a registered nickname may take it over from a stale session.
        problem = text.nickname_problem(nickname)
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
        elif isinstance(account, ReservedNickname):
            self._ask_nickname_again("Sorry, %s is reserved for an admin." % (nickname,))
        elif account is not None:
            refusal = self.factory.accounts.throttle.refusal(nickname, self.peer)
            if refusal is not None:
                self._ask_nickname_again(_sentence(refusal))
                return
            self.ask(
                "%s is registered. Password:" % (account.nickname,),
                lambda password: self._check_password(nickname, password),
                secret=True,
            )
        else:
            self._admit_or_wait(nickname)

    def _ask_nickname_again(self, why):
        self.notice(why)
        self.notice(NICKNAME_PROMPT)

    def _check_password(self, nickname, password):
        check = self.factory.accounts.log_in(nickname, password, self.peer)
        self._await(check.addErrback(_refusal), self._password_checked, nickname)

    def _password_checked(self, account, nickname):
        if isinstance(account, Refused):
            self._ask_nickname_again(_sentence(str(account)))
            return
        if account is None:
            self._failed_logins += 1
            self.log.info(
                "wrong password for {nickname} from {peer}", nickname=nickname, peer=self.peer
            )
            if self._failed_logins >= MAX_ATTEMPTS_PER_CONNECTION:
                self.disconnect("too many wrong passwords", "wrong nickname or password: goodbye")
            else:
                self._ask_nickname_again("Wrong nickname or password.")
            return
        self._take_over(nickname)
        self._admit_or_wait(nickname, account)

    def _take_over(self, nickname):
        """
        End the session that holds C{nickname}, whose password was just
        given here: its owner is back, the old connection is likely stale.
        """
        chat = self.factory.chat
        stale = chat.find(nickname) or chat.stop_waiting(nickname)
        if stale is None or stale is self:
            return
        self.log.info(
            "{nickname} logged in from {peer}; closing the session from {old}",
            nickname=stale.nickname,
            peer=self.peer,
            old=stale.peer,
        )
        stale.disconnect(TAKEN_OVER, "%s %s" % (stale.nickname, TAKEN_OVER))
        # Free the nickname now: the old connection reports its loss later.
        chat.leave(stale, TAKEN_OVER)

    def _admit_or_wait(self, nickname, account=None):
        factory = self.factory
        problem = factory.chat.nickname_problem(nickname)
        if problem is not None:
            self._ask_nickname_again("Sorry, " + problem + ".")
            return
        self.nickname = nickname
        if account is not None:
            self.account = account.nickname
            self.is_admin = account.is_admin
        if not factory.approve_joins or self.is_admin:
            self.admit()
            return
        if factory.chat.waiting_from(self.peer) >= MAX_WAITERS_PER_ADDRESS:
            self.disconnect(
                "too many waiting from one address",
                "%d people from your address already wait for approval: try again later"
                % (MAX_WAITERS_PER_ADDRESS,),
            )
            return
        cancel(self._login_timer)
        self._state = LoginSteps._wait_for_approval
        self.log.info("{nickname} from {peer} waits for approval", nickname=nickname, peer=self.peer)
        admins = factory.chat.wait_for_approval(self)
        self.notice("This room needs an admin's approval to join; please wait.")
        if not admins:
            self.notice(
                "No admin is online right now: you will be let in or turned away "
                "when one decides."
            )
        self.notice("Type /quit to stop waiting.")
        self._login_timer = factory.clock.callLater(
            factory.limits.approval_timeout_seconds, self._approval_timed_out
        )

    def _wait_for_approval(self, line):
        if line.split()[0].lower() in WAITING_QUIT_COMMANDS:
            self.quit()
        else:
            self.notice("still waiting for an admin's approval: /quit to stop waiting")

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
        self._state = type(self)._chat
        self._session = factory.accounts.store.session_started(nickname, self.peer, clock.seconds())
        self._session.addCallbacks(self._session_started, self._session_not_recorded)
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

    def _login_timed_out(self):
        self.disconnect("login timeout", "no nickname chosen in time: goodbye")


def _refusal(failure):
    """
    A L{Refused} as a result, for the step that tells the user.
    """
    failure.trap(Refused)
    return failure.value


def _sentence(phrase):
    return phrase[0].upper() + phrase[1:] + "."


def _ban_details(ban):
    """
    How long a ban lasts and why, to tell the person it keeps out.
    """
    until = ""
    if ban.until:
        until = " until %s" % (format_time(ban.until),)
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
