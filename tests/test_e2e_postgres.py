"""
End-to-end: the real C{twistd -n wazzap} with C{--db postgresql://...} on the
tests' own PostgreSQL (L{tests.servers.PostgresServer}), spoken to over
loopback sockets as nc would: accounts outlive a restart, and two servers on
one database see each other's accounts and bans.  Every wait is bounded.
"""

import functools
import os
import re
import signal

import pytest

from tests.support import (
    NICKNAME_PROMPT,
    PASSWORD,
    TIMEOUT,
    LoginClient,
    admin_cli,
    free_port,
    password_hash,
    run_wazzap,
    until,
)
from tests.servers import postgres_drop_connections
from wazzap.persist.store import open_database


@pytest.fixture
def open_client(open_client):
    """
    The shared fixture, opening clients that can log in.
    """
    return functools.partial(open_client, client_class=LoginClient, timeout=TIMEOUT)


def test_an_account_registered_on_postgres_outlives_a_restart(
    start_server, open_client, postgres_url
):
    """/register on a server on PostgreSQL; after a restart the nickname needs that password."""
    first = start_server("--db=" + postgres_url)
    first.wait_for_log("created a new database postgresql://wazzap@")
    alice = open_client(first, "alice")
    assert alice.ask("/register " + PASSWORD, "registered") == (
        "[Server] registered: from now on alice needs this password"
    )
    alice.send("/quit")
    alice.wait_closed(TIMEOUT)
    first.stop()

    second = start_server("--db=" + postgres_url)
    second.wait_for_log("opened the database postgresql://wazzap@")
    impostor = open_client(second)
    impostor.log_in("alice", "not-the-password", welcome=False)
    assert impostor.read_until("Wrong") == "[Server] Wrong nickname or password."
    again = open_client(second)
    assert again.log_in("alice").startswith("[Server] Welcome, alice!")


def test_two_servers_on_one_database_share_accounts_and_bans(
    start_server, open_client, postgres_url
):
    """A ban made on one server refuses the nickname on the other; wazzap-admin sees and lifts it."""
    with open_database(postgres_url) as database:
        assert database.create_account("boss", password_hash(PASSWORD))
        assert database.set_admin("boss", True)
    east = start_server("--db=" + postgres_url)
    west = start_server("--db=" + postgres_url)

    boss = open_client(east)
    boss.log_in("boss")
    carol = open_client(west, "carol")
    assert carol.ask("/register " + PASSWORD, "registered").startswith("[Server] registered")
    boss.send("/ban mallory 1d spamming")
    assert boss.read_until("banned") == "[Server] mallory was banned by boss for 1d (spamming)"

    banned = open_client(west)
    banned.read_until(NICKNAME_PROMPT)
    banned.send("mallory")
    lines = banned.wait_closed(TIMEOUT)
    assert re.fullmatch(r"\[Server\] mallory is banned until .* UTC: spamming\.", lines[-1]), lines
    assert open_client(east).log_in("carol").startswith("[Server] Welcome, carol!")

    listed = admin_cli("--db", postgres_url, "bans")
    assert listed.returncode == 0 and "mallory  nickname" in listed.stdout, listed
    lifted = admin_cli("--db", postgres_url, "unban", "mallory")
    assert lifted.stdout == "mallory is no longer banned\n", lifted
    open_client(west, "mallory")


def test_an_unreachable_database_is_one_line_at_start(tmp_path):
    """A server given a PostgreSQL that does not answer says so in one line and exits."""
    url = "postgresql://wazzap@127.0.0.1:%d/wazzap" % (free_port(),)
    result = run_wazzap(tmp_path, "--db=" + url)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("wazzap: ")
    ]
    assert "wazzap: cannot open database %s: " % (url,) in result.stderr
    assert "Connection refused" in result.stderr and "Traceback" not in result.stderr


def test_a_daemon_on_postgres_uses_the_database_after_it_forked(tmp_path, postgres_url):
    """A daemon (twistd forks after the database is opened) registers, and reconnects once its connections drop."""
    port = free_port()
    started = run_wazzap(
        tmp_path, "--db=" + postgres_url, "--port=tcp:%d:interface=127.0.0.1" % (port,), daemon=True
    )
    assert (started.returncode, started.stderr) == (0, "")
    pid_file = tmp_path / "twistd.pid"
    assert until(pid_file.exists, TIMEOUT)
    pid = int(pid_file.read_text())
    try:
        for nickname in ("alice", "bob"):
            client = LoginClient("127.0.0.1", port, timeout=TIMEOUT)
            try:
                client.join(nickname)
                answer = client.ask("/register " + PASSWORD, "registered")
                assert answer.startswith("[Server] registered")
            finally:
                client.close()
        # New connections come from the pool's threads, which a pool made
        # before the fork would have lost.
        postgres_drop_connections(postgres_url)
        client = LoginClient("127.0.0.1", port, timeout=TIMEOUT)
        try:
            assert client.log_in("alice").startswith("[Server] Welcome, alice!")
        finally:
            client.close()
    finally:
        os.kill(pid, signal.SIGTERM)
        assert until(lambda: not pid_file.exists(), TIMEOUT)
    log = (tmp_path / "twistd.log").read_text()
    assert "Traceback" not in log and "Error" not in log, log
    with open_database(postgres_url, create=False) as database:
        assert [account.nickname for account in database.list_accounts()] == ["alice", "bob"]


def test_logins_go_on_when_postgres_drops_the_connections(start_server, open_client, postgres_url):
    """When PostgreSQL ends the server's connections (as a restart does), the next login still works."""
    server = start_server("--db=" + postgres_url)
    alice = open_client(server, "alice")
    assert alice.ask("/register " + PASSWORD, "registered").startswith("[Server] registered")
    alice.send("/quit")
    alice.wait_closed(TIMEOUT)
    postgres_drop_connections(postgres_url)
    assert open_client(server).log_in("alice").startswith("[Server] Welcome, alice!")
    assert "Traceback" not in server.log()
