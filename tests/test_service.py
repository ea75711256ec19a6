"""
The service's duties, without a reactor: the open-file limit, the options
that build it, how it writes addresses, the retention of the login history,
and an orderly shutdown.
"""

import resource

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, formatEvent

from tests.doubles import SynchronousHasher, SynchronousStore
from wazzap.app import service, tap
from wazzap.persist.accounts import Accounts
from wazzap.persist.store import StoreError


class RecordingLog:
    """
    Keeps each log call's level and formatted message.
    """

    def __init__(self):
        self.events = []

    def _record(self, level):
        return lambda fmt, **fields: self.events.append((level, fmt.format(**fields)))

    def __getattr__(self, level):
        return self._record(level)


def test_open_file_limit_raised_and_cap_announced(monkeypatch):
    """The soft limit is raised to the hard one, and a cap below the wanted number is a warning."""
    limits = {"now": (1024, 4096)}
    monkeypatch.setattr(resource, "getrlimit", lambda kind: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda kind, value: limits.update(now=value))
    log = RecordingLog()
    assert service.raise_open_file_limit(log) == 4096
    assert limits["now"] == (4096, 4096)
    [(level, message)] = log.events
    assert level == "warn"
    assert "caps wazzap at about 4064 clients" in message


def test_generous_open_file_limit_is_information(monkeypatch):
    """A limit past the wanted number is logged as information, not a warning."""
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (1 << 20, 1 << 20))
    log = RecordingLog()
    service.raise_open_file_limit(log)
    assert [level for level, _ in log.events] == ["info"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("5555", "tcp:5555:backlog=1024"),
        ("tcp:6000:interface=127.0.0.1", "tcp:6000:interface=127.0.0.1:backlog=1024"),
        ("tcp:6000:backlog=10", "tcp:6000:backlog=10"),
        ("unix:/tmp/wazzap.sock", "unix:/tmp/wazzap.sock"),
    ],
)
def test_port_option_forms(value, expected):
    """--port takes a number or an endpoint, and TCP listens with a generous backlog."""
    options = tap.Options()
    options.parseOptions(["--port", value])
    [description] = options["port"]
    assert service.with_backlog(description) == expected


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--port", "tcp:nope"], "--port 'tcp:nope' is not a port or endpoint"),
        (["--flood-rate", "fast"], "--flood-rate must be a number"),
        (["--max-line-bytes", "10"], "--max-line-bytes must be at least 64"),
        (["--admin", "no such"], "--admin 'no such'"),
        (["--bogus"], "option --bogus not recognized"),
    ],
)
def test_bad_options_are_one_line(arguments, message, capsys):
    """Each bad option ends in one line naming the problem, not a usage dump."""
    with pytest.raises(SystemExit) as exit:
        tap.Options().parseOptions(arguments)
    text = str(exit.value.code)
    assert message in text and "\n" not in text


@pytest.mark.parametrize(
    "address, written",
    [
        (IPv4Address("TCP", "0.0.0.0", 5555), "0.0.0.0:5555"),
        (IPv6Address("TCP", "::1", 5555), "[::1]:5555"),
        (UNIXAddress(b"/run/wazzap.sock"), "unix:/run/wazzap.sock"),
    ],
)
def test_addresses_are_written_as_people_write_them(address, written):
    """The log writes an IPv6 address in brackets before its port, and a Unix socket as a path."""
    assert service.describe_address(address) == written


# Retention of the login history


def retention(days=90, **sessions):
    """
    A started L{SessionHistoryRetention} on a Clock at day 1000 over an
    in-memory store, with its log kept.
    """
    clock = Clock()
    clock.advance(1000 * service.DAY)
    store = SynchronousStore()
    events = []
    pruner = service.SessionHistoryRetention(store, days, clock)
    pruner.log = Logger(observer=events.append)
    return pruner, store.database, clock, events


def ended_days_ago(database, clock, *days):
    for ago in days:
        at = clock.seconds() - ago * service.DAY
        database.session_ended(database.session_started("alice", "::1", at - 60), at, "quit")


def test_history_is_pruned_at_start_and_then_hourly():
    """Sessions that ended more than the days kept ago go at start-up, and again every hour."""
    pruner, database, clock, events = retention(days=90)
    ended_days_ago(database, clock, 200, 91, 89, 1)
    pruner.startService()
    assert [s.logout_at for s in database.history("alice")] == [
        clock.seconds() - ago * service.DAY for ago in (1, 89)
    ]
    assert "deleted 2 sessions of login history older than 90 days" in [
        formatEvent(event) for event in events
    ]
    clock.advance(2 * service.DAY - service.PRUNE_INTERVAL_SECONDS)
    clock.advance(service.PRUNE_INTERVAL_SECONDS)
    assert len(database.history("alice")) == 1
    pruner.stopService()
    assert not clock.getDelayedCalls()


def test_a_big_prune_goes_in_batches_and_stops_with_the_service(monkeypatch):
    """A prune is many small store calls, and stopping the service stops it after the current."""
    pruner, database, clock, _ = retention(days=1)
    ended_days_ago(database, clock, *[30] * 10)
    calls = []
    real_prune = database.prune_sessions

    def prune_two(ended_before, after_id):
        calls.append(after_id)
        if len(calls) == 2:
            pruner.stopService()
        return real_prune(ended_before, after_id, batch=2)

    monkeypatch.setattr(database, "prune_sessions", prune_two)
    pruner.startService()
    assert len(calls) == 2
    assert len(database.history("alice")) == 6


def test_a_failed_prune_is_one_line_and_pruning_goes_on(monkeypatch):
    """A prune the database refuses is logged in one line, and the next hour's prune still runs."""
    pruner, database, clock, events = retention(days=1)

    def refuse(*args):
        raise StoreError("disk full")

    monkeypatch.setattr(database, "prune_sessions", refuse)
    pruner.startService()
    [event] = [event for event in events if event["log_level"] == LogLevel.error]
    assert formatEvent(event) == "pruning the login history failed: disk full"
    assert clock.getDelayedCalls()
    pruner.stopService()


def test_history_days_option():
    """--session-history-days keeps 90 days unless told, and takes 0 for keeping everything."""
    assert tap.Options()["session-history-days"] == 90
    options = tap.Options()
    options.parseOptions(["--session-history-days", "0"])
    assert options["session-history-days"] == 0
    with pytest.raises(SystemExit, match="--session-history-days must be at least 0"):
        tap.Options().parseOptions(["--session-history-days", "-1"])


# Shutting down


class SlowHasher(SynchronousHasher):
    """
    Hashes only when told to, as a busy hashing thread would.
    """

    def __init__(self):
        super().__init__()
        self.waiting = []
        self.closed = False

    def hash(self, password, lane=None):
        hashed = defer.Deferred()
        self.waiting.append((hashed, password))
        return hashed

    def finish(self):
        for hashed, password in self.waiting:
            hashed.callback(self._argon2.hash(password))

    def close(self):
        self.closed = True


def test_close_waits_for_a_registration_under_way():
    """Closing the accounts lets a registration being hashed be written before the store closes."""
    store, hasher = SynchronousStore(), SlowHasher()
    accounts = Accounts(store, hasher, clock=Clock())
    registered = accounts.register("alice", "s3cret-password", "192.0.2.1")
    closed = accounts.close()
    assert not closed.called and not hasher.closed
    database = store.database
    hasher.finish()
    assert registered.result.nickname == "alice"
    assert closed.called and hasher.closed
    assert closed.result is None
    with pytest.raises(StoreError):
        database.get_account("alice")
