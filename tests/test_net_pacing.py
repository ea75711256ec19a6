"""
The allowance (token bucket) on a Clock.
"""

from twisted.internet.task import Clock

from wazzap.net.pacing import Allowance, Pace


def test_a_burst_at_once_then_the_rate():
    """A whole burst is allowed at once; then one more each 1/rate seconds."""
    clock = Clock()
    allowance = Allowance(clock, 3, 2)
    assert [allowance.wait() for _ in range(3)] == [0, 0, 0]
    assert allowance.wait() == 0.5
    clock.advance(0.5)
    assert allowance.wait() == 0
    assert not allowance.full()
    clock.advance(1.5)
    assert allowance.full()


def test_a_rate_of_zero_allows_everything():
    """With a rate of 0 there is no limit."""
    allowance = Allowance(Clock(), 1, 0)
    assert all(allowance.wait() == 0 for _ in range(100))


def test_a_timer_set_for_the_wait_finds_a_whole_token():
    """Waiting exactly the time returned is enough, rounding errors and all."""
    clock = Clock()
    allowance = Allowance(clock, 1, 3, tokens=0)
    for _ in range(30):
        clock.advance(allowance.wait())
        assert allowance.wait() == 0


def test_a_bucket_is_one_float_under_a_shared_pace():
    """A pace reads and takes from a bucket that is only the time it is full again."""
    clock = Clock()
    pace = Pace(clock, 2, 1)
    full_at = pace.holding()
    assert pace.tokens(full_at) == 2
    wait, full_at = pace.take(full_at)
    assert wait == 0 and full_at == 1.0 and pace.tokens(full_at) == 1
    clock.advance(0.5)
    assert pace.tokens(full_at) == 1.5
    faster = Pace(clock, 1, 4)
    assert faster.tokens(pace.moved(full_at, faster)) == 1
