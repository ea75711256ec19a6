"""
Talking: public and private messages, actions, colours, nicknames, leaving.
"""

from twisted.logger import Logger

from wazzap import text
from wazzap.commands.base import may_speak, split_word
from wazzap.commands.registry import command, follow

log = Logger()

#: What someone is told when a line or message would show nothing on screen.
NOTHING_VISIBLE = "that shows nothing (only spaces or invisible characters): not sent"


class ChatCommands:
    """
    The commands every joined user has from the start, and public and
    private text.
    """

    def __init__(self, chat, accounts, bans, memos):
        """
        @param memos: the L{wazzap.persist.memos.OfflineMessages} that keep
            private messages for registered users who are offline.
        """
        self.chat = chat
        self.accounts = accounts
        self.bans = bans
        self.memos = memos

    def say(self, user, message):
        """
        Send C{message} to the room, unless C{user} is muted.
        """
        message, style = self._styled(user, message)
        if message is not None and self._may_speak(user):
            room = self.chat.room_of(user)
            if self._may_post(user, room):
                room.say(user, message, style)

    def private(self, user, nickname, message):
        """
        Send C{message} to C{nickname} alone, or tell C{user} why not; to a
        nickname nobody online has, it waits if it is registered
        (L{wazzap.persist.memos}), and C{user}'s next lines wait until they
        know whether it does.
        """
        message, style = self._styled(user, message)
        if message is None or not self._may_speak(user):
            return
        if self.chat.find(nickname) is None:
            follow(user, "msg", self.memos.leave(user, nickname, message, style))
            return
        problem = self.chat.send_private(user, nickname, message, style)
        if problem is not None:
            user.notice(problem)

    def _may_speak(self, user):
        return may_speak(self.bans.mutes, user)

    def _may_post(self, user, room):
        """
        Whether C{user} may post in C{room}, after telling them why not.
        """
        if room.locked and not user.is_admin:
            user.notice("%s is locked: only admins post there" % (room.name,))
            return False
        return True

    def _styled(self, user, message):
        """
        Read a leading C{/color NAME} off a message; return the text and its
        style, or C{(None, None)} after telling the user what was wrong
        (a message that shows nothing is not sent).
        """
        style = ""
        if message.lower().startswith("/color "):
            name, message = split_word(message[len("/color ") :])
            style = name.lower() if name.lower() in text.NAMED_COLORS else None
            if style is None or not message:
                user.notice(
                    "usage: /color NAME TEXT, where NAME is one of: %s"
                    % (", ".join(text.NAMED_COLORS),)
                )
                return None, None
        if message and not text.is_visible(message):
            user.notice(NOTHING_VISIBLE)
            return None, None
        return message, style

    @command()
    def cmd_nick(self, user, args):
        """
        /nick NEW -- change your nickname; everyone is told.

        A nickname is 1 to 16 characters: letters, digits, _ or -.  A nickname
        registered by someone else cannot be taken; yours stays registered
        under its old name.
        """
        nickname = args.strip()
        if not nickname:
            user.notice("usage: /nick NEW")
            return None
        if nickname == user.nickname:
            user.notice("you are already %s" % (nickname,))
            return None
        problem = self.chat.nickname_problem(nickname, user)
        if problem is not None:
            user.notice("cannot change nickname: " + problem)
            return None
        if not user.account and self.bans.mutes.muted_for(user):
            # The mute is on this nickname: a new one would shed it.
            user.notice("cannot change nickname while you are muted")
            return None
        return self.bans.find(nickname, None).addCallback(self._ban_checked, user, nickname)

    def _ban_checked(self, ban, user, nickname):
        if ban is not None:
            user.notice("cannot change nickname: %s is banned" % (nickname,))
            return None
        return self.accounts.lookup(nickname).addCallback(self._rename, user, nickname)

    def _rename(self, account, user, nickname):
        if user.room is None:
            return None  # gone while the database answered
        if account is not None and account.nickname.lower() != (user.account or "").lower():
            user.notice("cannot change nickname: %s is registered to someone else" % (nickname,))
            return None
        old_nickname = user.nickname
        return self.chat.rename(user, nickname).addCallback(
            self._renamed, user, old_nickname, nickname
        )

    def _renamed(self, problem, user, old_nickname, nickname):
        if problem is not None:
            user.notice("cannot change nickname: " + problem)
            return None
        log.info("{old} is now {new}", old=old_nickname, new=nickname)
        return None

    @command()
    def cmd_me(self, user, args):
        """
        /me ACTION -- show an action: alice typing /me waves shows "* alice waves".
        """
        if not args.strip():
            user.notice("usage: /me ACTION")
        elif not text.is_visible(args):
            user.notice(NOTHING_VISIBLE)
        elif self._may_speak(user):
            room = self.chat.room_of(user)
            if self._may_post(user, room):
                room.emote(user, args.strip())

    @command(aliases=("private",))
    def cmd_msg(self, user, args):
        """
        /msg NICK TEXT -- a private message only NICK sees (also /private, @NICK TEXT).

        To a registered nickname that is offline, it waits until they next
        log in: /memos lists yours waiting, /unsend N takes one back.
        """
        nickname, message = split_word(args)
        if not nickname:
            user.notice("usage: /msg NICK TEXT")
            return
        self.private(user, nickname, message)

    @command()
    def cmd_color(self, user, args):
        """
        /color NAME TEXT -- send TEXT in a colour: red, green, yellow, blue, magenta, cyan or white.

        Works in private messages too: @bob /color red hi, or
        /private bob /color red hi.
        """
        self.say(user, "/color " + args)

    @command()
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

    @command(aliases=("leave", "exit"))
    def cmd_quit(self, user, args):
        """
        /quit [REASON] -- leave the chat (also /leave, /exit).
        """
        # The reason is shown to the room: a muted user leaves without one.
        muted = self.bans.mutes.muted_for(user)
        user.quit(None if muted else text.short_reason(args))
