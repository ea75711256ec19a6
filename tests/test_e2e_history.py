"""
End-to-end: the history of rooms, spoken to the real C{twistd -n wazzap}
over loopback sockets with a real SQLite file: replays to late joiners,
"since you left" for registered users, /history, and what survives a
restart, a SIGKILL and the retention.

Every wait is bounded; a check that something did I{not} arrive reads up to
a later line the server is bound to send after it.
"""

import functools
import re
import signal
import time

import pytest

from tests.support import TIMEOUT, LoginClient, peak_rss_kib, seed_accounts
from wazzap.core import events
from wazzap.persist.store import Database

HISTORY = re.compile(r"\[history #\w+ \d\d:\d\d\] ")
#: Longer than a batch of history takes to be written (100 ms and a turn).
WRITTEN_SECONDS = 0.5


@pytest.fixture
def open_client(open_client):
    """
    The shared fixture, opening clients that can log in, without Nagle's delay.
    """
    return functools.partial(open_client, client_class=LoginClient, nodelay=True, timeout=TIMEOUT)


def history_of(lines):
    """
    The replayed lines among C{lines}, without their marks.
    """
    return [HISTORY.sub("", line) for line in lines if HISTORY.match(line)]


def test_a_late_joiner_sees_the_replay_in_order(start_server, open_client):
    """Someone joining late sees the room's last lines, in order and marked, then --- now ---."""
    server = start_server("--replay=3")
    alice = open_client(server, "alice")
    for word in ("one", "two", "three", "four"):
        alice.send(word)
    alice.send("/me waves")
    alice.ask("/who", "alice")  # every line has been handled
    bob = open_client(server)
    bob.read_until("Choose a nickname")
    bob.send("bob")
    lines = bob.read_through("--- now ---")
    assert history_of(lines) == ["alice: three", "alice: four", "* alice waves"]
    welcome = next(i for i, line in enumerate(lines) if line.startswith("[Server] Welcome, bob!"))
    first = next(i for i, line in enumerate(lines) if HISTORY.match(line))
    assert welcome < first
    alice.send("live")
    assert bob.read_until("live") == "alice: live"


def test_a_returning_user_sees_exactly_what_was_said(start_server, open_client, tmp_path):
    """A registered user who logs out and back in is told exactly what was said meanwhile, once."""
    db = seed_accounts(tmp_path / "wazzap.sqlite3", ["alice"])
    server = start_server(db, "--replay=20")
    bob = open_client(server, "bob")
    bob.send("/join #maths")
    bob.send("/join #lobby")
    bob.send("before")
    alice = open_client(server)
    alice.log_in("alice")
    alice.send("/join #maths")
    alice.read_until("you joined #maths")
    alice.send("/quit")
    alice.wait_closed()
    bob.read_until("alice left")
    said = ["first in the lobby", "second in the lobby"]
    for line in said:
        bob.send(line)
    bob.send("/join #maths")
    bob.send("x squared")
    bob.ask("/who", "bob")
    alice = open_client(server)
    alice.log_in("alice")
    lines = alice.read_through("--- now ---")
    assert history_of(lines) == [
        "bob: first in the lobby",
        "bob: second in the lobby",
        "bob: x squared",
    ]
    bob.send("after")
    assert alice.read_until("after") == "bob: after"


def test_history_survives_a_restart_and_a_sigkill(start_server, open_client, tmp_path):
    """Lines written before a SIGKILL are replayed by the next server on the same database."""
    db = "--db=%s" % (tmp_path / "wazzap.sqlite3",)
    server = start_server(db, "--replay=5")
    alice = open_client(server, "alice")
    alice.send("kept through the crash")
    alice.ask("/who", "alice")
    time.sleep(WRITTEN_SECONDS)
    server.signal(signal.SIGKILL)
    server.process.wait(TIMEOUT)
    server = start_server(db, "--replay=5")
    bob = open_client(server)
    bob.read_until("Choose a nickname")
    bob.send("bob")
    assert "alice: kept through the crash" in history_of(bob.read_through("--- now ---"))


def test_history_command_pages_through_the_room(start_server, open_client):
    """/history N shows the last N lines of the room, and refuses a room one is not in."""
    server = start_server("--flood-rate=0")
    alice = open_client(server, "alice")
    for number in range(120):
        alice.send("line %d" % (number,))
    alice.ask("/who", "alice")
    alice.send("/history 110")
    lines = alice.read_through("end of the history of #lobby")
    said = history_of(lines)
    assert len(said) == 110
    assert said[0] == "alice: line 10" and said[-1] == "alice: line 119"
    assert alice.ask("/history #maths", "#maths") == (
        "[Server] you are not in #maths: /history shows only rooms you are in"
    )
    assert alice.ask("/history 5000", "number") == (
        "[Server] N is a number of lines from 1 to 1000, not 5000"
    )


def test_retention_prunes_old_lines_and_keeps_the_newest(start_server, open_client, tmp_path):
    """At start-up, lines older than --history-days and beyond --history-lines are deleted."""
    path = tmp_path / "wazzap.sqlite3"
    now = time.time()
    with Database.open(path) as database:
        old = (1, now - 3 * 86400) + events.pack(events.Said("old", None, "too old"))
        database.write_history([("#lobby", [old])])
        young = now - 60
        database.write_history(
            [("#lobby", [(2 + n, young) + events.pack(events.Said("bob", None, "n%d" % n)) for n in range(5)])]
        )
    server = start_server("--db=%s" % (path,), "--history-days=2", "--history-lines=3")
    server.wait_for_log("deleted 3 lines of room history")
    alice = open_client(server, "alice")
    alice.send("/history 50")
    lines = alice.read_through("end of the history")
    assert history_of(lines)[:3] == ["bob: n2", "bob: n3", "bob: n4"]
    assert not any("too old" in line for line in lines)


def test_read_positions_survive_a_restart(start_server, open_client, tmp_path):
    """Someone online when the server stops is told, after the restart, what was said since."""
    db = seed_accounts(tmp_path / "wazzap.sqlite3", ["alice"])
    server = start_server(db)
    bob = open_client(server, "bob")
    bob.send("before the restart")
    alice = open_client(server)
    alice.log_in("alice")
    alice.ask("/who", "alice")
    assert server.stop() in (0, -signal.SIGTERM)
    server = start_server(db)
    bob = open_client(server, "bob")
    bob.send("after the restart")
    bob.ask("/who", "bob")
    alice = open_client(server)
    alice.log_in("alice")
    lines = history_of(alice.read_through("--- now ---"))
    assert "bob: after the restart" in lines
    assert "bob: before the restart" not in lines


def test_a_burst_is_held_for_history_only_until_written(start_server, open_client):
    """
    4 MB said as fast as it can be, all in one batch of history, raise the peak memory by less
    than three times that: the lines, held until written, and the pieces on their way to disk.
    """
    server = start_server("--flood-rate=0")
    alice = open_client(server, "alice")
    bob = open_client(server, "bob")
    alice.read_until("bob joined")
    peak_before = peak_rss_kib(server.process.pid)
    padding = "x" * 500
    for batch in range(40):
        first = batch * 200
        alice.send_raw("".join("%06d %s\n" % (n, padding) for n in range(first, first + 200)).encode())
        bob.read_through("%06d %s" % (first + 199, padding))
    alice.ask("/history 1", "end of the history")
    growth_kib = peak_rss_kib(server.process.pid) - peak_before
    assert growth_kib < 12 * 1024, growth_kib
