"""
The room bus of one process: rooms are dicts of the members connected here,
and what is published waits in the per-turn L{Outbox}.
"""

from zope.interface import implementer

from wazzap.core.interfaces import IRoomBus


@implementer(IRoomBus)
class LocalBus:
    """
    Rooms of members in this process, delivering through one L{Outbox}.
    """

    def __init__(self, outbox):
        """
        @param outbox: the L{Outbox} of this process's turns.
        """
        self.outbox = outbox
        self._rooms = {}
        self._sessions = {}  # session key -> member, while in a room

    def join(self, room, member):
        key = member.session_key
        members = self._rooms.get(room)
        if members is None:
            members = self._rooms[room] = {}
        if key in members:
            return
        self.outbox.started(room, key)
        members[key] = member
        self._sessions[key] = member

    def leave(self, room, session_key):
        members = self._rooms.get(room)
        if members is None or members.pop(session_key, None) is None:
            return
        if not members:
            del self._rooms[room]
        # Looking through the rooms costs a leave more than a count would,
        # but keeps nothing more per person online.
        if not any(session_key in others for others in self._rooms.values()):
            del self._sessions[session_key]

    def local_members(self, room):
        members = self._rooms.get(room)
        return {} if members is None else members

    def hear(self, listener):
        """
        No other process publishes here.
        """

    def publish(self, room, event, exclude=None, heard_in=(), line=None):
        members = self._rooms.get(room)
        if not members:
            return
        if heard_in and self._heard_elsewhere(members, heard_in):
            self.publish_except(room, event, (exclude,), heard_in)
            return
        self.outbox.publish(room, members, event, exclude)

    def _heard_elsewhere(self, members, heard_in):
        """
        Whether any of C{members} is in a room of C{heard_in}.
        """
        heard = [self._rooms[name] for name in heard_in if name in self._rooms]
        return any(key in other for other in heard for key in members)

    def publish_except(self, room, event, skipping, heard_in=()):
        """
        Give C{event} to each member of C{room} alone but the session keys
        in C{skipping} and those in a room of C{heard_in}: slower than
        L{publish}, for the few events some members of a room must not get.
        """
        members = self._rooms.get(room)
        if not members:
            return
        heard = [self._rooms[name] for name in heard_in if name in self._rooms]
        for key, member in members.items():
            if key not in skipping and not any(key in other for other in heard):
                self.outbox.direct(member, event)

    def direct(self, session_key, event):
        member = self._sessions.get(session_key)
        if member is not None:
            self.outbox.direct(member, event)
