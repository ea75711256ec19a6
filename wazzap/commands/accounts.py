"""
Registered nicknames: registering, changing and giving up a password, and the
login history behind C{/seen} and C{/history}.
"""

import time

from wazzap.commands.base import admin_only, format_duration, split_word
from wazzap.passwords import password_problem

HISTORY_LINES = 10


def format_time(seconds):
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


class AccountCommands:
    """
    Commands over the account database (L{wazzap.accounts.Accounts}).
    """

    def cmd_register(self, user, args):
        """
        /register [PASSWORD] -- reserve your nickname: from then on it needs PASSWORD.

        Without PASSWORD you are asked for it (the wazzap client hides it).
        A password is 8 to 128 characters.
        """
        if user.account is not None:
            user.notice("you are already logged in to the account %s" % (user.account,))
            return None
        if not args:
            user.ask("Choose a password for %s, then type it. Password:" % (user.nickname,),
                     lambda password: self.run(user, "register", password))
            return None
        problem = password_problem(args)
        if problem is not None:
            user.notice("cannot register: " + problem)
            return None
        nickname = user.nickname
        return self.accounts.register(nickname, args).addCallback(self._registered, user, nickname)

    def _registered(self, account, user, nickname):
        if account is None:
            user.notice("%s is already registered" % (nickname,))
            return
        user.account = account.nickname
        self.log.info("{nickname} registered", nickname=nickname)
        user.notice("registered: from now on %s needs this password" % (nickname,))
        if account.is_admin:
            user.is_admin = True
            user.notice("you are an admin: /help lists your commands")

    def cmd_password(self, user, args):
        """
        /password OLD NEW -- change the password of your account.
        """
        old, new = split_word(args)
        if user.account is None:
            user.notice("you have no account: /register first")
            return None
        if not old or not new:
            user.notice("usage: /password OLD NEW")
            return None
        problem = password_problem(new)
        if problem is not None:
            user.notice("cannot change password: " + problem)
            return None
        return self.accounts.change_password(user.account, old, new).addCallback(
            lambda changed: user.notice(
                "password changed" if changed else "wrong password: nothing changed"
            )
        )

    def cmd_unregister(self, user, args):
        """
        /unregister PASSWORD -- give up your account; the nickname is free again.
        """
        if user.account is None:
            user.notice("you have no account to give up")
            return None
        if not args:
            user.notice("usage: /unregister PASSWORD")
            return None
        return self.accounts.unregister(user.account, args).addCallback(self._unregistered, user)

    def _unregistered(self, removed, user):
        if not removed:
            user.notice("wrong password: the account stays")
            return
        self.log.info("{account} unregistered", account=user.account)
        user.notice("the account %s is gone" % (user.account,))
        user.account = None
        user.is_admin = False

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

    @admin_only
    def cmd_history(self, user, args):
        """
        /history NICK -- (admin) the recent sessions of NICK: when, from where, why they ended.
        """
        nickname = args.strip()
        if not nickname:
            user.notice("usage: /history NICK")
            return None
        return self.accounts.store.history(nickname, HISTORY_LINES).addCallback(
            self._history, user, nickname
        )

    def _history(self, sessions, user, nickname):
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
