"""
Tests for L{wazzap.login}: from the nickname prompt to joining and leaving,
over L{tests.doubles}, driven by a L{Clock}.
"""

from twisted.logger import capturedLogs

from tests.doubles import Connection, make_factory
from wazzap.store import BUSY_TIMEOUT_SECONDS


def test_failed_session_write_does_not_stop_the_chat():
    """A join whose session cannot be recorded still leaves cleanly, logged in one line each way."""
    factory = make_factory(locked=True)
    with capturedLogs() as events:
        alice = Connection(factory).join("alice")
        alice.close()
        factory.clock.advance(BUSY_TIMEOUT_SECONDS)
        bob = Connection(factory, port=40001).join("bob")
        bob.close()
        factory.clock.advance(BUSY_TIMEOUT_SECONDS)
    assert factory.chat.find("alice") is None and len(factory.chat) == 0
    errors = [event for event in events if "could not record" in event.get("log_format", "")]
    assert len(errors) == 2
    assert all("log_failure" not in event for event in errors)
    assert "locked by another process" in errors[0]["error"]
