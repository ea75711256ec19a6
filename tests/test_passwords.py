"""
Tests for L{wazzap.persist.passwords}: argon2id hashing on real threads, with a
reactor stand-in that carries results back to the test, and the login
throttle driven by a L{Clock}.
"""

import threading

import argon2
import pytest
from twisted.internet.task import Clock

from tests.doubles import ThreadedReactor, started_threads
from wazzap.persist import passwords
from wazzap.persist.passwords import (
    ACCOUNT_LANE,
    GUESS_WINDOW_SECONDS,
    HASHING_THREADS,
    GUESSES_PER_ACCOUNT,
    GUESSES_PER_ACCOUNT_AND_ADDRESS,
    GUESSES_PER_ADDRESS,
    LOGIN_LANE,
    HasherBusy,
    LoginThrottle,
    PasswordHasher,
    RegistrationLimit,
)


@pytest.fixture
def reactor():
    return ThreadedReactor()


@pytest.fixture
def hasher(reactor):
    threads = started_threads(reactor, HASHING_THREADS)
    hasher = PasswordHasher(threads)
    yield hasher
    hasher.close()
    reactor.wait(threads.stopService())


def test_owasp_minimum():
    """The parameters are OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane."""
    assert passwords.ARGON2_MEMORY_KIB == 19456
    assert passwords.ARGON2_TIME_COST == 2
    assert passwords.ARGON2_PARALLELISM == 1
    assert passwords.MAX_ATTEMPTS_PER_CONNECTION == 3


def test_round_trip(hasher, reactor):
    """A password verifies against its own hash."""
    password_hash = reactor.wait(hasher.hash("correct horse ☃"))
    assert reactor.wait(hasher.verify(password_hash, "correct horse ☃")) is True


def test_hash_parameters(hasher, reactor):
    """The hash string is argon2id with the module's parameters."""
    password_hash = reactor.wait(hasher.hash("secret"))
    assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    parameters = argon2.extract_parameters(password_hash)
    assert parameters.type is argon2.Type.ID
    assert parameters.hash_len == passwords.ARGON2_HASH_BYTES
    assert parameters.salt_len == passwords.ARGON2_SALT_BYTES
    assert not hasher.needs_rehash(password_hash)


def test_salted(hasher, reactor):
    """The same password hashes differently each time."""
    assert reactor.wait(hasher.hash("secret")) != reactor.wait(hasher.hash("secret"))


def test_wrong_password(hasher, reactor):
    """A wrong password verifies as False rather than failing."""
    password_hash = reactor.wait(hasher.hash("secret"))
    assert reactor.wait(hasher.verify(password_hash, "Secret")) is False


def test_invalid_hash(hasher, reactor):
    """A hash that is not argon2 verifies as False and needs a rehash."""
    assert reactor.wait(hasher.verify("not a hash", "secret")) is False
    assert reactor.wait(hasher.verify("", "secret")) is False
    assert hasher.needs_rehash("not a hash")


def test_weaker_hash_needs_rehash(hasher):
    """A hash made with weaker parameters is flagged for a rehash."""
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")
    assert hasher.needs_rehash(weak)


def test_hashing_off_the_calling_thread(reactor):
    """Hashing runs on the hasher's own threads; close refuses more work, and the service stops them."""
    threads = started_threads(reactor, 1)
    hasher = PasswordHasher(threads)
    seen = []
    real = hasher._argon2

    class Watched:
        def hash(self, password):
            seen.append(threading.current_thread())
            return real.hash(password)

    hasher._argon2 = Watched()
    reactor.wait(hasher.hash("secret"))
    assert seen and seen[0] is not threading.current_thread()
    reactor.wait(hasher.close())
    with pytest.raises(RuntimeError):
        reactor.wait(hasher.hash("again"))
    reactor.wait(threads.stopService())
    assert not seen[0].is_alive()


def blocked_hasher(reactor, **options):
    """
    A hasher with one thread, kept busy by a first hash until the returned
    event is set; the order later calls run in is appended to the list.
    The thread's service comes last, for the test to stop.
    """
    threads = started_threads(reactor, 1)
    hasher = PasswordHasher(threads, **options)
    real, order, release = hasher._argon2, [], threading.Event()

    class Recorded:
        def hash(self, password):
            if password == "first":
                release.wait(5)
            order.append(password)
            return real.hash(password)

        def verify(self, password_hash, password):
            order.append(password)
            return real.verify(password_hash, password)

    hasher._argon2 = Recorded()
    hasher.hash("first")
    return hasher, order, release, threads


def test_logins_go_before_other_hashing(reactor):
    """A login waiting behind other hashing work runs as soon as a thread is free."""
    hasher, order, release, threads = blocked_hasher(reactor)
    try:
        others = [hasher.hash("other %d" % (i,), ACCOUNT_LANE) for i in range(3)]
        login = hasher.hash("login", LOGIN_LANE)
        release.set()
        reactor.wait(login)
        for other in others:
            reactor.wait(other)
        assert order == ["first", "login", "other 0", "other 1", "other 2"]
    finally:
        release.set()
        hasher.close()
        reactor.wait(threads.stopService())


def test_full_lane_is_busy(reactor):
    """A lane holds a bounded number of waiting hashes; past it calls fail at once, other lanes still work."""
    hasher, order, release, threads = blocked_hasher(reactor, max_queued=2)
    try:
        queued = [hasher.hash("other %d" % (i,)) for i in range(2)]
        with pytest.raises(HasherBusy):
            reactor.wait(hasher.hash("one too many"))
        login = hasher.verify("not a hash", "guess", LOGIN_LANE)
        release.set()
        assert reactor.wait(login) is False
        for other in queued:
            reactor.wait(other)
    finally:
        release.set()
        hasher.close()
        reactor.wait(threads.stopService())


# LoginThrottle


def guess(throttle, times, right=False, nickname="alice", address="10.0.0.1"):
    """
    Make C{times} guesses that are wrong, or right; return the last refusal.
    """
    refusal = None
    for _ in range(times):
        refusal = throttle.start(nickname, address)
        if refusal is None:
            (throttle.succeeded if right else throttle.failed)(nickname, address)
    return refusal


def test_guesses_per_account_and_address():
    """One address gets a few wrong passwords at one account per window, then is refused."""
    throttle = LoginThrottle(Clock())
    assert guess(throttle, GUESSES_PER_ACCOUNT_AND_ADDRESS) is None
    assert throttle.refusal("ALICE", "10.0.0.1") == (
        "too many wrong passwords for ALICE from your address: try again in 15 minutes"
    )
    assert throttle.refusal("alice", "10.0.0.2") is None
    assert throttle.refusal("bob", "10.0.0.1") is None
    assert GUESSES_PER_ACCOUNT_AND_ADDRESS == 5 and GUESS_WINDOW_SECONDS == 15 * 60


def test_guesses_in_flight_count():
    """Guesses still being checked count, so parallel connections cannot slip past the limit."""
    throttle = LoginThrottle(Clock())
    started = [throttle.start("alice", "10.0.0.1") for _ in range(GUESSES_PER_ACCOUNT_AND_ADDRESS + 3)]
    assert started[:GUESSES_PER_ACCOUNT_AND_ADDRESS] == [None] * GUESSES_PER_ACCOUNT_AND_ADDRESS
    assert started[-1] == "too many wrong passwords for alice from your address: try again in a moment"
    for _ in range(GUESSES_PER_ACCOUNT_AND_ADDRESS):
        throttle.abandoned("alice", "10.0.0.1")
    assert throttle.refusal("alice", "10.0.0.1") is None


def test_window_slides():
    """A wrong password stops counting a window after it was made."""
    clock = Clock()
    throttle = LoginThrottle(clock)
    guess(throttle, 1)
    clock.advance(60)
    guess(throttle, GUESSES_PER_ACCOUNT_AND_ADDRESS - 1)
    assert "try again in 14 minutes" in throttle.refusal("alice", "10.0.0.1")
    clock.advance(GUESS_WINDOW_SECONDS - 60)
    assert throttle.refusal("alice", "10.0.0.1") is None
    assert guess(throttle, 2) is not None


def test_per_address():
    """Wrong passwords from one address on many accounts stop that address, and only it."""
    throttle = LoginThrottle(Clock())
    for i in range(GUESSES_PER_ADDRESS):
        guess(throttle, 1, nickname="user%d" % (i,))
    assert throttle.refusal("newcomer", "10.0.0.1") == (
        "too many wrong passwords from your address: try again in 15 minutes"
    )
    assert throttle.refusal("newcomer", "10.0.0.2") is None


def test_per_account_from_everywhere():
    """Wrong passwords for one account from many addresses stop at a cap far above one address's."""
    throttle = LoginThrottle(Clock())
    for i in range(GUESSES_PER_ACCOUNT):
        assert guess(throttle, 1, address="10.0.%d.%d" % (i // 200, i % 200)) is None
    assert throttle.refusal("alice", "10.9.9.9") == (
        "too many wrong passwords for alice from everywhere lately: try again in 15 minutes"
    )
    assert GUESSES_PER_ACCOUNT >= 10 * GUESSES_PER_ACCOUNT_AND_ADDRESS


def test_success_clears_account_and_address_only():
    """A right password forgets this address's failures on the account, not the address's."""
    throttle = LoginThrottle(Clock())
    guess(throttle, GUESSES_PER_ACCOUNT_AND_ADDRESS - 1)
    guess(throttle, 1, right=True, nickname="Alice")
    assert guess(throttle, GUESSES_PER_ACCOUNT_AND_ADDRESS - 1) is None
    throttle = LoginThrottle(Clock())
    for i in range(GUESSES_PER_ADDRESS - 1):
        guess(throttle, 1, nickname="user%d" % (i,))
    guess(throttle, 1, right=True, nickname="mine")
    assert guess(throttle, 1, nickname="next") is None
    assert throttle.refusal("other", "10.0.0.1") is not None


def test_counts_expire():
    """Counts are forgotten a window after their last failure, and so is their memory."""
    clock = Clock()
    throttle = LoginThrottle(clock)
    guess(throttle, 3)
    assert len(throttle) == 3
    clock.advance(GUESS_WINDOW_SECONDS)
    assert throttle.refusal("alice", "10.0.0.1") is None
    assert len(throttle) == 0


def test_memory_bounded():
    """No more than max_tracked counts are kept, the least recently used dropped first."""
    clock = Clock()
    throttle = LoginThrottle(clock, max_tracked=10)
    for i in range(100):
        clock.advance(0.001)
        guess(throttle, 1, nickname="user%d" % (i,), address="10.0.%d.1" % (i,))
    assert len(throttle) == 10


def test_registrations_per_address():
    """An address gets a few registrations per window; those the server could not do do not count."""
    clock = Clock()
    limit = RegistrationLimit(clock, limit=2, window=3600)
    for _ in range(2):
        assert limit.start("10.0.0.1") is None
        limit.finished("10.0.0.1")
    assert limit.start("10.0.0.1") == (
        "your address made 2 registrations in the last 60 minutes: try again in 60 minutes"
    )
    assert limit.start("10.0.0.2") is None
    limit.finished("10.0.0.2", counted=False)
    assert limit.start("10.0.0.2") is None
    clock.advance(3600)
    assert limit.start("10.0.0.1") is None
