"""
Rooms: joining and parting them, what is in them, topics, and (for admins)
locking them; and C{/who}, everyone online with their rooms.

The rooms themselves are the chat's (L{wazzap.chat}); these commands read
a user's words and tell them what happened or why not.
"""


from wazzap import text
from wazzap.commands.base import plural, split_word
from wazzap.commands.registry import command
from wazzap.core.rooms import LOBBY, others_in, room_name_problem

#: Names shown when someone joins a room; past these, how many more.
NAMES_ON_JOIN = 10


class RoomCommands:
    """
    C{/join}, C{/part}, C{/rooms}, C{/topic}, C{/names}, C{/who}, C{/lock}
    and C{/unlock}.
    """

    def __init__(self, chat, bans):
        self.chat = chat
        self.bans = bans

    def _room_named(self, user, name):
        """
        The room called C{name}, or L{None} after telling C{user} why not.
        """
        problem = room_name_problem(name)
        if problem is not None:
            user.notice(problem)
            return None
        room = self.chat.find_room(name)
        if room is None:
            user.notice("there is no room %s: /rooms lists them" % (name,))
        return room

    def _room_and_rest(self, user, args):
        """
        The room a command names first in C{args} (a word starting with #),
        or else the one C{user} reads, and the words after it; L{None} for
        the room after telling C{user} why not.
        """
        word, rest = split_word(args)
        if word.startswith("#"):
            return self._room_named(user, word), rest
        return self.chat.room_of(user), args.strip()

    @command()
    def cmd_join(self, user, args):
        """
        /join #ROOM -- join a room, creating it if there is none, and talk there.

        Plain text goes to the room you joined or joined last with /join;
        lines from your other rooms show after the room's name, like
        [#maths] bob: hi.  /join a room you are in to talk there again.
        """
        names = args.split()
        if len(names) != 1:
            user.notice("usage: /join #ROOM")
            return
        was_in = self.chat.find_room(names[0])
        if was_in is not None and user not in was_in:
            was_in = None
        problem = self.chat.enter(user, names[0])
        if problem is not None:
            user.notice("cannot join: " + problem)
            return
        room = self.chat.room_of(user)
        if was_in is not None:
            user.notice("you are talking in %s" % (room.name,))
            return
        others = others_in(room, user, NAMES_ON_JOIN, "/names")
        user.notice("you joined %s. %s" % (room.name, others))
        if room.topic:
            user.notice("topic of %s: %s" % (room.name, room.topic))
        if self.chat.replay is not None:
            self.chat.replay.entered(user, room)

    @command()
    def cmd_part(self, user, args):
        """
        /part [#ROOM] [REASON] -- leave a room (the one you talk in unless you name one).

        Parting your last room takes you back to #lobby.
        """
        room, reason = self._room_and_rest(user, args)
        if room is None:
            return
        # The reason is shown to the room: a muted user parts without one.
        reason = None if self.bans.mutes.muted_for(user) else text.short_reason(reason)
        problem = self.chat.part(user, room, reason)
        if problem is not None:
            user.notice("cannot part: " + problem)
            return
        now_in = self.chat.room_of(user).name
        user.notice("you left %s; you are talking in %s" % (room.name, now_in))

    @command()
    def cmd_rooms(self, user, args):
        """
        /rooms -- list the rooms, busiest first, with how many are in each and their topics.
        """
        rooms = self.chat.rooms()
        user.notice("%s:" % (plural(len(rooms), "room"),))
        for room in rooms:
            line = "  %s (%d)" % (room.name, len(room))
            if room.locked:
                line += " [locked]"
            user.notice(line + (": " + room.topic if room.topic else ""))

    @command()
    def cmd_topic(self, user, args):
        """
        /topic [#ROOM] [TEXT] -- show a room's topic, or set it (at most 390 bytes).

        /topic #ROOM shows the topic of any room; setting one needs you in
        the room (and, in a locked room, an admin).  /topic - clears it.
        """
        room, topic = self._room_and_rest(user, args)
        if room is None:
            return
        if not topic:
            if room.topic:
                user.notice("topic of %s: %s" % (room.name, room.topic))
            else:
                user.notice("%s has no topic" % (room.name,))
            return
        if user not in room:
            user.notice("cannot set the topic: you are not in %s" % (room.name,))
            return
        if room.locked and not user.is_admin:
            user.notice("cannot set the topic: %s is locked" % (room.name,))
            return
        problem = self.chat.set_topic(user, room, "" if topic == "-" else topic)
        if problem is not None:
            user.notice("cannot set the topic: " + problem)

    @command()
    def cmd_names(self, user, args):
        """
        /names [#ROOM] -- list who is in a room (the one you talk in unless you name one).
        """
        room, rest = self._room_and_rest(user, args)
        if room is None:
            return
        if rest:
            user.notice("usage: /names [#ROOM]")
            return
        nicknames = room.nicknames()
        user.notice("%s, %d: %s" % (room.name, len(nicknames), ", ".join(nicknames)))

    @command(aliases=("users", "online"))
    def cmd_who(self, user, args):
        """
        /who -- list who is online, with their rooms but #lobby (also /users, /online).
        """
        chat = self.chat
        entries = []
        for member in chat.members():
            rooms = [room.name for room in chat.rooms_of(member)]
            nickname = member.nickname
            if rooms != [LOBBY]:
                nickname = "%s (%s)" % (nickname, ", ".join(rooms))
            entries.append((text.nickname_key(member.nickname), nickname))
        entries.sort()
        user.notice("%d online: %s" % (len(entries), ", ".join(entry for _, entry in entries)))

    @command(admin_only=True)
    def cmd_lock(self, user, args):
        """
        /lock #ROOM -- let only admins post in a room.
        """
        self._lock(user, args, "lock", True)

    @command(admin_only=True)
    def cmd_unlock(self, user, args):
        """
        /unlock #ROOM -- let everyone post in a locked room again.
        """
        self._lock(user, args, "unlock", False)

    def _lock(self, user, args, name, locked):
        names = args.split()
        if len(names) != 1:
            user.notice("usage: /%s #ROOM" % (name,))
            return
        room = self._room_named(user, names[0])
        if room is None:
            return
        if room.locked == locked:
            user.notice("%s is %s already" % (room.name, "locked" if locked else "not locked"))
            return
        self.chat.lock(user, room, locked)
