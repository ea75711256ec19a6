"""
Registered nicknames and their passwords, over the database and the password
hasher: the one place that decides who owns a nickname and who is an admin.
"""

import functools

from twisted.internet import defer

from wazzap import text


def _waited_for_at_close(method):
    """
    Mark an L{Accounts} method that hashes and then writes: L{Accounts.close}
    waits for the calls of it under way, so that a shutdown neither loses
    them nor has them fail on a closed database.
    """

    @functools.wraps(method)
    def tracked(self, *args, **kwargs):
        finished = defer.Deferred()
        self._under_way.add(finished)

        def done(result):
            self._under_way.discard(finished)
            finished.callback(None)
            return result

        return method(self, *args, **kwargs).addBoth(done)

    return tracked


class Accounts:
    """
    Accounts stored by a L{wazzap.store.Store}, passwords checked by a
    L{wazzap.passwords.PasswordHasher}; both work off the reactor thread.

    C{admin_nicknames} (from C{--admin}) are flagged admin at start-up if they
    exist, and as soon as they are registered otherwise.
    """

    def __init__(self, store, hasher, admin_nicknames=()):
        self.store = store
        self.hasher = hasher
        self.admin_keys = frozenset(text.nickname_key(nickname) for nickname in admin_nicknames)
        #: One Deferred per write under way, fired when it is done.
        self._under_way = set()

    @defer.inlineCallbacks
    def start(self, now, log):
        """
        Close sessions a crash left open and flag the configured admins.
        """
        yield self.store.close_dangling_sessions(now, "server stopped")
        missing = yield self.flag_admins()
        for key in missing:
            log.warn("--admin {nickname}: not registered yet; admin once it registers", nickname=key)

    @defer.inlineCallbacks
    def close(self):
        """
        Let the registrations and password changes under way finish (their
        hashing first, then their writes), then stop the hashing threads and
        the database.
        """
        yield defer.gatherResults(list(self._under_way))
        self.hasher.close()
        yield self.store.close()

    def flag_admins(self):
        """
        Flag the configured admins' accounts; return the nicknames not registered yet.
        """
        missing = []
        flagged = [
            self.store.set_admin(key, True).addCallback(
                lambda found, key=key: None if found else missing.append(key)
            )
            for key in sorted(self.admin_keys)
        ]
        return defer.gatherResults(flagged).addCallback(lambda _: missing)

    def lookup(self, nickname):
        """
        The account registered under C{nickname}, or L{None}; a Deferred.

        Always asked of the database, never of a copy in memory: the admin
        command may register an account while the server runs, and a
        registered nickname must never be let in without its password.
        """
        return self.store.get_account(nickname)

    @_waited_for_at_close
    @defer.inlineCallbacks
    def register(self, nickname, password):
        """
        Register C{nickname} with C{password}; the account once it is committed,
        or L{None} if the nickname was registered already.
        """
        password_hash = yield self.hasher.hash(password)
        created = yield self.store.create_account(nickname, password_hash)
        if not created:
            return None
        if text.nickname_key(nickname) in self.admin_keys:
            yield self.store.set_admin(nickname, True)
        account = yield self.store.get_account(nickname)
        return account

    @defer.inlineCallbacks
    def verify(self, nickname, password):
        """
        The account if C{password} is right for C{nickname}, else L{None}.
        """
        account = yield self.store.get_account(nickname)
        if account is None:
            return None
        right = yield self.hasher.verify(account.password_hash, password)
        return account if right else None

    @_waited_for_at_close
    @defer.inlineCallbacks
    def change_password(self, nickname, old, new):
        """
        Replace the password if C{old} is right; return whether it was.
        """
        account = yield self.verify(nickname, old)
        if account is None:
            return False
        password_hash = yield self.hasher.hash(new)
        yield self.store.set_password(nickname, password_hash)
        return True

    @_waited_for_at_close
    @defer.inlineCallbacks
    def unregister(self, nickname, password):
        """
        Delete the account if C{password} is right; return whether it was.
        """
        account = yield self.verify(nickname, password)
        if account is None:
            return False
        yield self.store.delete_account(nickname)
        return True
