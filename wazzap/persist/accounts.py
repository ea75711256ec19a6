"""
Registered nicknames and their passwords, over the database and the password
hasher: the one place that decides who owns a nickname and who is an admin,
and how much password work one address may ask for.
"""

import functools

from twisted.internet import defer
from twisted.logger import Logger

from wazzap import text
from wazzap.core.records import Account, Refused, ReservedNickname
from wazzap.persist.passwords import (
    ACCOUNT_LANE,
    LOGIN_LANE,
    HasherBusy,
    LoginThrottle,
    RegistrationLimit,
)
from wazzap.persist.store import StoreError

#: What the log and the start-up message say about an --admin nickname nobody
#: has registered.
RESERVED_ADMIN = (
    "--admin {nickname}: no such account; the nickname is reserved: nobody may use or "
    "register it from the network. Create it with: wazzap-admin add {nickname} --admin "
    "(or: python -m wazzap.admin add {nickname} --admin)"
)


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
    Accounts stored by a L{wazzap.persist.store.Store}, passwords checked by a
    L{wazzap.persist.passwords.PasswordHasher}; both work off the reactor thread.

    Every password check goes through a L{LoginThrottle} (C{throttle}), and
    every registration through a L{RegistrationLimit}, both on C{clock}.

    C{admin_nicknames} (from C{--admin}) are flagged admin at start-up if
    they exist; those that do not are reserved (L{ReservedNickname}) until
    the admin command creates them.
    """

    log = Logger()

    def __init__(self, store, hasher, admin_nicknames=(), clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.store = store
        self.hasher = hasher
        self.admin_keys = frozenset(text.nickname_key(nickname) for nickname in admin_nicknames)
        self.throttle = LoginThrottle(clock)
        self.registrations = RegistrationLimit(clock)
        self._clock = clock
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
            log.warn(RESERVED_ADMIN, nickname=key)

    @defer.inlineCallbacks
    def close(self):
        """
        Let the registrations and password changes under way finish (their
        hashing first, then their writes), then close the hasher and the
        database; their threads stop with their services afterwards.
        """
        yield defer.gatherResults(list(self._under_way))
        self.hasher.close()
        yield self.store.close()

    def change_admins(self, admin_nicknames):
        """
        Take a new C{--admin} list (a reload) and flag its accounts; return
        a Deferred of the nicknames not registered yet, as L{flag_admins}.
        """
        self.admin_keys = frozenset(text.nickname_key(nickname) for nickname in admin_nicknames)
        return self.flag_admins()

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

    def unregistered_admins(self):
        """
        The C{--admin} nicknames with no account, read synchronously: for
        the start-up message, before the reactor runs.
        """
        return [
            key for key in sorted(self.admin_keys) if self.store.database.get_account(key) is None
        ]

    @defer.inlineCallbacks
    def lookup(self, nickname):
        """
        The account registered under C{nickname}, a L{ReservedNickname} for
        an C{--admin} nickname nobody registered, or L{None}; a Deferred.

        Always asked of the database, never of a copy in memory: the admin
        command may register an account while the server runs, and a
        registered nickname must never be let in without its password.
        """
        account = yield self.store.get_account(nickname)
        if account is None and text.nickname_key(nickname) in self.admin_keys:
            return ReservedNickname(nickname, "", False, 0.0)
        return account

    @defer.inlineCallbacks
    def log_in(self, nickname, password, address):
        """
        The account if C{password} is right for C{nickname}, else L{None};
        raise L{Refused} after too many wrong passwords, or when the server
        is too busy to check.
        """
        account = yield self._check(nickname, password, address, LOGIN_LANE)
        return account

    @_waited_for_at_close
    @defer.inlineCallbacks
    def register(self, nickname, password, address):
        """
        Register C{nickname} with C{password} for someone at C{address}; the
        account once it is committed, or L{None} if the nickname was
        registered already.  Raise L{Refused} for an C{--admin} nickname,
        past the registrations allowed from C{address}, or when the server
        cannot do it now.
        """
        if text.nickname_key(nickname) in self.admin_keys:
            raise Refused(
                "%s is reserved for an admin, who is created with the admin command" % (nickname,)
            )
        refusal = self.registrations.start(address)
        if refusal is not None:
            raise Refused(refusal)
        now = self._clock.seconds()
        try:
            password_hash = yield self.hasher.hash(password, ACCOUNT_LANE)
            created = yield self.store.create_account(nickname, password_hash, now)
        except (HasherBusy, StoreError) as e:
            self.registrations.finished(address, counted=False)
            raise self._refused(e, "registering " + nickname)
        self.registrations.finished(address)
        if not created:
            return None
        return Account(nickname, password_hash, False, now)

    @_waited_for_at_close
    @defer.inlineCallbacks
    def change_password(self, nickname, old, new, address):
        """
        Replace the password if C{old} is right; return whether it was.
        Raise L{Refused} as L{log_in} does, or if the change cannot be saved.
        """
        account = yield self._check(nickname, old, address, ACCOUNT_LANE)
        if account is None:
            return False
        try:
            password_hash = yield self.hasher.hash(new, ACCOUNT_LANE)
            yield self.store.set_password(nickname, password_hash)
        except (HasherBusy, StoreError) as e:
            raise self._refused(e, "changing the password of " + nickname)
        return True

    @_waited_for_at_close
    @defer.inlineCallbacks
    def unregister(self, nickname, password, address):
        """
        Delete the account if C{password} is right; return whether it was.
        Raise L{Refused} as L{log_in} does, or if the deletion cannot be saved.
        """
        account = yield self._check(nickname, password, address, ACCOUNT_LANE)
        if account is None:
            return False
        try:
            yield self.store.delete_account(nickname)
        except StoreError as e:
            raise self._refused(e, "deleting the account " + nickname)
        return True

    @defer.inlineCallbacks
    def _check(self, nickname, password, address, lane):
        """
        The account if C{password} is right, else L{None}: one guess, as the
        throttle counts them.
        """
        refusal = self.throttle.start(nickname, address)
        if refusal is not None:
            raise Refused(refusal)
        try:
            account = yield self.store.get_account(nickname)
            right = False
            if account is not None:
                right = yield self.hasher.verify(account.password_hash, password, lane)
        except (HasherBusy, StoreError) as e:
            self.throttle.abandoned(nickname, address)
            raise self._refused(e, "checking the password of " + nickname)
        except Exception:
            self.throttle.abandoned(nickname, address)
            raise
        if not right:
            self.throttle.failed(nickname, address)
            return None
        self.throttle.succeeded(nickname, address)
        return account

    def _refused(self, error, doing):
        """
        The L{Refused} to tell the user for a full hashing lane or a database
        that failed; the database's failure is logged, in one line.
        """
        if isinstance(error, HasherBusy):
            return Refused("the server is busy, try again in a moment")
        self.log.error("failed {doing}: {error}", doing=doing, error=str(error))
        if "locked" in str(error):
            return Refused("the database is busy, try again in a moment")
        return Refused("the database could not be used, so nothing was done")
