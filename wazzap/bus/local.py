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
        # session key -> [member, how many rooms it is in]
        self._sessions = {}

    def join(self, room, member):
        key = member.session_key
        members = self._rooms.get(room)
        if members is None:
            members = self._rooms[room] = {}
        if key in members:
            return
        self.outbox.started(room, key)
        members[key] = member
        session = self._sessions.get(key)
        if session is None:
            self._sessions[key] = [member, 1]
        else:
            session[1] += 1

    def leave(self, room, session_key):
        members = self._rooms.get(room)
        if members is None or members.pop(session_key, None) is None:
            return
        if not members:
            del self._rooms[room]
        session = self._sessions[session_key]
        session[1] -= 1
        if not session[1]:
            del self._sessions[session_key]

    def local_members(self, room):
        members = self._rooms.get(room)
        return {} if members is None else members

    def publish(self, room, event, exclude=None):
        members = self._rooms.get(room)
        if members:
            self.outbox.publish(room, members, event, exclude)

    def direct(self, session_key, event):
        session = self._sessions.get(session_key)
        if session is not None:
            self.outbox.direct(session[0], event)
