"""
Bans, checked at every connection and every nickname without a trip to the
database for the people who are not banned: nearly everybody.

The server keeps the banned targets in memory, read at start-up and changed by
each /ban and /unban.  A hit is confirmed by the database, which the admin
command (C{python -m wazzap.admin unban}) may have changed meanwhile.
"""

from twisted.internet import defer

from wazzap.text import nickname_key


class Bans:
    """
    The bans of a L{wazzap.store.Store}, with an in-memory index of targets.
    """

    def __init__(self, store, clock):
        self._store = store
        self._clock = clock
        self._until = {}

    def load(self):
        """
        Read the bans in force, synchronously: called at start-up, before the
        first connection can arrive.
        """
        for ban in self._store.database.active_bans(self._clock.seconds()):
            self._until[nickname_key(ban.target)] = ban.until

    def _may_be_banned(self, target, now):
        if target is None:
            return False
        key = nickname_key(target)
        if key not in self._until:
            return False
        until = self._until[key]
        if until is not None and until <= now:
            del self._until[key]
            return False
        return True

    def find(self, nickname, address):
        """
        The ban in force on C{nickname} or C{address} (either may be None), or
        None; a Deferred.
        """
        now = self._clock.seconds()
        if not (self._may_be_banned(nickname, now) or self._may_be_banned(address, now)):
            return defer.succeed(None)
        return self._store.find_ban(nickname, address, now)

    def add(self, target, kind, seconds, reason, by):
        """
        Ban C{target} (a nickname or address, as C{kind} says) for C{seconds},
        or for ever when None; fires once the ban is stored.
        """
        now = self._clock.seconds()
        until = now + seconds if seconds else None
        key = nickname_key(target)
        return self._store.add_ban(key, kind, until, reason, by, now).addCallback(
            lambda _: self._until.__setitem__(key, until)
        )

    def remove(self, target):
        """
        Lift the ban on C{target}; fires with whether there was one.
        """
        key = nickname_key(target)
        self._until.pop(key, None)
        return self._store.remove_ban(key)

    def active(self):
        """
        The bans in force now, from the database; a Deferred.
        """
        return self._store.active_bans(self._clock.seconds())
