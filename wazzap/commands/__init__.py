"""
What each chat line does once its sender has joined: slash commands, C{@nick}
private messages, and plain public messages.

Commands are looked up by name as C{cmd_<name>} methods, gathered from one
class per concern (L{wazzap.commands.chat}, L{accounts
<wazzap.commands.accounts>}, L{privacy <wazzap.commands.privacy>},
L{moderation <wazzap.commands.moderation>}); the first line of a method's
docstring is its entry in C{/help}, the rest its C{/help NAME} text, so a
command and its documentation cannot drift apart.

Handlers reach the user only through the session API (C{nickname}, C{color},
C{is_admin}, C{peer}, C{room}, C{notice}, C{deliver}, C{ask}, C{set_colors},
C{quit}, C{hold_input_until})
and everyone else through L{wazzap.chat}.  A handler may return a Deferred:
the user's next lines wait until it fires, and a failure in it is logged and
the user told, never shown as a traceback.
"""

import inspect

from twisted.internet import defer
from twisted.logger import Logger

from wazzap import text
from wazzap.commands.accounts import AccountCommands
from wazzap.commands.base import split_word
from wazzap.commands.chat import NOTHING_VISIBLE, ChatCommands
from wazzap.commands.moderation import ModerationCommands
from wazzap.commands.privacy import PrivacyCommands
from wazzap.store import log_failure

ALIASES = {
    "private": "msg",
    "users": "who",
    "online": "who",
    "leave": "quit",
    "exit": "quit",
}


class Commands(ChatCommands, AccountCommands, PrivacyCommands, ModerationCommands):
    """
    Every command of a joined user, and the dispatch of their lines.
    """

    log = Logger()

    def __init__(self, chat, accounts, bans, clock):
        self.chat = chat
        self.accounts = accounts
        self.bans = bans
        self.clock = clock

    def handle(self, user, line):
        """
        Act on one sanitised, non-blank line from C{user}.

        What the line starts with on screen decides: spaces or zero-width
        characters before a C{/} or C{@} do not turn a command (a password,
        say) into a public message.
        """
        shown = text.from_first_visible(line)
        if not shown:
            user.notice(NOTHING_VISIBLE)
        elif shown.startswith("//"):
            self.say(user, shown[1:])
        elif shown.startswith("/"):
            name, args = split_word(shown[1:])
            self.run(user, name.lower(), args)
        elif shown.startswith("@") and len(shown) > 1:
            nickname, message = split_word(shown[1:])
            self.private(user, nickname, message)
        else:
            self.say(user, line)

    def run(self, user, name, args):
        """
        Run the command called C{name} (or an alias of it) with C{args}.
        """
        handler = self._handler(name)
        if handler is None:
            user.notice("unknown command /%s: type /help for the list" % (name,))
            return
        if not getattr(handler, "admin_only", False):
            done = defer.maybeDeferred(handler, user, args)
        elif not user.is_admin:
            user.notice("permission denied: /%s is for admins" % (name,))
            return
        else:
            # Rights revoked with the admin command while this admin is online
            # end at their next admin command.
            account = self.accounts.lookup(user.account) if user.account else defer.succeed(None)
            done = account.addCallback(
                self._as_admin, handler, user, name, args
            )
        done.addErrback(self._failed, user, name)
        if not done.called:
            user.hold_input_until(done)

    def _as_admin(self, account, handler, user, name, args):
        if account is None or not account.is_admin:
            user.is_admin = False
            user.notice("your admin rights were revoked: /%s is for admins" % (name,))
            return None
        return handler(user, args)

    def _failed(self, failure, user, name):
        log_failure(failure, self.log, "/" + name)
        user.notice("/%s failed on the server; please try again" % (name,))

    def _handler(self, name):
        return getattr(self, "cmd_" + ALIASES.get(name, name), None)

    def cmd_help(self, user, args):
        """
        /help [COMMAND] -- list the commands, or explain one.

        Anything that is not a command is sent to the whole room; start it with
        // to send a line that begins with /.
        """
        if args:
            self._explain(user, args.strip().lstrip("/").lower())
            return
        user.notice("Commands (type /help COMMAND for more):")
        for name in sorted(name[4:] for name in dir(self) if name.startswith("cmd_")):
            handler = self._handler(name)
            if user.is_admin or not getattr(handler, "admin_only", False):
                user.notice("  " + inspect.getdoc(handler).splitlines()[0])
        user.notice("  @NICK TEXT -- a private message to NICK")
        user.notice("Anything else goes to everyone in the room.")

    def _explain(self, user, name):
        handler = self._handler(name)
        if handler is None:
            user.notice("no such command /%s: type /help for the list" % (name,))
            return
        for line in inspect.getdoc(handler).splitlines():
            user.notice(line)
