"""
Tests for L{wazzap.passwords}: argon2id hashing on real threads, with a
reactor stand-in that carries results back to the test, and the login
throttle driven by a L{Clock}.
"""

import threading

import argon2
import pytest
from twisted.internet.task import Clock

from tests.test_store import ThreadedReactor
from wazzap import passwords
from wazzap.passwords import (
    FIRST_DELAY_SECONDS,
    FORGET_AFTER_SECONDS,
    FREE_FAILURES_PER_ADDRESS,
    FREE_FAILURES_PER_NICKNAME,
    MAX_DELAY_SECONDS,
    LoginThrottle,
    PasswordHasher,
)


@pytest.fixture
def reactor():
    return ThreadedReactor()


@pytest.fixture
def hasher(reactor):
    hasher = PasswordHasher(reactor=reactor)
    yield hasher
    hasher.close()


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
    """Hashing runs on the hasher's own threads, and close stops them."""
    hasher = PasswordHasher(reactor=reactor, threads=1)
    seen = []
    real = hasher._argon2

    class Watched:
        def hash(self, password):
            seen.append(threading.current_thread())
            return real.hash(password)

    hasher._argon2 = Watched()
    reactor.wait(hasher.hash("secret"))
    assert seen and seen[0] is not threading.current_thread()
    assert len(reactor.triggers) == 1
    reactor.wait(hasher.close())
    assert not seen[0].is_alive()
    assert reactor.triggers == []
    with pytest.raises(RuntimeError):
        reactor.wait(hasher.hash("again"))


def test_close_unused(reactor):
    """A hasher never used closes without having started threads."""
    hasher = PasswordHasher(reactor=reactor)
    reactor.wait(hasher.close())
    assert hasher._pool.threads == []


# LoginThrottle


def fail(throttle, times, nickname="alice", address="10.0.0.1"):
    for _ in range(times):
        throttle.failed(nickname, address)


def test_free_allowance():
    """The first few failures on an account cost nothing."""
    throttle = LoginThrottle(Clock())
    fail(throttle, FREE_FAILURES_PER_NICKNAME - 1)
    assert throttle.delay("alice", "10.0.0.1") == 0


def test_delay_doubles_to_cap():
    """Beyond the allowance the wait doubles with each failure, up to the cap."""
    throttle = LoginThrottle(Clock())
    fail(throttle, FREE_FAILURES_PER_NICKNAME)
    delays = []
    for _ in range(8):
        delays.append(throttle.delay("ALICE", "10.0.0.2"))
        throttle.failed("alice", "10.0.0.2")
    assert delays == [1, 2, 4, 8, 16, MAX_DELAY_SECONDS, MAX_DELAY_SECONDS, MAX_DELAY_SECONDS]
    assert FIRST_DELAY_SECONDS == 1 and MAX_DELAY_SECONDS == 30


def test_delay_counts_down():
    """The wait runs from the last failure and reaches 0 as the clock moves on."""
    clock = Clock()
    throttle = LoginThrottle(clock)
    fail(throttle, FREE_FAILURES_PER_NICKNAME + 2)
    assert throttle.delay("alice", "10.0.0.1") == 4
    clock.advance(3)
    assert throttle.delay("alice", "10.0.0.1") == 1
    clock.advance(1)
    assert throttle.delay("alice", "10.0.0.1") == 0


def test_per_address():
    """Failures from one address on many accounts slow that address down, and only it."""
    throttle = LoginThrottle(Clock())
    for i in range(FREE_FAILURES_PER_ADDRESS):
        throttle.failed("user%d" % (i,), "10.0.0.1")
    assert throttle.delay("newcomer", "10.0.0.1") == FIRST_DELAY_SECONDS
    assert throttle.delay("newcomer", "10.0.0.2") == 0


def test_success_clears_account_only():
    """A success forgets the account's failures but not the address's."""
    throttle = LoginThrottle(Clock())
    fail(throttle, FREE_FAILURES_PER_ADDRESS, nickname="alice")
    throttle.succeeded("Alice", "10.0.0.1")
    assert throttle.delay("alice", "10.0.0.9") == 0
    assert throttle.delay("bob", "10.0.0.1") > 0


def test_failures_expire():
    """Failures are forgotten a while after the last one, and so is their memory."""
    clock = Clock()
    throttle = LoginThrottle(clock)
    fail(throttle, 20)
    assert len(throttle) == 2
    clock.advance(FORGET_AFTER_SECONDS)
    assert throttle.delay("alice", "10.0.0.1") == 0
    assert len(throttle) == 0


def test_memory_bounded():
    """No more than max_tracked entries are kept, the oldest dropped first."""
    clock = Clock()
    throttle = LoginThrottle(clock, max_tracked=10)
    for i in range(100):
        clock.advance(0.001)
        throttle.failed("user%d" % (i,), "10.0.%d.1" % (i,))
    assert len(throttle) == 10
    throttle.failed("user99", "10.0.99.1")
    assert len(throttle) == 10
