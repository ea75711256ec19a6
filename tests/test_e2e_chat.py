"""
End-to-end: what a room hears of people coming and going, and what the log
and the database keep of their reasons, against the real C{twistd -n wazzap}.
"""

import re
import sqlite3

from tests.support import room, until

#: Longer than any wait the server should need on a busy box.
TIMEOUT = 10

#: What a reason is cut to, in bytes, plus the room notice around it.
REASON_BYTES = 200


def stored_reason(server, nickname):
    """
    The reason recorded for C{nickname}'s last session, or None while none is.
    """
    database = sqlite3.connect(str(server.db_path))
    try:
        row = database.execute(
            "SELECT reason FROM sessions WHERE nickname = ? ORDER BY id DESC", (nickname,)
        ).fetchone()
    finally:
        database.close()
    return row and row[0]


def test_a_long_quit_reason_is_cut_and_never_logged(start_server, open_client):
    """A 3,900-byte quit reason reaches the room and the history cut to 200 bytes and the log not at all."""
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send("/quit " + "secret-words " * 300)
    notice = bob.read_until("alice left the chat")
    reason = re.match(r"\[Server\] alice left the chat \(quit: (.*)\)\Z", notice).group(1)
    assert reason.startswith("secret-words secret-words") and reason.endswith("\u2026")
    assert len(reason.encode("utf-8")) <= REASON_BYTES
    server.wait_for_log("alice left (quit: [")
    assert "secret-words" not in server.log()
    stored = until(lambda: stored_reason(server, "alice"), timeout=TIMEOUT)
    assert stored.startswith("quit: secret-words")
    assert len(stored.encode("utf-8")) <= REASON_BYTES + len("quit: ")


def test_reconnect_churn_reaches_a_bystander_as_a_summary(start_server, open_client):
    """Thirty quick visits with 4 KB quit reasons cost a bystander a few notices and one summary, not 120 KB."""
    server = start_server()
    bystander = open_client(server, "bystander")
    for index in range(30):
        visitor = open_client(server, "visitor%d" % (index,), source="127.0.0.%d" % (index + 2,))
        visitor.send("/quit " + "x" * 4000)
        visitor.wait_closed(TIMEOUT)
    lines = bystander.read_through("people joined", timeout=TIMEOUT + 5)
    summary = re.match(r"\[Server\] (\d+) people joined, (\d+) left in the last 10 s\Z", lines[-1])
    assert summary is not None, lines[-3:]
    joins = [line for line in lines if line.endswith("joined the chat")]
    leaves = [line for line in lines if "left the chat" in line]
    assert len(leaves) == 10 and int(summary.group(2)) + len(leaves) <= 30, lines
    assert int(summary.group(1)) + len(joins) <= 30, lines
    assert len(bystander.raw) < 8000
