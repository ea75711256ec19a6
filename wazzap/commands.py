"""
What each chat line does once its sender has joined: slash commands, C{@nick}
private messages, and plain public messages.

Commands are looked up by name as C{cmd_<name>} methods; the first line of a
method's docstring is its entry in C{/help}, the rest its C{/help NAME} text, so
a command and its documentation cannot drift apart.  Handlers speak to the user
only through the session's small API (C{nickname}, C{color}, C{notice},
C{deliver}, C{set_colors}, C{quit}) and to everyone else through L{wazzap.chat}.
"""

import inspect

from wazzap import text

ALIASES = {
    "users": "who",
    "online": "who",
    "leave": "quit",
    "exit": "quit",
}


def _split_word(args):
    """
    Split C{"bob hello there"} into C{("bob", "hello there")}.
    """
    word, _, rest = args.strip().partition(" ")
    return word, rest.strip()


class Commands:
    """
    The commands of a joined user.
    """

    def __init__(self, chat):
        self.chat = chat

    def handle(self, user, line):
        """
        Act on one sanitised, non-blank line from C{user}.
        """
        if line.startswith("//"):
            self._say(user, line[1:])
        elif line.startswith("/"):
            name, args = _split_word(line[1:])
            self.run(user, name.lower(), args)
        elif line.startswith("@") and len(line) > 1:
            nickname, message = _split_word(line[1:])
            self._private(user, nickname, message)
        else:
            self._say(user, line)

    def run(self, user, name, args):
        """
        Run the command called C{name} (or an alias of it) with C{args}.
        """
        handler = self._handler(name)
        if handler is None:
            user.notice("unknown command /%s: type /help for the list" % (name,))
        else:
            handler(user, args)

    def _handler(self, name):
        return getattr(self, "cmd_" + ALIASES.get(name, name), None)

    def _names(self):
        return sorted(name[4:] for name in dir(self) if name.startswith("cmd_"))

    def _say(self, user, message):
        message, style = self._styled(user, message)
        if message is not None:
            self.chat.room_of(user).say(user, message, style)

    def _private(self, user, nickname, message):
        message, style = self._styled(user, message)
        if message is None:
            return
        problem = self.chat.send_private(user, nickname, message, style)
        if problem is not None:
            user.notice(problem)

    def _styled(self, user, message):
        """
        Read a leading C{/color NAME} off a message; return the text and its
        style, or C{(None, None)} after telling the user what was wrong.
        """
        if not message.lower().startswith("/color"):
            return message, ""
        name, rest = _split_word(message[len("/color") :])
        style = text.NAMED_COLORS.get(name.lower())
        if style is None or not rest:
            user.notice(
                "usage: /color NAME TEXT, where NAME is one of: %s"
                % (", ".join(text.NAMED_COLORS),)
            )
            return None, None
        return rest, style

    def cmd_help(self, user, args):
        """
        /help [COMMAND] -- list the commands, or explain one.

        Anything that is not a command is sent to the whole room; start it with
        // to send a line that begins with /.
        """
        if args:
            name = args.strip().lstrip("/").lower()
            handler = self._handler(name)
            if handler is None:
                user.notice("no such command /%s: type /help for the list" % (name,))
                return
            aliases = sorted(alias for alias, target in ALIASES.items() if target == name)
            for line in inspect.getdoc(handler).splitlines():
                user.notice(line)
            if aliases:
                user.notice("also: " + ", ".join("/" + alias for alias in aliases))
            return
        user.notice("Commands (type /help COMMAND for more):")
        for name in self._names():
            user.notice("  " + inspect.getdoc(self._handler(name)).splitlines()[0])
        user.notice("  @NICK TEXT -- a private message to NICK")
        user.notice("Anything else goes to everyone in the room.")

    def cmd_who(self, user, args):
        """
        /who -- list who is online (also /users, /online).
        """
        nicknames = self.chat.room_of(user).nicknames()
        user.notice("%d online: %s" % (len(nicknames), ", ".join(nicknames)))

    def cmd_nick(self, user, args):
        """
        /nick NEW -- change your nickname; everyone is told.

        A nickname is 1 to 16 characters: letters, digits, _ or -.
        """
        nickname = args.strip()
        if not nickname:
            user.notice("usage: /nick NEW")
            return
        if nickname == user.nickname:
            user.notice("you are already %s" % (nickname,))
            return
        problem = self.chat.rename(user, nickname)
        if problem is not None:
            user.notice("cannot change nickname: " + problem)

    def cmd_me(self, user, args):
        """
        /me ACTION -- show an action: /me waves shows "* you waves".
        """
        if not args.strip():
            user.notice("usage: /me ACTION")
            return
        self.chat.room_of(user).emote(user, args.strip())

    def cmd_msg(self, user, args):
        """
        /msg NICK TEXT -- a private message only NICK sees (also @NICK TEXT).
        """
        nickname, message = _split_word(args)
        if not nickname:
            user.notice("usage: /msg NICK TEXT")
            return
        self._private(user, nickname, message)

    def cmd_private(self, user, args):
        """
        /private NICK TEXT -- the same as /msg.
        """
        self.cmd_msg(user, args)

    def cmd_color(self, user, args):
        """
        /color NAME TEXT -- send TEXT in a colour: red, green, yellow, blue, magenta, cyan or white.

        Works in private messages too: @bob /color red hi.
        """
        self._say(user, "/color " + args)

    def cmd_colors(self, user, args):
        """
        /colors off|on -- switch colours off (plain text) or back on for you.
        """
        setting = args.strip().lower()
        if setting not in ("on", "off"):
            user.notice("usage: /colors off|on")
            return
        user.set_colors(setting == "on")
        user.notice("colours are %s" % (setting,))

    def cmd_quit(self, user, args):
        """
        /quit [REASON] -- leave the chat (also /leave, /exit).
        """
        user.quit(args.strip() or None)
