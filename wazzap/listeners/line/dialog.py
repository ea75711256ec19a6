"""
The line listener's login dialog: the greeting, the nickname prompt, the
password of a registered nickname, the wait for an admin's approval, and
the login timeout, driving L{wazzap.core.admission} and telling the user
its outcomes as server notices.

The dialog speaks to its connection (C{user}) through a few names only:
C{peer}, C{notice}, C{ask}, C{hold_input_until}, C{disconnect}, C{quit},
C{refuse} (write a text as it is and close: for what is not a chat
client), C{clear_text} (what to say of passwords without TLS, see
L{wazzap.net.tls.ClearText}), C{nickname} (read) and C{identify} (which
sets the nickname, account and admin flag admission decided), and C{admit}
once the user is let in.  The connection hands it the lines typed
while logging in (L{line_received}), each read that starts a line
(L{refuses_bytes}), and tells it when the connection is lost
(L{connection_lost}); C{admit} ends the dialog with L{end}.  The welcome
that follows joining names a few of those already here (L{who_else}).
"""

import re

from twisted.logger import Logger

from wazzap.core.admission import Admitted, NeedsPassword, Waiting, WrongPassword
from wazzap.core.rooms import others_in
from wazzap.flow import cancel
from wazzap.net.tls import TLS_HANDSHAKE
from wazzap.persist.passwords import MAX_ATTEMPTS_PER_CONNECTION
from wazzap.failures import log_failure

# wazzap.client recognises "Choose a nickname", "[Server] Welcome, NICK!" and a
# server line ending in "password:" (case-insensitive) with no colon before that:
# keep those wordings.
NICKNAME_PROMPT = "Choose a nickname (1 to 16 letters, digits, _ or -):"

#: Names listed in a newcomer's welcome; /who lists everyone.
WELCOME_NAMES = 20

#: What a waiting newcomer may type to give up waiting.
WAITING_QUIT_COMMANDS = ("/quit", "/leave", "/exit")

#: What a web browser or TLS client is told instead of being taken as a nickname.
NOT_CHAT = (
    "This is a wazzap chat server, not a web or TLS server: "
    "connect with nc, telnet or wazzap-client.\r\n"
)
HTTP_REQUEST = re.compile(r"[A-Z]{3,7} \S+ HTTP/\d")


class LoginDialog:
    """
    One connection's way from connecting to joining, or to being turned away.
    """

    log = Logger()

    __slots__ = (
        "_user",
        "_admission",
        "_clock",
        "_limits",
        "_timer",
        "_failed_logins",
        "_waiting",
        "_gone",
    )

    def __init__(self, user, admission, clock, limits):
        self._user = user
        self._admission = admission
        self._clock = clock
        self._limits = limits
        self._timer = None
        self._failed_logins = 0
        self._waiting = False
        self._gone = False

    def start(self):
        """
        Start the login timeout, and greet the user unless the address is banned.
        """
        self._timer = self._clock.callLater(
            self._limits.login_timeout_seconds, self._login_timed_out
        )
        self._when(self._admission.check_address(self._user.peer), self._greet)

    def end(self):
        """
        The user is let in (by admission, or by an admin): no timer runs any more.
        """
        self._timer = cancel(self._timer)

    def connection_lost(self):
        """
        The connection is gone: answers that arrive now change nothing.
        """
        self._gone = True
        self._timer = cancel(self._timer)

    def refuses_bytes(self, data):
        """
        Refuse a TLS client, whose first bytes are a handshake, not a
        nickname; return whether it was refused.
        """
        if self._waiting or not data.startswith(TLS_HANDSHAKE):
            return False
        clear_text = self._user.clear_text
        answer = clear_text.not_tls_answer() if clear_text is not None else None
        self._user.refuse(answer or NOT_CHAT)
        return True

    def line_received(self, line):
        """
        Handle a sanitised, non-blank line typed while logging in.
        """
        if self._waiting:
            self._while_waiting(line)
        else:
            self._choose_nickname(line)

    def _when(self, deferred, then):
        """
        Hold the user's input until C{deferred} fires, then call
        C{then(result)} if the connection is still open.  A failure is
        logged and ends the connection with an apology: the user never sees
        a traceback.
        """
        deferred.addCallback(self._unless_gone, then).addErrback(self._broke)
        self._user.hold_input_until(deferred)

    def _unless_gone(self, result, then):
        if not self._gone:
            then(result)

    def _broke(self, failure):
        user = self._user
        log_failure(failure, self.log, "serving " + (user.nickname or user.peer or "a connection"))
        if not self._gone:
            user.disconnect("server error", "sorry, something went wrong on the server")

    def _greet(self, refusal):
        if refusal is not None:
            self._user.refuse("[Server] %s\r\n" % (refusal.why,))
            return
        self._user.notice("Welcome to wazzap, the terminal chat.")
        self._user.notice(NICKNAME_PROMPT)

    def _choose_nickname(self, line):
        if HTTP_REQUEST.match(line):
            self._user.refuse(
                "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n" + NOT_CHAT
            )
            return
        nickname = line.strip()
        self._when(self._admission.choose_nickname(nickname, self._user.peer, self._user), self._decided)

    def _check_password(self, nickname, password):
        checked = self._admission.check_password(
            nickname, password, self._user.peer, self._user
        )
        self._when(checked, self._decided)

    def _decided(self, outcome):
        """
        Tell the user what admission decided, and take the next step.
        """
        user = self._user
        if isinstance(outcome, Admitted):
            user.identify(
                nickname=outcome.nickname, account=outcome.account, is_admin=outcome.is_admin
            )
            user.admit()
        elif isinstance(outcome, NeedsPassword):
            nickname = outcome.nickname
            registered = "%s is registered: " % (outcome.account.nickname,)
            if user.clear_text is not None and not user.clear_text.allows_password(
                user, registered
            ):
                user.notice(NICKNAME_PROMPT)
                return
            user.ask(
                "%s is registered. Password:" % (outcome.account.nickname,),
                lambda password: self._check_password(nickname, password),
                secret=True,
            )
        elif isinstance(outcome, WrongPassword):
            self._failed_logins += 1
            if self._failed_logins >= MAX_ATTEMPTS_PER_CONNECTION:
                user.disconnect("too many wrong passwords", "wrong nickname or password: goodbye")
            else:
                self._ask_nickname_again("Wrong nickname or password.")
        elif isinstance(outcome, Waiting):
            user.identify(nickname=outcome.nickname, account=outcome.account)
            self._wait_for_approval()
        elif outcome.close:
            user.disconnect(outcome.reason, outcome.why)
        else:
            self._ask_nickname_again(outcome.why)

    def _ask_nickname_again(self, why):
        self._user.notice(why)
        self._user.notice(NICKNAME_PROMPT)

    def _wait_for_approval(self):
        user = self._user
        cancel(self._timer)
        self._waiting = True
        admins = self._admission.wait_for_approval(user)
        user.notice("This chat needs an admin's approval to join; please wait.")
        if not admins:
            user.notice(
                "No admin is online right now: you will be let in or turned away "
                "when one decides."
            )
        user.notice("Type /quit to stop waiting.")
        self._timer = self._clock.callLater(
            self._limits.approval_timeout_seconds, self._approval_timed_out
        )

    def _while_waiting(self, line):
        if line.split()[0].lower() in WAITING_QUIT_COMMANDS:
            self._user.quit()
        else:
            self._user.notice("still waiting for an admin's approval: /quit to stop waiting")

    def _approval_timed_out(self):
        self._timer = None
        self._admission.stop_waiting(self._user.nickname)
        self._user.disconnect("no approval in time", "no admin approved you in time: goodbye")

    def _login_timed_out(self):
        self._timer = None
        self._user.disconnect("login timeout", "no nickname chosen in time: goodbye")


def who_else(room, member):
    """
    Who else is in C{room}, for a welcome.
    """
    return others_in(room, member, WELCOME_NAMES, "/who lists everyone")
