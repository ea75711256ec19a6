"""
Registered nicknames: registering, changing and giving up a password, and the
login history behind C{/seen} and C{/sessions}.
"""

import re
import time

from twisted.logger import Logger

from wazzap.core.records import Refused
from wazzap.commands.base import format_duration
from wazzap.commands.registry import command, run_held
from wazzap.persist.passwords import password_problem

log = Logger()

#: Sessions /sessions lists.
SESSION_LINES = 10

NOT_UTF8 = "that line was not valid UTF-8 text, so nothing was done"
_COMMAND_WORD = re.compile(r"\s*\S*")


def format_time(seconds):
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def typed_arguments(user):
    """
    What followed the command word on C{user}'s line exactly as typed (not
    sanitised), whitespace at either end removed; L{None} if the line was not
    valid UTF-8.  Passwords given on a command line are read from here, so
    what is hashed is what was typed.
    """
    line = user.exact_line
    if line is None:
        return None
    return line[_COMMAND_WORD.match(line).end() :].strip()


def _tell_refusal(failure, user, failing):
    """
    Tell C{user} why the server refused (L{Refused}), after C{failing}.
    """
    failure.trap(Refused)
    user.notice(failing + str(failure.value))


def _password_allowed(user, failing):
    """
    Whether C{user} may give a password on their connection: over one
    without TLS they are warned first, or refused (C{failing} begins that
    notice) where the server requires TLS for passwords.
    """
    clear_text = user.clear_text
    return clear_text is None or clear_text.allows_password(user, failing)


class AccountCommands:
    """
    Commands over the account database (L{wazzap.persist.accounts.Accounts}).

    Passwords asked for are secret prompts (L{ask} with C{secret}): the
    answer is the line as typed, and the prompts end in "password:", at
    which the wazzap client hides what is typed.  Over a connection
    without TLS the user's C{clear_text} (L{wazzap.net.tls.ClearText})
    warns before each, or refuses passwords.
    """

    def __init__(self, chat, accounts):
        self.chat = chat
        self.accounts = accounts

    @command()
    def cmd_register(self, user, args):
        """
        /register [PASSWORD] -- reserve your nickname: from then on it needs PASSWORD.

        Without PASSWORD you are asked for it twice (the wazzap client hides
        it). A password is 8 to 128 characters; one that starts or ends with
        a space must be given when asked.
        """
        if user.account is not None:
            user.notice("you are already logged in to the account %s" % (user.account,))
            return None
        failing = "cannot register: "
        if not _password_allowed(user, failing):
            return None
        if not args:
            self._ask_new_password(
                user,
                "register",
                "Choose a password for %s. Password:" % (user.nickname,),
                failing,
                lambda password: self._register(user, password),
            )
            return None
        password = typed_arguments(user)
        if password is None:
            user.notice(failing + NOT_UTF8)
            return None
        problem = password_problem(password)
        if problem is not None:
            user.notice(failing + problem)
            return None
        return self._register(user, password)

    def _register(self, user, password):
        nickname = user.nickname
        registered = self.accounts.register(nickname, password, user.peer)
        return registered.addCallback(self._registered, user, nickname).addErrback(
            _tell_refusal, user, "cannot register: "
        )

    def _registered(self, account, user, nickname):
        if account is None:
            user.notice("%s is already registered" % (nickname,))
            return
        user.identify(account=account.nickname)
        log.info("{nickname} registered", nickname=nickname)
        user.notice("registered: from now on %s needs this password" % (nickname,))

    @command()
    def cmd_password(self, user, args):
        """
        /password [OLD NEW] -- change the password of your account.

        Alone, it asks for the old password and then twice for the new one
        (the wazzap client hides them): that way a password may hold spaces,
        which OLD NEW on one line cannot.
        """
        if user.account is None:
            user.notice("you have no account: /register first")
            return None
        failing = "cannot change password: "
        if not _password_allowed(user, failing):
            return None
        if not args:
            user.ask(
                "Current password:",
                lambda old: self._ask_new_password(
                    user,
                    "password",
                    "New password:",
                    failing,
                    lambda new: self._change_password(user, old, new),
                ),
                secret=True,
            )
            return None
        typed = typed_arguments(user)
        if typed is None:
            user.notice(failing + NOT_UTF8)
            return None
        words = typed.split(" ")
        if len(words) < 2:
            user.notice("usage: /password OLD NEW, or /password alone to be asked for each")
            return None
        if len(words) > 2:
            user.notice(
                failing + "/password OLD NEW cannot take passwords with spaces: "
                "type /password alone to be asked for each"
            )
            return None
        old, new = words
        problem = password_problem(new)
        if problem is not None:
            user.notice(failing + problem)
            return None
        return self._change_password(user, old, new)

    def _change_password(self, user, old, new):
        changed = self.accounts.change_password(user.account, old, new, user.peer)
        return changed.addCallback(
            lambda changed: user.notice(
                "password changed" if changed else "wrong password: nothing changed"
            )
        ).addErrback(_tell_refusal, user, "cannot change password: ")

    @command()
    def cmd_unregister(self, user, args):
        """
        /unregister [PASSWORD] -- give up your account; the nickname is free again.

        Without PASSWORD you are asked for it (the wazzap client hides it).
        """
        if user.account is None:
            user.notice("you have no account to give up")
            return None
        if not _password_allowed(user, "cannot give up the account: "):
            return None
        if not args:
            user.ask(
                "To give up the account %s, type its password:" % (user.account,),
                lambda password: run_held(
                    user, "unregister", lambda: self._unregister(user, password)
                ),
                secret=True,
            )
            return None
        password = typed_arguments(user)
        if password is None:
            user.notice("cannot give up the account: " + NOT_UTF8)
            return None
        return self._unregister(user, password)

    def _unregister(self, user, password):
        removed = self.accounts.unregister(user.account, password, user.peer)
        return removed.addCallback(self._unregistered, user).addErrback(
            _tell_refusal, user, "cannot give up the account: "
        )

    def _unregistered(self, removed, user):
        if not removed:
            user.notice("wrong password: the account stays")
            return
        log.info("{account} unregistered", account=user.account)
        user.notice("the account %s is gone" % (user.account,))
        user.identify(account=None, is_admin=False)

    def _ask_new_password(self, user, name, prompt, failing, then):
        """
        Ask C{user} for a new password, then for it again; once both agree
        and it is acceptable, run C{then(password)}.  C{failing} begins the
        notice when they do not.
        """

        def first(password):
            problem = password_problem(password)
            if problem is not None:
                user.notice(failing + problem)
                return
            user.ask("Repeat the password:", lambda again: second(password, again), secret=True)

        def second(password, again):
            if again != password:
                user.notice(failing + "the two passwords differ")
                return
            run_held(user, name, lambda: then(password))

        user.ask(prompt, first, secret=True)

    @command()
    def cmd_seen(self, user, args):
        """
        /seen NICK -- when NICK was last online.
        """
        nickname = args.strip()
        if not nickname:
            user.notice("usage: /seen NICK")
            return None
        online = self.chat.find(nickname)
        if online is not None:
            user.notice("%s is online now" % (online.nickname,))
            return None
        return self.accounts.store.last_seen(nickname).addCallback(self._seen, user, nickname)

    def _seen(self, session, user, nickname):
        if session is None:
            user.notice("%s has never been here" % (nickname,))
            return
        ended = session.login_at if session.logout_at is None else session.logout_at
        user.notice(
            "%s was last online %s, for %s (%s)"
            % (
                session.nickname,
                format_time(ended),
                format_duration(ended - session.login_at),
                session.reason or "left",
            )
        )

    @command(admin_only=True)
    def cmd_sessions(self, user, args):
        """
        /sessions NICK -- (admin) the recent sessions of NICK: when, from where, why they ended.

        /history NICK does the same.
        """
        nickname = args.strip()
        if not nickname:
            user.notice("usage: /sessions NICK")
            return None
        return self.accounts.store.history(nickname, SESSION_LINES).addCallback(
            self._sessions, user, nickname
        )

    def _sessions(self, sessions, user, nickname):
        if not sessions:
            user.notice("no sessions of %s" % (nickname,))
            return
        user.notice("last %d sessions of %s:" % (len(sessions), nickname))
        for session in sessions:
            ended = (
                "until %s (%s)" % (format_time(session.logout_at), session.reason or "left")
                if session.logout_at is not None
                else "online now"
            )
            user.notice(
                "  %s from %s, %s" % (format_time(session.login_at), session.address, ended)
            )
