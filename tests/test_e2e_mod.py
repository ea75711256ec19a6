"""
End-to-end moderation against the real C{twistd -n wazzap}: a network ban on
an IPv6 (C{tcp6:}) listener, a mute kept across a restart in the real SQLite
file, and admin rights revoked by the admin command while the admin is
online.  Every wait is bounded, and traffic stays on loopback.
"""

import re

from tests.support import TIMEOUT, admin_cli, admin_server, seed_accounts
from tests.test_e2e_accounts import open_client  # noqa: F401 (open_client is a fixture)


def test_network_ban_on_a_tcp6_listener(start_server, open_client, tmp_path):  # noqa: F811
    """On a tcp6 listener, /ban of an IPv6 network disconnects and refuses its clients until /unban."""
    db = seed_accounts(tmp_path / "wazzap.sqlite3", ("boss",), admins=("boss",))
    server = start_server(db, host="::1")
    boss = open_client(server)
    boss.log_in("boss")
    bob = open_client(server, "bob")
    boss.send("/ban ::/127 10m flood")
    assert boss.read_until("was banned") == "[Server] ::/127 was banned by boss for 10m (flood)"
    assert boss.read_until("covers you") == (
        "[Server] the ban covers you too: /unban ::/127 before you leave, or you will be kept out"
    )
    assert bob.wait_closed(TIMEOUT)[-1] == "[Server] disconnected: banned by boss: flood"
    refused = open_client(server)
    assert re.fullmatch(
        r"\[Server\] This address is banned until .* UTC: flood\.", refused.wait_closed(TIMEOUT)[-1]
    )
    assert boss.ask("/unban ::/127", "lifted") == "[Server] boss lifted the ban on ::/127"
    open_client(server, "bob")


def test_mute_holds_across_a_restart(start_server, open_client, tmp_path):  # noqa: F811
    """A mute is kept in the database: after a restart the muted nickname still cannot talk."""
    server = admin_server(start_server, tmp_path)
    boss = open_client(server)
    boss.log_in("boss")
    bob = open_client(server, "bob")
    boss.send("/mute bob 1h")
    assert bob.read_until("muted") == "[Server] bob was muted by boss for 1h"
    server.stop()
    server = start_server("--db=%s" % (tmp_path / "wazzap.sqlite3",))
    bob = open_client(server, "bob")
    bob.send("hello")
    assert bob.read_until("muted").startswith("[Server] you are muted for another ")


def test_revoked_admin_is_refused_while_online(start_server, open_client, tmp_path):  # noqa: F811
    """After the admin command revokes an online admin, their next admin command is refused."""
    server = admin_server(start_server, tmp_path)
    boss = open_client(server)
    boss.log_in("boss")
    open_client(server, "bob")
    revoked = admin_cli("--db", str(server.db_path), "revoke", "boss")
    assert revoked.returncode == 0, revoked.stderr
    assert boss.ask("/kick bob", "revoked") == (
        "[Server] your admin rights were revoked: /kick is for admins"
    )
    assert boss.ask("/kick bob", "denied") == "[Server] permission denied: /kick is for admins"
