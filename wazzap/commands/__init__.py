"""
What a joined user's input does: commands, private messages and public text.

A listener parses its lines into an input value (L{wazzap.commands.inputs};
the line listener's grammar is L{wazzap.listeners.line.grammar}) and hands it
to L{Commands.dispatch}.  The commands are records in a
L{wazzap.commands.registry.Registry}, registered by one group per concern
(L{wazzap.commands.chat}, L{accounts <wazzap.commands.accounts>}, L{privacy
<wazzap.commands.privacy>}, L{rooms <wazzap.commands.rooms>}, L{moderation
<wazzap.commands.moderation>}, L{memos <wazzap.commands.memos>}, and C{/help}
here).

Handlers reach the user only through the session API (C{nickname}, C{account},
C{color}, C{is_admin}, C{peer}, C{room}, C{notice}, C{ask}, C{set_colors},
C{quit}, C{hold_input_until}, C{exact_line}) and everyone else through
L{wazzap.chat}.  A handler may return a Deferred: the user's next lines wait
until it fires, and a failure in it is logged and the user told, never shown
as a traceback.
"""

from twisted.internet import defer

from wazzap.commands.accounts import AccountCommands
from wazzap.commands.chat import ChatCommands
from wazzap.commands.history import HistoryCommands
from wazzap.commands.inputs import Invocation, PrivateMessage, PublicMessage
from wazzap.commands.memos import MemoCommands
from wazzap.commands.moderation import ModerationCommands
from wazzap.commands.privacy import PrivacyCommands
from wazzap.commands.registry import Registry, command, follow, run_held
from wazzap.commands.rooms import RoomCommands
from wazzap.persist.memos import OfflineMessages


class Commands:
    """
    Every command of a joined user, and the dispatch of their input.
    """

    def __init__(self, chat, accounts, bans, clock):
        self.accounts = accounts
        self.registry = Registry()
        #: Messages for registered users who are offline, handed over at login.
        self.memos = OfflineMessages(chat, accounts.store, clock)
        self.talk = ChatCommands(chat, accounts, bans, self.memos)
        for group in (
            HelpCommands(self.registry),
            self.talk,
            AccountCommands(chat, accounts),
            PrivacyCommands(chat, bans),
            RoomCommands(chat, bans),
            ModerationCommands(chat, bans, clock),
            HistoryCommands(chat, self.run),
            MemoCommands(self.memos, clock),
        ):
            self.registry.add_group(group)

    def dispatch(self, user, parsed):
        """
        Act on C{parsed}, one input value from C{user}.
        """
        # Public text first: it is most lines.
        if isinstance(parsed, PublicMessage):
            self.talk.say(user, parsed.text)
        elif isinstance(parsed, Invocation):
            self.run(user, parsed.name, parsed.args)
        elif isinstance(parsed, PrivateMessage):
            self.talk.private(user, parsed.nickname, parsed.text)
        else:
            raise TypeError("not an input value: %r" % (parsed,))

    def run(self, user, name, args):
        """
        Run the command called C{name} (or an alias of it) with C{args}.
        """
        record = self.registry.find(name)
        if record is None:
            user.notice("unknown command /%s: type /help for the list" % (name,))
        elif not record.admin_only:
            run_held(user, name, lambda: record.handler(user, args))
        elif not user.is_admin:
            user.notice("permission denied: /%s is for admins" % (name,))
        else:
            # Rights revoked with the admin command while this admin is online
            # end at their next admin command.
            account = self.accounts.lookup(user.account) if user.account else defer.succeed(None)
            follow(user, name, account.addCallback(_as_admin, record, user, name, args))


def _as_admin(account, record, user, name, args):
    if account is None or not account.is_admin:
        user.identify(is_admin=False)
        user.notice("your admin rights were revoked: /%s is for admins" % (name,))
        return None
    return record.handler(user, args)


class HelpCommands:
    """
    C{/help}, over the commands of a registry.
    """

    def __init__(self, registry):
        self.registry = registry

    @command()
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
        for record in self.registry.permitted(user.is_admin):
            user.notice("  " + record.summary)
        user.notice("  @NICK TEXT -- a private message to NICK")
        user.notice("Anything else goes to everyone in the room.")

    def _explain(self, user, name):
        record = self.registry.find(name)
        if record is None:
            user.notice("no such command /%s: type /help for the list" % (name,))
            return
        for line in record.help_lines():
            user.notice(line)
