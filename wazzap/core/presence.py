"""
Presence kept in this process's memory: nicknames, room membership and the
approval queue, by session key.  The Redis presence
(L{wazzap.bus.redis.RedisPresence}) keeps the same contract (L{IPresence})
for several processes, and this one as its mirror of all of them.
"""

from collections import Counter

from twisted.internet import defer
from zope.interface import implementer

from wazzap.core.interfaces import IPresence
from wazzap.text import nickname_key


@implementer(IPresence)
class MemoryPresence:
    """
    L{IPresence} in dicts.
    """

    def __init__(self):
        self._holders = {}  # nickname key -> session key
        self._nicknames = {}  # session key -> nickname as typed
        self._rooms = {}  # room -> {session key: None}, in the order they entered
        # session key -> the name of its one room, or a tuple of its rooms:
        # kept for everyone online, most of whom are in one room, which so
        # costs them no container of its own.
        self._rooms_of = {}
        self._waiting = {}  # session key -> address, longest-waiting first
        self._waiting_from = Counter()

    def available(self, nickname, session_key=None):
        holder = self._holders.get(nickname_key(nickname))
        return defer.succeed(holder is None or holder == session_key)

    def claim(self, session_key, nickname):
        return defer.succeed(self.hold(session_key, nickname))

    def hold(self, session_key, nickname):
        """
        L{claim}, answered at once: whether C{session_key} now holds C{nickname}.
        """
        key = nickname_key(nickname)
        holder = self._holders.get(key)
        if holder is not None and holder != session_key:
            return False
        old = self._nicknames.get(session_key)
        if old is not None:
            del self._holders[nickname_key(old)]
        self._holders[key] = session_key
        self._nicknames[session_key] = nickname
        return True

    def rename(self, session_key, nickname):
        return defer.succeed(session_key in self._nicknames and self.hold(session_key, nickname))

    def describe(self, session_key, identity):
        """
        Nobody else to show it to: the chat of this process knows it.
        """

    def remote(self, session_key):
        return None

    def remote_members(self):
        return []

    def set_consent(self, session_key, required):
        """
        The chat of this process knows it.
        """

    def describe_room(self, name, topic, locked):
        """
        The chat of this process keeps its rooms' topics: nobody else to tell.
        """

    def forget_room(self, name):
        """
        Nothing kept of rooms beyond their members.
        """

    def observe(self, observer):
        """
        No other process does anything here.
        """

    def moderation_changed(self, what):
        """
        No other process to tell.
        """

    def release(self, session_key):
        self.drop_nickname(session_key)
        for room in self.rooms_of(session_key):
            self.exit(room, session_key)
        self.stop_waiting(session_key)

    def drop_nickname(self, session_key):
        """
        Free the session's nickname, keeping its rooms and its place in the
        queue: another session won it elsewhere, and this one leaves soon.
        """
        nickname = self._nicknames.pop(session_key, None)
        if nickname is not None:
            del self._holders[nickname_key(nickname)]

    def locate(self, nickname):
        return self._holders.get(nickname_key(nickname))

    def nickname_of(self, session_key):
        return self._nicknames.get(session_key)

    def enter(self, room, session_key):
        self._rooms.setdefault(room, {})[session_key] = None
        rooms = self.rooms_of(session_key)
        if room not in rooms:
            self._set_rooms(session_key, rooms + [room])

    def exit(self, room, session_key):
        members = self._rooms.get(room)
        if members is None or session_key not in members:
            return
        del members[session_key]
        if not members:
            del self._rooms[room]
        others = [other for other in self.rooms_of(session_key) if other != room]
        self._set_rooms(session_key, others)

    def members_of(self, room):
        return list(self._rooms.get(room, ()))

    def count(self, room):
        return len(self._rooms.get(room, ()))

    def rooms_of(self, session_key):
        rooms = self._rooms_of.get(session_key, ())
        return [rooms] if isinstance(rooms, str) else list(rooms)

    def _set_rooms(self, session_key, rooms):
        if not rooms:
            self._rooms_of.pop(session_key, None)
        else:
            self._rooms_of[session_key] = rooms[0] if len(rooms) == 1 else tuple(rooms)

    def wait_for_approval(self, session_key, address):
        if session_key not in self._waiting:
            self._waiting[session_key] = address
            self._waiting_from[address] += 1

    def stop_waiting(self, session_key):
        if session_key not in self._waiting:
            return False
        address = self._waiting.pop(session_key)
        self._waiting_from[address] -= 1
        if not self._waiting_from[address]:
            del self._waiting_from[address]
        return True

    def waiting(self):
        return list(self._waiting)

    def waiting_addresses(self):
        """
        Session key -> address of everyone waiting for approval.
        """
        return dict(self._waiting)

    def held(self):
        """
        (session key, nickname) of every session holding a nickname.
        """
        return list(self._nicknames.items())

    def waiting_from(self, address):
        return self._waiting_from[address]
