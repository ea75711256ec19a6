"""
Who is online, in which room, and where each message goes.

Nothing here knows about sockets or Twisted transports: people are reached only
through the small L{IMember} contract, so the same state can be driven by unit
tests directly, by the line protocol, and later by other transports or nodes.
"""

import random

from zope.interface import Attribute, Interface

from wazzap import text

#: The room everybody joins until there are more rooms to choose from.
LOBBY = "lobby"


class IMember(Interface):
    """
    Someone online, as the rooms see them.
    """

    nickname = Attribute("The nickname shown to others, as the user typed it.")
    color = Attribute("The colour (an ANSI style string) of this member's nickname.")

    def deliver(line):
        """
        Queue a L{wazzap.text.Line} for this member; it is written at the end of
        the current reactor turn, after every line queued before it.
        """

    def disconnect(reason):
        """
        End this member's connection, telling them C{reason}.  The member's
        session reports the departure through L{Chat.leave}.
        """


class Room:
    """
    A set of members who all see each other's public messages.
    """

    def __init__(self, name):
        self.name = name
        self._members = {}

    def __len__(self):
        return len(self._members)

    def nicknames(self):
        """
        The nicknames in this room, sorted case-insensitively.
        """
        return sorted((m.nickname for m in self._members.values()), key=text.nickname_key)

    def add(self, member):
        self._members[text.nickname_key(member.nickname)] = member

    def remove(self, member):
        self._members.pop(text.nickname_key(member.nickname), None)

    def rekey(self, old_key, member):
        """
        Keep C{member} under its new nickname, in its place.
        """
        self._members = {
            (text.nickname_key(member.nickname) if key == old_key else key): m
            for key, m in self._members.items()
        }

    def broadcast(self, line, exclude=None):
        """
        Deliver the same L{wazzap.text.Line} to every member but C{exclude}.
        """
        for member in self._members.values():
            if member is not exclude:
                member.deliver(line)

    def announce(self, notice, exclude=None):
        """
        Deliver a C{[Server]} notice to the room.
        """
        self.broadcast(text.server_line(notice), exclude)

    def say(self, sender, message, text_style=""):
        """
        Relay a public message from C{sender} to everyone else in the room.
        """
        self.broadcast(text.chat_line(sender.nickname, sender.color, message, text_style), sender)

    def emote(self, sender, action):
        """
        Relay a C{/me} action to everyone in the room, the sender included.
        """
        self.broadcast(text.action_line(sender.nickname, sender.color, action))


class Chat:
    """
    Everybody online, by nickname, and the rooms they are in.

    A nickname is held from L{join} until L{leave}; it is compared
    case-insensitively (L{wazzap.text.nickname_key}).
    """

    def __init__(self, rng=None):
        self._rng = rng or random.Random()
        self._members = {}
        self._rooms = {LOBBY: Room(LOBBY)}
        self._room_of = {}

    def __len__(self):
        return len(self._members)

    def nickname_problem(self, nickname, member=None):
        """
        Return why C{nickname} cannot be taken (by C{member}, who may already
        hold it in another case), or L{None}.
        """
        problem = text.nickname_problem(nickname)
        if problem is not None:
            return problem
        holder = self._members.get(text.nickname_key(nickname))
        if holder is not None and holder is not member:
            return "%s is already online" % (holder.nickname,)
        return None

    def find(self, nickname):
        """
        The member online under C{nickname} (any case), or L{None}.
        """
        return self._members.get(text.nickname_key(nickname))

    def members(self):
        return list(self._members.values())

    def room_of(self, member):
        return self._room_of[member]

    def pick_color(self):
        """
        A colour from the palette, preferring those nobody online has.
        """
        taken = {member.color for member in self._members.values()}
        free = [color for color in text.USER_PALETTE if color not in taken]
        return self._rng.choice(free or text.USER_PALETTE)

    def join(self, member, room_name=LOBBY):
        """
        Bring C{member}, whose nickname L{nickname_problem} accepted, into a
        room and tell the room; return the room.
        """
        room = self._rooms[room_name]
        self._members[text.nickname_key(member.nickname)] = member
        self._room_of[member] = room
        room.announce("%s joined the chat" % (member.nickname,), exclude=member)
        room.add(member)
        return room

    def leave(self, member, reason=None):
        """
        Take C{member} out of the chat, free its nickname at once, and tell the
        room why it left.  Leaving twice is harmless.
        """
        room = self._room_of.pop(member, None)
        if room is None:
            return
        del self._members[text.nickname_key(member.nickname)]
        room.remove(member)
        notice = "%s left the chat" % (member.nickname,)
        if reason:
            notice += " (%s)" % (reason,)
        room.announce(notice)

    def rename(self, member, nickname):
        """
        Give C{member} a new nickname and tell its room; return why it cannot,
        or L{None}.
        """
        problem = self.nickname_problem(nickname, member)
        if problem is not None:
            return problem
        old_nickname = member.nickname
        old_key = text.nickname_key(old_nickname)
        del self._members[old_key]
        member.nickname = nickname
        self._members[text.nickname_key(nickname)] = member
        room = self._room_of[member]
        room.rekey(old_key, member)
        room.announce("%s is now known as %s" % (old_nickname, nickname))
        return None

    def send_private(self, sender, nickname, message, text_style=""):
        """
        Deliver a private message to the member called C{nickname} and confirm
        it to C{sender}; return why it cannot be sent, or L{None}.
        """
        target = self.find(nickname)
        if target is None:
            return "nobody called %s is online" % (nickname,)
        if target is sender:
            return "that is you: a private message needs someone else"
        if not message:
            return "the message is empty: say something after the nickname"
        target.deliver(text.private_line("from", sender.nickname, message, text_style))
        sender.deliver(text.private_line("to", target.nickname, message, text_style))
        return None

    def announce(self, notice):
        """
        Tell every room something.
        """
        for room in self._rooms.values():
            room.announce(notice)
