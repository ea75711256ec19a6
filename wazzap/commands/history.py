"""
C{/history}: the last lines of a room one is in, from its stored history
(L{wazzap.core.replay}); and, for admins given a nickname, the sessions of
that person (C{/sessions}), which it was before rooms had a history.
"""

import re

from wazzap.commands.registry import command
from wazzap.core.replay import HISTORY_LINES, MAX_HISTORY_LINES
from wazzap.core.rooms import room_name_problem
from wazzap.text import NICKNAME_PATTERN

USAGE = "usage: /history [#ROOM] [N]"
#: N as typed, sign and all (told back if out of range): ASCII digits only,
#: since str.isdigit() takes "²", which int() refuses.
NUMBER = re.compile(r"[+-]?[0-9]+")


class HistoryCommands:
    """
    C{/history}, over the chat's L{wazzap.core.replay.Replay}.
    """

    def __init__(self, chat, run):
        """
        @param run: runs a command by name as typed (C{Commands.run}), for
            C{/history NICK}, which is C{/sessions NICK} with its admin check.
        """
        self.chat = chat
        self._run = run

    @command()
    def cmd_history(self, user, args):
        """
        /history [#ROOM] [N] -- the last N lines (default 50, at most 1000) of a room you are in.

        Without #ROOM, of the room you talk in. Lines from history show with
        their time in UTC (and date, when not today).
        """
        words = args.split()
        room_name, count, nickname = None, HISTORY_LINES, None
        if len(words) > 2:
            user.notice(USAGE)
            return None
        for position, word in enumerate(words):
            if word.startswith("#") and position == 0:
                room_name = word
            elif NUMBER.fullmatch(word):
                count = int(word)
            elif len(words) == 1 and NICKNAME_PATTERN.match(word):
                nickname = word
            else:
                user.notice(USAGE)
                return None
        if nickname is not None:
            if user.is_admin:
                return self._run(user, "sessions", nickname)
            user.notice(
                "permission denied: /history NICK is for admins; "
                "/history [#ROOM] [N] shows the lines of a room"
            )
            return None
        if not 1 <= count <= MAX_HISTORY_LINES:
            user.notice("N is a number of lines from 1 to %d, not %s" % (MAX_HISTORY_LINES, count))
            return None
        replay = self.chat.replay
        if replay is None:
            user.notice("this server keeps no history of rooms")
            return None
        room = self._room(user, room_name)
        if room is None:
            return None
        return replay.show_history(user, room, count)

    def _room(self, user, name):
        """
        The room called C{name} (or the one C{user} talks in) if C{user} is
        in it, or L{None} after telling them why not.
        """
        if name is None:
            return self.chat.room_of(user)
        problem = room_name_problem(name)
        if problem is not None:
            user.notice(problem)
            return None
        room = self.chat.find_room(name)
        if room is None or user not in room:
            user.notice("you are not in %s: /history shows only rooms you are in" % (name,))
            return None
        return room
