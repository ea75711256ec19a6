"""
A session: one person in the chat, from joining to leaving, and the one
owner of who they are (their L{Identity}) and of what the chat keeps for
them.  The connection keeps a reference to its session and reads its
identity from it, so that a new nickname, account or admin right is seen
by everyone at once and never goes stale on a copy.
"""

from dataclasses import replace


class Session:
    """
    @ivar key: the session key (L{wazzap.core.identity.new_session_key}).
    @ivar identity: the frozen L{Identity}; a change replaces it
        (L{change}).
    @ivar member: the L{IMember} the outbox reaches this person through.
    @ivar room: the L{wazzap.chat.Room} plain text goes to, or L{None}
        once the person left.
    """

    __slots__ = ("key", "identity", "member", "room")

    def __init__(self, key, identity, member, room=None):
        self.key = key
        self.identity = identity
        self.member = member
        self.room = room

    def change(self, **fields):
        """
        Replace the identity by one with C{fields} changed.
        """
        self.identity = replace(self.identity, **fields)
