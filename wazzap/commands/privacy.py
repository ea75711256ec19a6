"""
Private chats by consent: asking, accepting, rejecting and ending them.

The state is L{wazzap.consent.PrivateChats}; these commands check names and
tell both sides what happened.
"""

from wazzap.commands.base import find_member, format_duration, may_speak, split_word
from wazzap.commands.registry import command
from wazzap.consent import MAX_REQUESTS_WAITING


class PrivacyCommands:
    """
    The commands of C{/consent} and private chat requests.
    """

    def __init__(self, chat, bans):
        self.chat = chat
        self.bans = bans

    @command()
    def cmd_consent(self, user, args):
        """
        /consent on|off -- on: private messages reach you only in a private chat you accepted.
        """
        setting = args.strip().lower()
        if setting not in ("on", "off"):
            state = "on" if self.chat.private_chats.requires_consent(user) else "off"
            user.notice("usage: /consent on|off (it is %s)" % (state,))
            return
        self.chat.private_chats.set_requires_consent(user, setting == "on")
        user.notice(
            "private messages now need a private chat: others /request one"
            if setting == "on"
            else "anyone can send you private messages again"
        )

    def _other(self, user, args, usage):
        """
        The member named in C{args}, or L{None} after telling C{user} why not.
        """
        nickname, _ = split_word(args)
        other = find_member(self.chat, user, nickname, usage)
        if other is user:
            user.notice("that is you: a private chat needs someone else")
            return None
        return other

    @command()
    def cmd_request(self, user, args):
        """
        /request NICK -- ask NICK for a private chat.
        """
        other = self._other(user, args, "/request NICK")
        if other is None or not may_speak(self.bans.mutes, user):
            return
        chats = self.chat.private_chats
        if chats.is_open(user, other):
            user.notice("you already have a private chat with %s" % (other.nickname,))
        elif chats.is_requested(user, other):
            user.notice("you already asked %s; waiting for an answer" % (other.nickname,))
        elif chats.is_requested(other, user):
            user.notice("%s already asked you: /accept %s" % (other.nickname, other.nickname))
        elif chats.paused_for(user, other):
            user.notice(
                "%s turned down your request: you may ask again in %s"
                % (other.nickname, format_duration(chats.paused_for(user, other)))
            )
        elif chats.requests_waiting(user) >= MAX_REQUESTS_WAITING:
            user.notice(
                "you already have %d requests waiting for an answer, the most allowed: "
                "/end NICK takes one back" % (MAX_REQUESTS_WAITING,)
            )
        else:
            chats.request(user, other)
            user.notice("asked %s for a private chat" % (other.nickname,))
            other.notice(
                "%s asks for a private chat: /accept %s or /reject %s"
                % (user.nickname, user.nickname, user.nickname)
            )

    @command()
    def cmd_accept(self, user, args):
        """
        /accept NICK -- open the private chat NICK asked for.
        """
        self._answer(user, args, True)

    @command()
    def cmd_reject(self, user, args):
        """
        /reject NICK -- turn down NICK's request for a private chat.
        """
        self._answer(user, args, False)

    def _answer(self, user, args, accepted):
        verb = "accept" if accepted else "reject"
        other = self._other(user, args, "/%s NICK" % (verb,))
        if other is None:
            return
        if not self.chat.private_chats.answer(user, other, accepted):
            user.notice("%s has not asked you for a private chat" % (other.nickname,))
            return
        if accepted:
            user.notice("private chat with %s is open: @%s TEXT" % (other.nickname, other.nickname))
            other.notice(
                "%s accepted: private chat open: @%s TEXT" % (user.nickname, user.nickname)
            )
        else:
            user.notice("you turned down %s" % (other.nickname,))
            other.notice("%s turned down your private chat request" % (user.nickname,))

    @command()
    def cmd_end(self, user, args):
        """
        /end NICK -- close your private chat with NICK, or take back your request to NICK.
        """
        other = self._other(user, args, "/end NICK")
        if other is None:
            return
        chats = self.chat.private_chats
        if chats.end(user, other):
            user.notice("private chat with %s closed" % (other.nickname,))
            other.notice("%s closed your private chat" % (user.nickname,))
        elif chats.withdraw(user, other):
            user.notice("you took back your request to %s" % (other.nickname,))
            other.notice("%s took back their private chat request" % (user.nickname,))
        else:
            user.notice("you have no private chat with %s, nor a request to them" % (other.nickname,))

    @command()
    def cmd_chats(self, user, args):
        """
        /chats -- your open private chats and pending requests, both ways.
        """
        chats = self.chat.private_chats

        def names(members):
            return ", ".join(sorted(member.nickname for member in members)) or "none"

        user.notice("private chats: " + names(chats.partners(user)))
        user.notice("you asked: " + names(chats.requests_from(user)))
        user.notice("asking you: " + names(chats.requests_to(user)))
        user.notice("consent is %s" % ("on" if chats.requires_consent(user) else "off",))
