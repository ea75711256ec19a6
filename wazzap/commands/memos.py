"""
The sender's side of offline messages (L{wazzap.persist.memos}): C{/memos}
lists those still waiting, C{/unsend N} takes one back.

They are numbered oldest first, as C{/memos} shows them; C{/unsend} says
which one it took back, since one delivered meanwhile moves the numbers on.
"""

from wazzap.commands.registry import command
from wazzap.persist.memos import sent_at

#: Waiting messages C{/memos} shows at most (a sender may have five for
#: each registered user): enough to see, never a flood.
MEMOS_LISTED = 50
#: Characters of each message C{/memos} shows.
PREVIEW_CHARS = 60
_CUT = "\u2026"
#: Digits in a number /unsend could ever take.
_MAX_DIGITS = 6
USAGE = "usage: /unsend N, where N is the number /memos shows"


def _preview(message):
    if len(message) <= PREVIEW_CHARS:
        return message
    return message[: PREVIEW_CHARS - 1].rstrip() + _CUT


class MemoCommands:
    """
    C{/memos} and C{/unsend}, over an L{OfflineMessages}.
    """

    def __init__(self, memos, clock):
        self.memos = memos
        self._clock = clock

    def _describe(self, memo):
        return "to %s, %s: %s" % (
            memo.recipient,
            sent_at(memo.sent_at, self._clock.seconds()),
            _preview(memo.text),
        )

    @command()
    def cmd_memos(self, user, args):
        """
        /memos -- your messages waiting for people offline, numbered for /unsend.
        """
        return self.memos.store.memos_from(user.nickname).addCallback(self._listed, user)

    def _listed(self, memos, user):
        if not memos:
            user.notice("you have no messages waiting to be delivered")
            return
        user.notice("your messages waiting to be delivered (/unsend N takes one back):")
        for number, memo in enumerate(memos[:MEMOS_LISTED], 1):
            user.notice("  %d. %s" % (number, self._describe(memo)))
        if len(memos) > MEMOS_LISTED:
            user.notice("  and %d more, newer" % (len(memos) - MEMOS_LISTED,))

    @command()
    def cmd_unsend(self, user, args):
        """
        /unsend N -- take back message N of /memos before it is delivered.
        """
        word = args.strip()
        if not word.isdecimal() or not word.isascii():
            user.notice(USAGE)
            return None
        number = int(word) if len(word) <= _MAX_DIGITS else 0
        if number < 1:
            user.notice("there is no message %s: /memos lists yours" % (word,))
            return None
        taken = self.memos.store.take_back_memo(user.nickname, number)
        return taken.addCallback(self._taken_back, user, word)

    def _taken_back(self, result, user, word):
        memo, waiting = result
        if memo is not None:
            user.notice("took back your message %s" % (self._describe(memo),))
        elif not waiting:
            user.notice("you have no messages waiting to be delivered")
        else:
            user.notice(
                "there is no message %s: you have %d waiting, /memos lists them" % (word, waiting)
            )
