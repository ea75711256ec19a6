"""
End-to-end: logging in, taking a nickname back, and a database that another
process holds locked, against the real C{twistd -n wazzap} over loopback.
"""

import re
import signal
import subprocess
import sys
import time

from tests.support import LineClient
from wazzap.persist.passwords import GUESSES_PER_ACCOUNT_AND_ADDRESS as PER_ADDRESS_AT_ONE_ACCOUNT

TIMEOUT = 10

#: Holds SQLite's write lock on the file named by argv[1] for argv[2] seconds.
HOLD_WRITE_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def hold_write_lock(db_path, seconds):
    """
    Start another process that holds the database's write lock for C{seconds}.
    """
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(db_path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_locked_database_does_not_stop_the_chat(start_server):
    """A user who joins and leaves while another process holds the write lock leaves the server answering."""
    server = start_server()
    watcher = LineClient(server.host, server.port, timeout=TIMEOUT)
    watcher.join("watcher")
    holder = hold_write_lock(server.db_path, 6)
    try:
        alice = LineClient(server.host, server.port, timeout=TIMEOUT)
        alice.join("alice")
        alice.send("/quit")
        alice.wait_closed(TIMEOUT)
        assert watcher.read_until("alice left") == "[Server] alice left the chat (quit)"
        holder.wait(TIMEOUT)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(TIMEOUT)
        holder.stdout.close()
    server.wait_for_log("could not record the start of a session of alice", TIMEOUT)
    started = time.monotonic()
    assert watcher.ask("/who", "online") == "[Server] 1 online: watcher"
    assert time.monotonic() - started < 2
    bob = LineClient(server.host, server.port, timeout=TIMEOUT)
    bob.join("bob")
    bob.close()
    watcher.close()
    assert server.stop(TIMEOUT) in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log()


def test_parallel_guesses_are_counted_and_the_owner_elsewhere_gets_in(start_server):
    """Twenty guesses sent at once from one address get five checks; the owner on another address logs in at once."""
    server = start_server()
    owner = LineClient(server.host, server.port, timeout=TIMEOUT)
    owner.join("alice")
    owner.ask("/register correct-horse", "registered")
    owner.send("/quit")
    owner.wait_closed(TIMEOUT)
    guessers = [LineClient(server.host, server.port, timeout=TIMEOUT) for _ in range(20)]
    try:
        for guesser in guessers:
            guesser.read_until("Choose a nickname")
            guesser.send("alice")
        for guesser in guessers:
            guesser.read_until("Password:")
        for guesser in guessers:
            guesser.send("wrong-guess")
        outcomes = [
            guesser.read_until(re.compile("Wrong nickname or password|Too many wrong passwords"))
            for guesser in guessers
        ]
    finally:
        for guesser in guessers:
            guesser.close()
    assert sum("Wrong nickname" in outcome for outcome in outcomes) == PER_ADDRESS_AT_ONE_ACCOUNT
    owner = LineClient(server.host, server.port, timeout=TIMEOUT, source="127.0.0.2")
    owner.read_until("Choose a nickname")
    started = time.monotonic()
    owner.send("alice")
    owner.read_until("Password:")
    owner.send("correct-horse")
    owner.read_until("Welcome, alice!")
    assert time.monotonic() - started < 2
    owner.close()


def test_owner_takes_a_registered_nickname_back_from_a_stale_session(start_server):
    """Logging in to a registered nickname that is online closes the old session and lets the new one in."""
    server = start_server()
    stale = LineClient(server.host, server.port, timeout=TIMEOUT)
    stale.join("bob")
    stale.ask("/register correct-horse", "registered")
    watcher = LineClient(server.host, server.port, timeout=TIMEOUT)
    watcher.join("watcher")
    bob = LineClient(server.host, server.port, timeout=TIMEOUT)
    bob.read_until("Choose a nickname")
    bob.send("bob")
    bob.read_until("Password:")
    bob.send("correct-horse")
    bob.read_until("Welcome, bob!")
    assert stale.wait_closed(TIMEOUT)[-1] == "[Server] bob logged in from elsewhere"
    assert watcher.read_through("bob joined")[-2:] == [
        "[Server] bob left the chat (logged in from elsewhere)",
        "[Server] bob joined the chat",
    ]
    assert watcher.ask("/who", "online") == "[Server] 2 online: bob, watcher"
    for client in (stale, watcher, bob):
        client.close()
