"""
Password hashing, done off the reactor, and a brake on password guessing.

Passwords are hashed with argon2id through argon2-cffi.  Argon2id is
memory-hard, so every guess costs an attacker memory as well as time, which
takes away most of the advantage of GPUs and custom hardware; argon2-cffi is
the maintained binding to the reference implementation, and its hash strings
carry their own parameters, so raising them later only needs a rehash at the
next login (L{PasswordHasher.needs_rehash}).

One hash takes tens of milliseconds and C{ARGON2_MEMORY_KIB} of memory.  Done
in the reactor thread, every login would freeze everybody's chat for that
long; so L{PasswordHasher} runs them on a small thread pool of its own, and
the few threads also cap the memory that simultaneous logins can take.
"""

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

SECOND = 1
MINUTE = 60 * SECOND

# OWASP's current minimum for argon2id (Password Storage Cheat Sheet):
# 19 MiB of memory, 2 iterations, 1 degree of parallelism.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
ARGON2_HASH_BYTES = 32
ARGON2_SALT_BYTES = 16

#: Threads hashing at once; each holds ARGON2_MEMORY_KIB while it works.
HASHING_THREADS = 2

#: Wrong passwords one connection may send before the server closes it.
MAX_ATTEMPTS_PER_CONNECTION = 3
#: Failed logins on one account before each next attempt has to wait.
FREE_FAILURES_PER_NICKNAME = 3
#: Failed logins from one address before each next attempt has to wait;
#: more than per account, as many people may share an address behind NAT.
FREE_FAILURES_PER_ADDRESS = 10
#: The wait after the first failure beyond the allowance; it doubles with
#: each further failure, up to MAX_DELAY_SECONDS.
FIRST_DELAY_SECONDS = 1 * SECOND
MAX_DELAY_SECONDS = 30 * SECOND
#: Failures are forgotten this long after the last one.
FORGET_AFTER_SECONDS = 15 * MINUTE
#: At most this many accounts and addresses are tracked; beyond it the ones
#: that failed least recently are forgotten first, so a flood of guesses
#: from many addresses cannot exhaust memory.
MAX_TRACKED = 10000


MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 128


def password_problem(password):
    """
    Why C{password} cannot be used, or L{None}.
    """
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        return "a password is %d to %d characters" % (MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS)
    return None


def argon2_hasher():
    """
    argon2-cffi's hasher with wazzap's parameters; it blocks while it works,
    so the server calls it only through L{PasswordHasher}.
    """
    return argon2.PasswordHasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
        hash_len=ARGON2_HASH_BYTES,
        salt_len=ARGON2_SALT_BYTES,
        type=argon2.Type.ID,
    )


class PasswordHasher:
    """
    argon2id hashing and verification on a small pool of threads.

    The threads start with the first call and stop at L{close}, or when the
    reactor shuts down.
    """

    def __init__(self, reactor=None, threads=HASHING_THREADS):
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self._argon2 = argon2_hasher()
        self._pool = ThreadPool(threads, threads, "wazzap-passwords")
        self._shutdown_trigger = None
        self._closed = False

    def hash(self, password):
        """
        A Deferred firing with the argon2id hash string of C{password} (str).
        """
        return self._run(self._argon2.hash, password)

    def verify(self, password_hash, password):
        """
        A Deferred firing with whether C{password} matches C{password_hash}:
        False for a wrong password and for a hash that is not a valid argon2
        hash, never an error.
        """
        return self._run(self._verify, password_hash, password)

    def needs_rehash(self, password_hash):
        """
        Whether C{password_hash} was made with other parameters than these,
        so it should be replaced after the next successful login.  Cheap: no
        hashing involved.
        """
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    def _verify(self, password_hash, password):
        try:
            return self._argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            # VerifyMismatchError, a wrong password, is a VerificationError.
            return False

    def _run(self, function, *args):
        if self._closed:
            return defer.fail(RuntimeError("the password hasher is closed"))
        if not self._pool.started:
            self._pool.start()
            self._shutdown_trigger = self._reactor.addSystemEventTrigger(
                "during", "shutdown", self._close_at_shutdown
            )
        return deferToThreadPool(self._reactor, self._pool, function, *args)

    def _close_at_shutdown(self):
        # The reactor has already dropped this trigger: close must not
        # remove it again.
        self._shutdown_trigger = None
        return self.close()

    def close(self):
        """
        Stop the threads, after the hashes under way; later calls fail.
        Returns a Deferred that has fired, for symmetry with
        L{wazzap.store.Store.close}.
        """
        self._closed = True
        if self._pool.started:
            self._pool.stop()
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        return defer.succeed(None)


class LoginThrottle:
    """
    Counts failed logins per account and per address, and says how long the
    next attempt must wait: nothing within a small allowance, then a delay
    that doubles with each failure up to a cap.

    A success clears the account's count but not the address's: otherwise a
    guesser could reset their address's count by logging in to an account of
    their own between guesses.  Counts are forgotten C{forget_after} seconds
    after their last failure.
    """

    def __init__(
        self,
        clock,
        free_failures_per_nickname=FREE_FAILURES_PER_NICKNAME,
        free_failures_per_address=FREE_FAILURES_PER_ADDRESS,
        first_delay=FIRST_DELAY_SECONDS,
        max_delay=MAX_DELAY_SECONDS,
        forget_after=FORGET_AFTER_SECONDS,
        max_tracked=MAX_TRACKED,
    ):
        self._clock = clock
        self._free = {"nickname": free_failures_per_nickname, "address": free_failures_per_address}
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._forget_after = forget_after
        self._max_tracked = max_tracked
        # (kind, key) -> (failures, time of the last one), ordered from the
        # least to the most recent failure, so expiry only looks at the front.
        self._failures = {}

    def __len__(self):
        """
        How many accounts and addresses are tracked.
        """
        return len(self._failures)

    def delay(self, nickname, address):
        """
        Seconds the next login attempt on C{nickname} from C{address} must
        wait; 0 if it may go ahead now.
        """
        now = self._clock.seconds()
        self._forget(now)
        return max(self._wait(key, now) for key in self._keys(nickname, address))

    def failed(self, nickname, address):
        """
        Count a wrong password for C{nickname} from C{address}.
        """
        now = self._clock.seconds()
        self._forget(now)
        for key in self._keys(nickname, address):
            failures, _ = self._failures.pop(key, (0, now))
            self._failures[key] = (failures + 1, now)
        while len(self._failures) > self._max_tracked:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, nickname, address):
        """
        Forget the failures on C{nickname}, whose password was just given.
        """
        self._failures.pop(("nickname", nickname.lower()), None)

    def _keys(self, nickname, address):
        return [("nickname", nickname.lower()), ("address", address)]

    def _wait(self, key, now):
        failures, last = self._failures.get(key, (0, now))
        beyond = failures - self._free[key[0]]
        if beyond < 0:
            return 0
        # Exponent capped so a long run of failures cannot overflow a float.
        penalty = min(self._first_delay * 2 ** min(beyond, 64), self._max_delay)
        return max(last + penalty - now, 0)

    def _forget(self, now):
        while self._failures:
            key = next(iter(self._failures))
            if self._failures[key][1] + self._forget_after > now:
                break
            del self._failures[key]
