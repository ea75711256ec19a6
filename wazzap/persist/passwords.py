"""
Password hashing, done off the reactor, and brakes on password guessing and
on registrations.

Passwords are hashed with argon2id through argon2-cffi.  Argon2id is
memory-hard, so every guess costs an attacker memory as well as time, which
takes away most of the advantage of GPUs and custom hardware; argon2-cffi is
the maintained binding to the reference implementation, and its hash strings
carry their own parameters, so raising them later only needs a rehash at the
next login (L{PasswordHasher.needs_rehash}).

One hash takes tens of milliseconds and C{ARGON2_MEMORY_KIB} of memory.  Done
in the reactor thread, every login would freeze everybody's chat for that
long; so L{PasswordHasher} runs them on a small pool of threads of their own
(a L{wazzap.threads.ThreadPoolService} of L{HASHING_THREADS}), and the few
threads also cap the memory that simultaneous logins can take.  Work
waits in two bounded lanes, logins first, so a flood of C{/password} commands
neither delays people logging in nor queues without end.

L{LoginThrottle} counts wrong passwords (and guesses still being checked)
over a sliding window, per account and address, per address, and per
account; L{RegistrationLimit} counts registrations per address.
"""

import math
from collections import deque

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet import defer
from twisted.python.failure import Failure

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
#: The lanes hashing work waits in: logins are served first.
LOGIN_LANE = "login"
ACCOUNT_LANE = "account"
#: Hashes that may wait in one lane; beyond it the server says it is busy.
#: 100 logins take about 2 s to check on two threads.
MAX_QUEUED_HASHES = 100

#: Wrong passwords one connection may send before the server closes it.
MAX_ATTEMPTS_PER_CONNECTION = 3
#: Wrong passwords are counted over this sliding window.
GUESS_WINDOW_SECONDS = 15 * MINUTE
#: Wrong passwords for one account from one address per window: room for
#: its owner's typos, and all one address gets at one account.
GUESSES_PER_ACCOUNT_AND_ADDRESS = 5
#: Wrong passwords from one address, on any accounts, per window; more than
#: per account, as many people may share an address behind NAT.
GUESSES_PER_ADDRESS = 20
#: Wrong passwords for one account from all addresses together per window:
#: far above what its owner does, it caps a guesser with many addresses.
GUESSES_PER_ACCOUNT = 100
#: Registrations one address may make per window.
REGISTRATION_WINDOW_SECONDS = 60 * MINUTE
REGISTRATIONS_PER_ADDRESS = 5
#: At most this many counts (of accounts, addresses, pairs) are tracked;
#: beyond it the least recently used are forgotten first, so a flood of
#: guesses from many addresses cannot exhaust memory.
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


class HasherBusy(Exception):
    """
    A lane of L{PasswordHasher} is full: the server is busy, try again soon.
    """


class PasswordHasher:
    """
    argon2id hashing and verification on the C{threads} of a
    L{wazzap.threads.ThreadPoolService}.

    Work waits in two lanes, L{LOGIN_LANE} served before L{ACCOUNT_LANE},
    and only as many calls as there are threads are handed to them, so a
    login never waits behind more than the hashes already running.  A lane
    holds at most C{max_queued} waiting calls; beyond that a call fails at
    once with L{HasherBusy}.
    """

    def __init__(self, threads, max_queued=MAX_QUEUED_HASHES):
        self._argon2 = argon2_hasher()
        self._threads = threads
        self._lanes = {LOGIN_LANE: deque(), ACCOUNT_LANE: deque()}
        self._max_queued = max_queued
        self._running = 0
        self._closed = False

    def hash(self, password, lane=ACCOUNT_LANE):
        """
        A Deferred firing with the argon2id hash string of C{password} (str).
        """
        return self._run(lane, self._argon2.hash, password)

    def verify(self, password_hash, password, lane=ACCOUNT_LANE):
        """
        A Deferred firing with whether C{password} matches C{password_hash}:
        False for a wrong password and for a hash that is not a valid argon2
        hash, never an error.
        """
        return self._run(lane, self._verify, password_hash, password)

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

    def _run(self, lane, function, *args):
        if self._closed:
            return defer.fail(RuntimeError("the password hasher is closed"))
        waiting = self._lanes[lane]
        if len(waiting) >= self._max_queued:
            return defer.fail(HasherBusy("the %s lane holds %d hashes" % (lane, len(waiting))))
        result = defer.Deferred()
        waiting.append((result, function, args))
        self._dispatch()
        return result

    def _dispatch(self):
        """
        Hand waiting calls to free threads, logins first.
        """
        while self._running < self._threads.size and not self._closed:
            lane = self._lanes[LOGIN_LANE] or self._lanes[ACCOUNT_LANE]
            if not lane:
                return
            result, function, args = lane.popleft()
            self._running += 1
            done = self._threads.run(function, *args)
            done.addBoth(self._finished, result)

    def _finished(self, outcome, result):
        self._running -= 1
        self._dispatch()
        if isinstance(outcome, Failure):
            result.errback(outcome)
        else:
            result.callback(outcome)

    def close(self):
        """
        Take no more work: calls still waiting and later calls fail, the
        hashes under way finish (their threads stop with their service).
        Returns a Deferred that has fired, for symmetry with
        L{wazzap.persist.store.Store.close}.
        """
        self._closed = True
        for lane in self._lanes.values():
            while lane:
                lane.popleft()[0].errback(RuntimeError("the password hasher is closed"))
        return defer.succeed(None)


class _Tally:
    """
    The recent events of one key, oldest first, and those still in flight.
    """

    __slots__ = ("times", "in_flight")

    def __init__(self):
        self.times = deque()
        self.in_flight = 0


class WindowCounts:
    """
    Events per key over a sliding window of C{window} seconds, counting
    those still in flight (started, not yet known to count) as if they had
    happened: so parallel attempts cannot slip past a limit together.

    At most C{max_tracked} keys are kept, the least recently used forgotten
    first.
    """

    def __init__(self, clock, window, max_tracked=MAX_TRACKED):
        self._clock = clock
        self._window = window
        self._max_tracked = max_tracked
        # Ordered from the least to the most recently used, so forgetting
        # only looks at the front.
        self._tallies = {}

    def __len__(self):
        return len(self._tallies)

    def count(self, key):
        """
        Events of C{key} in the window, in flight included.
        """
        tally = self._current(key)
        return 0 if tally is None else len(tally.times) + tally.in_flight

    def seconds_until_below(self, key, limit):
        """
        Seconds until C{key} counts fewer than C{limit}, as far as the
        events in the window say: 0 where only events in flight hold it up.
        """
        tally = self._current(key)
        if tally is None:
            return 0
        excess = len(tally.times) + tally.in_flight - limit
        if excess < 0 or excess >= len(tally.times):
            return 0
        return tally.times[excess] + self._window - self._clock.seconds()

    def begin(self, key):
        """
        Count an event in flight for C{key}, until L{end}.
        """
        self._touch(key).in_flight += 1

    def end(self, key, counted):
        """
        An event L{begin} counted is over: it stays in the window if
        C{counted}, else it is as if it never happened.
        """
        tally = self._tallies.get(key)
        if tally is None:
            return  # forgotten to make room meanwhile
        tally.in_flight -= 1
        if counted:
            self._touch(key).times.append(self._clock.seconds())

    def clear(self, key):
        """
        Forget the past events of C{key}; those in flight still count.
        """
        tally = self._tallies.get(key)
        if tally is not None:
            tally.times.clear()

    def _current(self, key):
        now = self._clock.seconds()
        self._forget(now)
        tally = self._tallies.get(key)
        if tally is not None:
            times = tally.times
            while times and times[0] + self._window <= now:
                times.popleft()
        return tally

    def _touch(self, key):
        tally = self._tallies.pop(key, None) or _Tally()
        self._tallies[key] = tally
        while len(self._tallies) > self._max_tracked:
            del self._tallies[next(iter(self._tallies))]
        return tally

    def _forget(self, now):
        tallies = self._tallies
        while tallies:
            key = next(iter(tallies))
            tally = tallies[key]
            if tally.in_flight or (tally.times and tally.times[-1] + self._window > now):
                break
            del tallies[key]


def _try_again(seconds):
    if seconds <= 0:
        return "try again in a moment"
    minutes = math.ceil(seconds / MINUTE)
    return "try again in %d minute%s" % (minutes, "" if minutes == 1 else "s")


class LoginThrottle:
    """
    Counts wrong passwords over a sliding window, and refuses a guess that
    would go over a limit: per account from one address, per address, and
    per account from everywhere.  Guesses being checked count as wrong until
    they are known to be right, so parallel connections gain nothing.

    An account's own limit is per address: a guesser elsewhere cannot make
    its owner wait, unless it spends the account-wide allowance, which is
    far above what a person does.  A right password clears the count of its
    account and address, but not the address's: otherwise a guesser could
    reset their address's count by logging in to an account of their own
    between guesses.
    """

    def __init__(
        self,
        clock,
        per_account_and_address=GUESSES_PER_ACCOUNT_AND_ADDRESS,
        per_address=GUESSES_PER_ADDRESS,
        per_account=GUESSES_PER_ACCOUNT,
        window=GUESS_WINDOW_SECONDS,
        max_tracked=MAX_TRACKED,
    ):
        self._counts = WindowCounts(clock, window, max_tracked)
        self._limits = (per_account_and_address, per_address, per_account)

    def __len__(self):
        """
        How many accounts, addresses and pairs of them are tracked.
        """
        return len(self._counts)

    def refusal(self, nickname, address):
        """
        Why a guess at C{nickname}'s password from C{address} may not be
        checked now (what to tell the user), or L{None}.
        """
        scopes = (
            "for %s from your address" % (nickname,),
            "from your address",
            "for %s from everywhere lately" % (nickname,),
        )
        for key, limit, scope in zip(self._keys(nickname, address), self._limits, scopes):
            if self._counts.count(key) >= limit:
                return "too many wrong passwords %s: %s" % (
                    scope,
                    _try_again(self._counts.seconds_until_below(key, limit)),
                )
        return None

    def start(self, nickname, address):
        """
        Count a guess in flight and return L{None}, or return the
        L{refusal} without counting it.  Every guess started ends in
        L{succeeded}, L{failed} or L{abandoned}.
        """
        refusal = self.refusal(nickname, address)
        if refusal is None:
            for key in self._keys(nickname, address):
                self._counts.begin(key)
        return refusal

    def failed(self, nickname, address):
        """
        The guess was wrong: it counts for the whole window.
        """
        for key in self._keys(nickname, address):
            self._counts.end(key, counted=True)

    def succeeded(self, nickname, address):
        """
        The password was right: forget this address's failures on the account.
        """
        pair = self._keys(nickname, address)[0]
        for key in self._keys(nickname, address):
            self._counts.end(key, counted=False)
        self._counts.clear(pair)

    def abandoned(self, nickname, address):
        """
        The guess could not be checked (the server was busy): it does not count.
        """
        for key in self._keys(nickname, address):
            self._counts.end(key, counted=False)

    def _keys(self, nickname, address):
        account = nickname.lower()
        return [("pair", account, address), ("address", address), ("account", account)]


class RegistrationLimit:
    """
    At most C{limit} registrations from one address per sliding window.
    """

    def __init__(
        self, clock, limit=REGISTRATIONS_PER_ADDRESS, window=REGISTRATION_WINDOW_SECONDS,
        max_tracked=MAX_TRACKED,
    ):
        self._counts = WindowCounts(clock, window, max_tracked)
        self._limit = limit
        self._window = window

    def start(self, address):
        """
        Count a registration from C{address} in flight and return L{None},
        or return why it is refused (what to tell the user).  Every one
        started ends in L{finished}.
        """
        if self._counts.count(address) >= self._limit:
            return "your address made %d registrations in the last %d minutes: %s" % (
                self._limit,
                self._window // MINUTE,
                _try_again(self._counts.seconds_until_below(address, self._limit)),
            )
        self._counts.begin(address)
        return None

    def finished(self, address, counted=True):
        """
        A registration L{start}ed is over; it counts unless C{counted} is false
        (the server could not do it).
        """
        self._counts.end(address, counted)
