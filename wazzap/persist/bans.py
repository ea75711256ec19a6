"""
Bans and mutes, kept in the database and indexed in memory.

Bans are checked at every connection and every nickname without a trip to
the database for the people who are not banned: nearly everybody.  The
server keeps the banned targets in memory, read at start-up and changed by
each /ban and /unban; network bans (C{203.0.113.0/24}) are indexed by prefix
length, so a connection costs one look-up per prefix length in use.  A hit
is confirmed by the database, which the admin command (C{python -m
wazzap.admin unban}) may have changed meanwhile.  A database that other
servers share (PostgreSQL) is asked at every connection and nickname
instead, since a ban another server made is not in this one's index.

Mutes are few and asked about at every line a muted person sends, so they
are all held in memory and written through to the database: a mute outlives
the connection and a restart, and one of an account its changes of nickname.
"""

import ipaddress

from twisted.internet import defer

from wazzap import addresses
from wazzap.persist.store import ACCOUNT, ADDRESS, NICKNAME, Mute
from wazzap.text import nickname_key


def _expired(until, now):
    return until is not None and until <= now


class Bans:
    """
    The bans of a L{wazzap.persist.store.Store}, with an in-memory index of targets;
    and its mutes (L{Mutes}), loaded with them.
    """

    def __init__(self, store, clock):
        self._store = store
        self._clock = clock
        # Nickname and address keys -> end of the ban (None: no end).
        self._until = {}
        # Prefix length -> {network: end of the ban}, per IP version.
        self._networks = {4: {}, 6: {}}
        #: Callables given C{"bans"} or C{"mutes"} once a change of them is
        #: stored: the other processes sharing the database are told.
        self.changed_listeners = []
        self.mutes = Mutes(store, clock, self._told)

    def _told(self, result, what):
        """
        Tell L{changed_listeners} that C{what} changed; pass C{result} on.
        """
        for listener in self.changed_listeners:
            listener(what)
        return result

    def load(self):
        """
        Read the bans and mutes in force, synchronously: called at start-up,
        before the first connection can arrive.
        """
        database = self._store.database
        for ban in database.active_bans(self._clock.seconds()):
            target = ban.target
            if ban.kind == ADDRESS:
                target = addresses.ban_target(target) or target
            if target != ban.target:
                # Stored before IPv4-mapped addresses were written as IPv4
                # (::ffff:7f00:2), so it never matched: make it match.
                database.remove_ban(ban.target)
                database.add_ban(target, ban.kind, ban.until, ban.reason, ban.by, ban.at)
            self._index(target, ban.until)
        self.mutes.load()

    def _index(self, target, until):
        network = addresses.network_of(target)
        if network is None:
            self._until[nickname_key(target)] = until
        else:
            self._networks[network.version].setdefault(network.prefixlen, {})[network] = until

    def _may_be_banned(self, target, now):
        if target is None:
            return False
        key = nickname_key(target)
        if key not in self._until:
            return False
        if _expired(self._until[key], now):
            del self._until[key]
            return False
        return True

    def _networks_of(self, address, now):
        """
        The targets of the network bans in the index that contain C{address}.
        """
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return []
        found = []
        by_length = self._networks[ip.version]
        for length, networks in list(by_length.items()):
            network = ipaddress.ip_network((ip, length), strict=False)
            if network in networks:
                if _expired(networks[network], now):
                    del networks[network]
                    if not networks:
                        del by_length[length]
                else:
                    found.append(str(network))
        return found

    def find(self, nickname, address):
        """
        The ban in force on C{nickname} or C{address} (either may be None), or
        None; a Deferred.
        """
        now = self._clock.seconds()
        if self._store.database.SHARED_BY_SERVERS:
            return self._store.find_ban(nickname, address, now, _every_network_of(address))
        networks = self._networks_of(address, now) if address is not None else []
        if not (
            networks or self._may_be_banned(nickname, now) or self._may_be_banned(address, now)
        ):
            return defer.succeed(None)
        return self._store.find_ban(nickname, address, now, networks)

    def add(self, target, kind, seconds, reason, by):
        """
        Ban C{target} (a nickname, or an address or network as
        L{addresses.ban_target} writes it, as C{kind} says) for C{seconds},
        or for ever when None; fires once the ban is stored.
        """
        now = self._clock.seconds()
        until = now + seconds if seconds else None
        key = nickname_key(target)
        stored = self._store.add_ban(key, kind, until, reason, by, now)
        return stored.addCallback(lambda _: self._index(key, until)).addCallback(
            self._told, "bans"
        )

    def remove(self, target):
        """
        Lift the ban on C{target}; fires with whether there was one.
        """
        key = nickname_key(target)
        self._until.pop(key, None)
        network = addresses.network_of(key)
        if network is not None:
            by_length = self._networks[network.version]
            by_length.get(network.prefixlen, {}).pop(network, None)
        return self._store.remove_ban(key).addCallback(self._told, "bans")

    def active(self):
        """
        The bans in force now, from the database; a Deferred.
        """
        return self._store.active_bans(self._clock.seconds())

    def reload(self, what):
        """
        Read the bans (C{what} is C{"bans"}) or the mutes (C{"mutes"}) in
        force again, as another process sharing the database changed them;
        a Deferred.
        """
        if what == "mutes":
            return self.mutes.reload()
        return self.active().addCallback(self._reindex)

    def _reindex(self, bans):
        self._until = {}
        self._networks = {4: {}, 6: {}}
        for ban in bans:
            self._index(addresses.ban_target(ban.target) or ban.target, ban.until)


def _every_network_of(address):
    """
    Every network that contains C{address}, as ban targets are written:
    what a server that cannot trust its index asks the database about.
    """
    try:
        ip = ipaddress.ip_address(address)
    except (TypeError, ValueError):
        return []
    return [
        str(ipaddress.ip_network((ip, length), strict=False))
        for length in range(ip.max_prefixlen + 1)
    ]


def mute_key(member):
    """
    Where a mute of C{member} is kept: its account if it logged in to one,
    else its nickname.
    """
    return nickname_key(member.account or member.nickname)


class Mutes:
    """
    Who may not talk, and until when: by account (whatever nickname it uses)
    or by nickname (whoever uses it).
    """

    def __init__(self, store, clock, told=None):
        """
        @param told: called with (result, C{"mutes"}) once a change is
            stored; passes the result on.
        """
        self._store = store
        self._clock = clock
        self._told = told or (lambda result, what: result)
        # Account or nickname key -> its L{wazzap.persist.store.Mute}.
        self._mutes = {}

    def load(self):
        """
        Read the mutes in force, synchronously, at start-up.
        """
        self._index(self._store.database.active_mutes(self._clock.seconds()))

    def reload(self):
        """
        Read the mutes in force again, as another process changed them; a
        Deferred.
        """
        return self._store.active_mutes(self._clock.seconds()).addCallback(self._index)

    def _index(self, mutes):
        self._mutes = {nickname_key(mute.target): mute for mute in mutes}

    def _in_force(self, key, now):
        mute = self._mutes.get(key)
        if mute is not None and _expired(mute.until, now):
            del self._mutes[key]
            return None
        return mute

    def muted_for(self, member):
        """
        Seconds C{member} stays muted (infinite until lifted), 0 if it may
        speak: the longer of a mute on its account and one on its nickname.
        """
        if not self._mutes:
            return 0  # every line asks: the usual answer costs nothing
        now = self._clock.seconds()
        longest = 0
        for key in {mute_key(member), nickname_key(member.nickname)}:
            mute = self._in_force(key, now)
            if mute is not None:
                longest = max(longest, float("inf") if mute.until is None else mute.until - now)
        return longest

    def find(self, target):
        """
        The L{wazzap.persist.store.Mute} in force on the account or nickname
        C{target}, or None.
        """
        return self._in_force(nickname_key(target), self._clock.seconds())

    def mute(self, member, seconds, by):
        """
        Mute C{member} for C{seconds} (None: until lifted), by account if it
        has one; fires once the mute is stored.
        """
        if member.account:
            return self._add(member.account, ACCOUNT, seconds, by)
        return self._add(member.nickname, NICKNAME, seconds, by)

    def extend(self, mute, seconds, by):
        """
        Replace C{mute} (of someone offline) with one for C{seconds}.
        """
        return self._add(mute.target, mute.kind, seconds, by)

    def _add(self, target, kind, seconds, by, until=None):
        now = self._clock.seconds()
        if seconds:
            until = now + seconds
        mute = Mute(target, kind, until, by, now)
        self._mutes[nickname_key(target)] = mute
        return self._store.add_mute(target, kind, until, by, now).addCallback(
            self._told, "mutes"
        )

    def unmute(self, *targets):
        """
        Lift the mutes on the accounts or nicknames C{targets}; fires with
        whether one was in force.
        """
        now = self._clock.seconds()
        keys = sorted({nickname_key(target) for target in targets})
        was_muted = any([self._in_force(key, now) is not None for key in keys])
        for key in keys:
            self._mutes.pop(key, None)
        removed = [self._store.remove_mute(key) for key in keys]
        return (
            defer.gatherResults(removed)
            .addCallback(lambda _: was_muted)
            .addCallback(self._told, "mutes")
        )

    def active(self):
        """
        The mutes in force now, oldest first.
        """
        now = self._clock.seconds()
        oldest_first = sorted(self._mutes.items(), key=lambda item: (item[1].at, item[0]))
        return [mute for key, mute in oldest_first if self._in_force(key, now) is not None]
