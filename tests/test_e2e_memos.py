"""
End-to-end: offline messages through the real C{twistd -n wazzap} over
loopback sockets, with a real SQLite file: a message acknowledged before a
SIGKILL is in the database afterwards, and delivered once after the restart.

Recipients are written straight into the database before the server starts
(L{seed_accounts}).  Every wait is bounded; a check that something did
I{not} arrive reads up to a later answer the server is bound to send after it.
"""

import functools
import re
import threading

import pytest

from tests.support import TIMEOUT, LoginClient, seed_accounts, until
from wazzap.persist.store import Database

pytestmark = pytest.mark.timeout(90)

SENDERS = ["sender%d" % (index,) for index in range(4)]
RECIPIENTS = ["reader%d" % (index,) for index in range(5)]
#: Each sender leaves each recipient this many: the most one sender may.
PER_PAIR = 5
ACKNOWLEDGED = re.compile(r"\[Server\] (reader\d) is offline: your message will be delivered")


@pytest.fixture
def open_client(open_client):
    """
    The shared fixture, opening clients that can log in, without Nagle's delay.
    """
    return functools.partial(open_client, client_class=LoginClient, nodelay=True, timeout=TIMEOUT)


def test_sigkill_keeps_every_acknowledged_memo(start_server, open_client, tmp_path):
    """Every memo acknowledged before a SIGKILL is in the database afterwards and delivered after restart."""
    server = start_server(seed_accounts(tmp_path / "wazzap.sqlite3", RECIPIENTS), "--flood-rate=0")
    senders = [open_client(server, nickname) for nickname in SENDERS]
    # Each sender's lines, in order: its acknowledgements come in the same
    # order, since a line waits until the one before is committed.
    lines = {
        sender: [
            (recipient, "memo %s %d for %s" % (sender, index, recipient))
            for index in range(PER_PAIR)
            for recipient in RECIPIENTS
        ]
        for sender in SENDERS
    }
    acknowledged = []
    lock = threading.Lock()
    enough = threading.Event()

    def read_acknowledgements(client, sender):
        for recipient, message in lines[sender]:
            try:
                line = client.read_until(ACKNOWLEDGED, timeout=TIMEOUT)
            except (AssertionError, EOFError, OSError):
                return  # killed before its turn: not acknowledged
            assert ACKNOWLEDGED.match(line).group(1) == recipient, line
            with lock:
                acknowledged.append((sender, recipient, message))
                if len(acknowledged) >= 30:
                    enough.set()

    for client, sender in zip(senders, SENDERS):
        client.send_raw(b"".join(b"@%s %s\n" % (r.encode(), m.encode()) for r, m in lines[sender]))
    threads = [
        threading.Thread(target=read_acknowledgements, args=pair) for pair in zip(senders, SENDERS)
    ]
    for thread in threads:
        thread.start()
    assert enough.wait(TIMEOUT * 2), "fewer than 30 memos acknowledged"
    server.process.kill()
    server.process.wait(TIMEOUT)
    for thread in threads:
        thread.join(TIMEOUT)
    with lock:
        acknowledged = list(acknowledged)

    with Database.open(server.db_path) as database:
        stored = {
            (memo.sender, memo.recipient, memo.text)
            for recipient in RECIPIENTS
            for memo in database.memos_for(recipient)
        }
    lost = [memo for memo in acknowledged if memo not in stored]
    assert not lost, "acknowledged, then lost: %r" % (lost,)
    print(
        "\nSIGKILL durability: %d of %d memos acknowledged before the kill, "
        "%d in the database afterwards, 0 acknowledged ones lost"
        % (len(acknowledged), len(SENDERS) * len(RECIPIENTS) * PER_PAIR, len(stored))
    )

    restarted = start_server("--db=%s" % (server.db_path,))
    reader = acknowledged[0][1]
    expected = sorted(memo for memo in stored if memo[1] == reader)
    client = open_client(restarted)
    client.log_in(reader)
    client.read_until("came while you were away:")
    delivered = [client.read_until("[PM from ") for _ in expected]
    assert sorted(
        (line.split("] ")[0][len("[PM from ") :], reader, line.split(" UTC) ", 1)[1])
        for line in delivered
    ) == expected
    # Deleted once written to the connection, so just after they arrived.
    with Database.open(server.db_path) as database:
        assert until(lambda: database.memos_for(reader) == [], TIMEOUT)


def test_a_memo_is_delivered_once_after_a_restart(start_server, open_client, tmp_path):
    """A memo left before a SIGKILL is shown at the next login, with sender and time, and never again."""
    server = start_server(seed_accounts(tmp_path / "wazzap.sqlite3", ["alice"]))
    bob = open_client(server, "bob")
    assert bob.ask("@alice lunch at noon?", "alice is offline").startswith(
        "[Server] alice is offline: your message will be delivered when they log in"
    )
    assert bob.ask("/memos", "1. to alice").startswith("[Server]   1. to alice, ")
    server.process.kill()
    server.process.wait(TIMEOUT)

    restarted = start_server("--db=%s" % (server.db_path,))
    alice = open_client(restarted)
    alice.log_in("alice")
    shown = alice.read_through("[PM from bob]")
    assert shown[-2] == "[Server] 1 message came while you were away:"
    assert re.fullmatch(r"\[PM from bob\] \(\d\d:\d\d UTC\) lunch at noon\?", shown[-1]), shown
    alice.send("/quit")
    alice.wait_closed()

    again = open_client(restarted)
    again.log_in("alice")
    again.send("/memos")
    # /memos answers after the read of waiting messages (one store thread, in order).
    seen = again.read_through("you have no messages waiting")
    assert not any("[PM from" in line or "came while" in line for line in seen), seen
