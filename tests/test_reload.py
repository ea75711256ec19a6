"""
Reloading without a restart (SIGHUP): the options parsed again, a bad
config refused whole, each change logged, and the steps that put the new
MOTD, limits, room rules and admins in force for the people already
online; driven over StringTransport and a Clock.
"""

import os
import signal

import pytest
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from tests.certificates import make_certificates
from tests.doubles import Connection, add_account, joined, log_in, make_factory
from wazzap.app import tap
from wazzap.net.pacing import Allowance
from wazzap.net.tls import ServerCertificate
from wazzap.app.reload import (
    NOW_ADMIN,
    Reloader,
    ReloadOnHangup,
    ReloadStep,
    admins_step,
    limits_step,
    motd_step,
    rooms_step,
    tls_step,
)


@pytest.fixture
def logged():
    """
    Every log line written during the test, formatted.
    """
    lines = []

    def observe(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


@pytest.fixture
def config_file(tmp_path):
    return tmp_path / "wazzap.toml"


def options_of(config_file, text, *arguments):
    config_file.write_text(text)
    options = tap.Options()
    options.parseOptions(["--config", str(config_file), *arguments])
    return options


class Applied:
    """
    A reload step that keeps the options it was given.
    """

    def __init__(self, *names):
        self.seen = []
        self.step = ReloadStep(names, self.seen.append)


def test_reload_applies_and_logs_each_change(config_file, logged):
    """A reload hands the new options to every step, and logs each option that changed."""
    options = options_of(config_file, "max-line-bytes = 1000\n")
    limits = Applied("max-line-bytes")
    reloader = Reloader(options, tap.parse_again, [limits.step])
    config_file.write_text('max-line-bytes = 2000\nflood-rate = 1\nadmin = ["boss"]\n')
    assert reloader.reload()
    [new] = limits.seen
    assert new["max-line-bytes"] == 2000
    assert reloader.options is new
    assert "reload: max-line-bytes changed from 1000 to 2000" in logged
    assert any(line.startswith("reload: flood-rate changed from 5 to 1: ") for line in logged)
    assert (
        "reload: admin changed from [] to [boss]: restart the server to put it in force" in logged
    )


def test_restart_needed_for_ports_and_database(config_file, tmp_path, logged):
    """A new port or database is logged as needing a restart, and no step applies it."""
    options = options_of(config_file, "port = 6000\n")
    reloader = Reloader(options, tap.parse_again, [Applied("max-line-bytes").step])
    config_file.write_text('port = 6001\ndb = "%s"\n' % (tmp_path / "other.sqlite3",))
    reloader.reload()
    assert "reload: port changed from [tcp:6000] to [tcp:6001]: restart the server" in " ".join(
        logged
    )
    assert any(line.startswith("reload: db changed from unset to ") for line in logged)


def test_reload_of_a_server_with_a_console_is_not_refused(monkeypatch):
    """A server started with --console reloads: whether its console could start is not asked again."""
    options = tap.Options()
    options.parent = {"nodaemon": True}  # twistd -n
    with monkeypatch.context() as start:
        start.setattr(tap, "console_problem", lambda nodaemon: None)
        options.parse_arguments(["--console", "--max-line-bytes=3000"])
    assert tap.parse_again(options)["max-line-bytes"] == 3000


def test_command_line_still_wins_on_reload(config_file):
    """What the command line gave stays in force over a changed file."""
    options = options_of(config_file, "max-line-bytes = 1000\n", "--max-line-bytes=3000")
    config_file.write_text("max-line-bytes = 2000\n")
    assert tap.parse_again(options)["max-line-bytes"] == 3000


@pytest.mark.parametrize(
    "broken", ["max-line-bytes = 10\n", "max-line-bytes = \n", "colour = true\n", None]
)
def test_bad_config_is_refused_whole(config_file, logged, broken):
    """A bad, broken or missing file changes nothing, and the log says why in one line."""
    options = options_of(config_file, "max-line-bytes = 1000\n")
    limits = Applied("max-line-bytes")
    reloader = Reloader(options, tap.parse_again, [limits.step])
    if broken is None:
        config_file.unlink()
    else:
        config_file.write_text("flood-burst = 3\n" + broken)
    assert not reloader.reload()
    assert limits.seen == []
    assert reloader.options is options
    [line] = logged
    assert line.startswith("reload refused, the running configuration stays: ")
    assert "wazzap.toml" in line and "\n" not in line


def test_unreadable_motd_refuses_the_reload(config_file, tmp_path, logged):
    """A MOTD file gone by the reload keeps the old MOTD and options."""
    motd = tmp_path / "motd.txt"
    motd.write_text("hello\n")
    options = options_of(config_file, 'motd = "%s"\n' % (motd,))
    factory = make_factory()
    step = motd_step(factory)
    step.apply(options)
    motd.unlink()
    assert not Reloader(options, tap.parse_again, [step]).reload()
    assert factory.motd_lines == ("hello",)
    assert "cannot read it" in logged[0]


def test_nothing_changed_is_said(config_file, logged):
    """A reload that changes nothing says so."""
    options = options_of(config_file, "max-line-bytes = 1000\n")
    Reloader(options, tap.parse_again, []).reload()
    assert "reload: no option changed" in logged


def test_a_failing_step_does_not_stop_the_others(config_file, logged):
    """A step that raises is logged, and the steps after it still run."""

    def broken(options):
        raise RuntimeError("certificate vanished")

    options = options_of(config_file, "")
    after = Applied("max-line-bytes")
    Reloader(options, tap.parse_again, [ReloadStep(("tls-cert",), broken), after.step]).reload()
    assert len(after.seen) == 1
    assert any("reload: putting tls-cert in force" in line for line in logged)


def test_motd_step_changes_what_newcomers_see(config_file, tmp_path, logged):
    """After a reload, the next to join sees the new MOTD; a text change is logged."""
    motd = tmp_path / "motd.txt"
    motd.write_text("old news\n")
    options = options_of(config_file, 'motd = "%s"\n' % (motd,))
    factory = make_factory()
    step = motd_step(factory)
    step.apply(options)
    motd.write_text("new news\n")
    Reloader(options, tap.parse_again, [step]).reload()
    connection = Connection(factory)
    connection.lines()
    connection.send("alice")
    assert connection.lines()[1] == "[Server] new news"
    assert "reload: motd %s (1 line): its contents changed" % (motd,) in logged


class FakeReactor:
    def __init__(self):
        self.calls = []

    def callFromThread(self, function, *arguments):
        self.calls.append(function)


def test_sighup_asks_the_reactor_to_reload():
    """SIGHUP only asks the reactor to reload; stopping puts the old handler back."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        reactor = FakeReactor()
        reloader = Reloader(tap.Options(), tap.parse_again, [])
        service = ReloadOnHangup(reloader, reactor)
        service.startService()
        os.kill(os.getpid(), signal.SIGHUP)
        assert reactor.calls == [reloader.reload]
        service.stopService()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


# The limits, for connections already open.


def limits_changed(factory, **changes):
    step = limits_step(factory, tap.LIMIT_OPTIONS)
    options = tap.Options()
    options.parseOptions(
        ["--%s=%s" % (name, value) for name, value in changes.items()]
    )
    step.apply(options)


def test_new_line_limit_holds_for_those_online():
    """A lower line limit refuses the next long line of someone already online."""
    factory = make_factory()
    alice, bob = joined(factory, "alice", "bob")
    limits_changed(factory, **{"max-line-bytes": 100, "flood-rate": 0})
    alice.send("x" * 150)
    assert alice.lines() == ["[Server] that line was longer than 100 bytes and was not sent"]
    assert bob.lines() == []
    assert factory.rules.limits.max_line_bytes == 100


def test_new_flood_rate_paces_those_online():
    """Flood control turned on by a reload slows down someone already online."""
    factory = make_factory()
    (alice,) = joined(factory, "alice")
    limits_changed(factory, **{"flood-burst": 2, "flood-rate": 1})
    for number in range(5):
        alice.send("line %d" % (number,))
    assert any("sending too fast" in line for line in alice.lines())


def test_new_idle_timeout_times_those_online():
    """An idle timeout set by a reload counts from then for someone already online."""
    factory = make_factory()
    (alice,) = joined(factory, "alice")
    factory.clock.advance(1000)
    limits_changed(factory, **{"idle-timeout": 60, "flood-rate": 0})
    factory.clock.advance(59)
    assert not alice.transport.disconnecting
    factory.clock.advance(2)
    assert alice.transport.disconnecting


def test_idle_timeout_turned_off_spares_those_online():
    """An idle timeout a reload turns off disconnects nobody."""
    factory = make_factory(idle_timeout_seconds=60)
    (alice,) = joined(factory, "alice")
    factory.clock.advance(30)
    limits_changed(factory, **{"idle-timeout": 0, "flood-rate": 0})
    factory.clock.advance(120)
    assert not alice.transport.disconnecting


def test_shorter_idle_timeout_counts_from_the_last_line():
    """A shorter idle timeout counts from the last line heard, not from the reload."""
    factory = make_factory(idle_timeout_seconds=600)
    (alice,) = joined(factory, "alice")
    factory.clock.advance(50)
    limits_changed(factory, **{"idle-timeout": 60, "flood-rate": 0})
    factory.clock.advance(11)
    assert alice.transport.disconnecting


def test_new_rate_of_connections_holds_for_addresses_remembered():
    """An address that used up its new connections may come again at the reloaded rate."""
    factory = make_factory(max_connections_per_minute=2)
    for port in (1, 2):
        Connection(factory, port=port).close()
    assert b"Too many new connections" in Connection(factory, port=3).raw()
    limits_changed(factory, **{"max-connections-per-minute": 60, "flood-rate": 0})
    factory.clock.advance(1)
    assert b"Too many" not in Connection(factory, port=4).raw()


def test_allowance_keeps_what_it_has_up_to_a_new_burst():
    """A changed allowance keeps its tokens, capped at the new burst, at the new rate."""
    clock = Clock()
    allowance = Allowance(clock, 10, 1)
    for _ in range(6):
        assert allowance.wait() == 0
    allowance.change(20, 2)
    assert allowance.tokens() == 4
    allowance.change(2, 2)
    assert allowance.tokens() == 2
    clock.advance(0.5)
    assert allowance.tokens() == 2
    allowance.wait(), allowance.wait()
    assert allowance.wait() == pytest.approx(0.5)


# The rooms and the admins.


def test_room_rules_follow_the_reload():
    """Who may create rooms and how many there may be change at once."""
    factory = make_factory()
    options = tap.Options()
    options.parseOptions(["--no-user-rooms", "--max-rooms=7", "--max-rooms-per-user=2"])
    rooms_step(factory.chat).apply(options)
    chat = factory.chat
    assert (chat.user_rooms, chat.max_rooms, chat.max_rooms_per_user) == (False, 7, 2)


def test_new_admin_online_gets_the_rights_at_once(logged):
    """A nickname added to --admin and logged in is an admin at once, and told so."""
    factory = make_factory()
    add_account(factory, "alice", "correct horse")
    alice = log_in(factory, "alice")
    (bob,) = joined(factory, "bob")
    alice.lines()
    options = tap.Options()
    options.parseOptions(["--admin=alice", "--admin=carol"])
    admins_step(factory.accounts, factory.chat).apply(options)
    alice.settle()
    assert alice.lines() == ["[Server] " + NOW_ADMIN]
    assert alice.protocol.is_admin and not bob.protocol.is_admin
    assert factory.accounts.store.database.get_account("alice").is_admin
    alice.send("/pending")
    assert "permission denied" not in " ".join(alice.lines())
    assert any("--admin carol: no such account" in line for line in logged)


def test_admin_taken_off_the_list_is_told_how_to_revoke(logged):
    """A nickname taken off --admin keeps its flag, and the log says how to revoke it."""
    factory = make_factory(admins=("alice",))
    add_account(factory, "alice", "correct horse", admin=True)
    admins_step(factory.accounts, factory.chat).apply(tap.Options())
    assert factory.accounts.admin_keys == frozenset()
    assert any("wazzap-admin revoke alice" in line for line in logged)


def test_tls_step_serves_new_files_or_keeps_the_old_in_one_line(tmp_path, logged):
    """The TLS step puts a renewed certificate in force, and refuses a bad key in one log line."""
    files = make_certificates(tmp_path)
    certificate = ServerCertificate(str(files.fullchain), str(files.key))
    step = tls_step(certificate)
    assert step.options == ("tls-cert", "tls-key")
    step.apply({"tls-cert": str(files.fullchain), "tls-key": str(files.other_key)})
    assert certificate.key_path == str(files.key)
    (refused,) = [line for line in logged if "TLS certificate" in line]
    assert refused.startswith("reload: the TLS certificate in use stays: ") and "\n" not in refused
    (tmp_path / "renewed").mkdir()
    renewed = make_certificates(tmp_path / "renewed")
    step.apply({"tls-cert": str(renewed.fullchain), "tls-key": str(renewed.key)})
    assert certificate.certificate_path == str(renewed.fullchain)
    assert "reload: TLS certificate CN=localhost" in logged[-1]
