"""
Moderation through the protocol (bans, mutes, the approval queue, admin
rights), on the in-memory doubles and a Clock; and the pieces it rests on:
address normalisation, durations, stored mutes.
"""

import pytest
from twisted.internet.address import IPv6Address

from tests.doubles import Connection, admin_and_user, admin_logged_in, connect, log_in, make_factory, registered
from tests.test_admin import admin as admin_tool
from wazzap import addresses
from wazzap.persist.bans import Bans
from wazzap.chat import APPROVAL_NOTICES_IN_FULL, APPROVAL_SUMMARY_SECONDS
from wazzap.commands.base import MAX_DURATION_SECONDS, DurationError, parse_duration
from wazzap.core.admission import MAX_WAITERS_PER_ADDRESS
from wazzap.listeners.session_user import address_of as _address_of
from wazzap.persist.store import ADDRESS, NICKNAME, Database

# Addresses


def test_ipv4_mapped_addresses_are_written_as_ipv4():
    """A dual-stack listener's ::ffff:a.b.c.d peer is the IPv4 address, in any spelling."""
    assert _address_of(IPv6Address("TCP", "::ffff:127.0.0.2", 5555)) == "127.0.0.2"
    assert addresses.normalise("::FFFF:7f00:2") == "127.0.0.2"
    assert addresses.normalise("2001:DB8:0::1") == "2001:db8::1"
    assert addresses.normalise("local") == "local"


def test_ban_targets_are_addresses_or_networks_in_standard_form():
    """Ban targets are normalised: mapped addresses to IPv4, networks to CIDR with host bits cleared."""
    assert addresses.ban_target("::ffff:127.0.0.2") == "127.0.0.2"
    assert addresses.ban_target("203.0.113.77/24") == "203.0.113.0/24"
    assert addresses.ban_target("2001:DB8::/32") == "2001:db8::/32"
    assert addresses.ban_target("::ffff:203.0.113.0/120") == "203.0.113.0/24"
    assert addresses.ban_target("192.0.2.1/32") == "192.0.2.1"
    assert addresses.ban_target("bob") is None
    assert addresses.ban_target("10.0.0.0/33") is None


def test_network_covers_its_addresses_only():
    """A network ban covers the addresses inside it, of its own IP version."""
    assert addresses.covers("203.0.113.0/24", "203.0.113.200")
    assert not addresses.covers("203.0.113.0/24", "203.0.114.1")
    assert not addresses.covers("2001:db8::/32", "203.0.113.1")
    assert addresses.covers("192.0.2.1", "192.0.2.1")
    assert not addresses.covers("192.0.2.1", "local")


# Durations


def test_durations_are_capped_and_checked():
    """Durations over ten years, zero, and words that are not durations raise a clear error."""
    assert parse_duration("3650d") == MAX_DURATION_SECONDS
    for word, why in (
        ("3651d", "too long"),
        ("9999999999999w", "too long"),
        ("9" * 400, "too long"),
        ("0", "more than zero"),
        ("10x", "not a duration"),
    ):
        with pytest.raises(DurationError, match=why):
            parse_duration(word)


def test_ban_refuses_a_mistyped_duration():
    """/ban dave 10x is refused with the usage and the units, not taken as a permanent ban."""
    factory = make_factory(admins=["root1"])
    admin, dave = admin_and_user(factory)
    admin.send("/ban bob 10x spam")
    assert admin.lines() == [
        "[Server] usage: /ban NICK|ADDRESS|NETWORK [DURATION] [REASON]",
        "[Server] 10x is not a duration: use a number of seconds, or a number and s, m, h, d "
        "or w (like 30m, 2h, 7d)",
    ]
    assert not dave.transport.disconnecting
    assert factory.bans.mutes.active() == [] and factory.accounts.store.database.active_bans(0) == []


@pytest.mark.parametrize("duration", ["9999999999999w", "9" * 400])
def test_ban_refuses_a_huge_duration(duration):
    """A ban longer than ten years is refused with a notice, not stored."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/ban bob %s" % (duration,))
    assert "is too long: at most 3650d (10 years)" in admin.lines()[-1]
    assert not bob.transport.disconnecting


def test_huge_stored_ban_is_told_without_error(tmp_path):
    """A ban stored with an end past the year 9999 is shown safely to the banned, to /bans and by the admin tool."""
    factory = make_factory(admins=["root1"])
    factory.accounts.store.database.add_ban("troll", NICKNAME, 1e300, "", "root1", 0)
    factory.bans.load()
    troll = connect(factory, 40100)
    troll.send("troll")
    assert troll.lines() == ["[Server] troll is banned until after the year 9999."]
    admin = admin_logged_in(factory, "root1", port=45000)
    admin.send("/bans")
    assert admin.lines() == ["[Server] 1 ban:", "[Server]   nickname troll by root1, for more than 10 years"]
    path = str(tmp_path / "wazzap.sqlite3")
    with Database.open(path) as db:
        db.add_ban("troll", NICKNAME, 1e300, "", "root1", 0)
    status, out, err = admin_tool("--db", path, "bans")
    assert (status, err) == (0, "")
    assert "after the year 9999" in out


# Kicks and bans


def test_admin_cannot_kick_or_ban_themselves():
    """An admin's /kick and nickname /ban of their own nickname are refused."""
    factory = make_factory(admins=["root1"])
    admin, _ = admin_and_user(factory)
    admin.send("/kick root1")
    assert admin.lines() == ["[Server] you cannot kick yourself: /quit leaves"]
    admin.send("/ban ROOT1 1h")
    assert admin.lines() == ["[Server] you cannot ban yourself"]
    assert not admin.transport.disconnecting
    assert factory.accounts.store.database.active_bans(0) == []


def test_ipv4_client_of_a_dual_stack_listener_is_banned_by_its_ipv4_address():
    """A peer seen as ::ffff:192.0.2.9 is disconnected and kept out by /ban 192.0.2.9 or its mapped form."""
    factory = make_factory(admins=["root1"])
    admin = admin_logged_in(factory, "root1", port=45000)
    eve = Connection(factory, host="::ffff:192.0.2.9", port=40200).join("eve")
    admin.lines()
    admin.send("/ban 192.0.2.9 1h")
    assert "[Server] 192.0.2.9 was banned by root1 for 1h" in admin.lines()
    assert eve.transport.disconnecting
    assert b"This address is banned" in Connection(factory, host="::ffff:192.0.2.9", port=40201).raw()
    admin.send("/ban ::ffff:192.0.2.10 1h")
    assert "[Server] 192.0.2.10 was banned by root1 for 1h" in admin.lines()
    assert b"This address is banned" in Connection(factory, host="192.0.2.10", port=40202).raw()


def test_network_ban_disconnects_and_keeps_out_its_addresses():
    """/ban NETWORK disconnects those inside it, refuses their connections, and /unban lifts it."""
    factory = make_factory(admins=["root1"])
    admin = admin_logged_in(factory, "root1", port=45000)
    inside = Connection(factory, host="203.0.113.5", port=40300).join("inside")
    outside = Connection(factory, host="203.0.114.5", port=40301).join("outside")
    v6 = Connection(factory, host="2001:db8:1::7", port=40302).join("v6")
    admin.lines()
    admin.send("/ban 203.0.113.99/24 1d")
    admin.send("/ban 2001:DB8::/32")
    assert admin.lines()[:2] == [
        "[Server] 203.0.113.0/24 was banned by root1 for 1d",
        "[Server] 2001:db8::/32 was banned by root1 until lifted",
    ]
    assert inside.transport.disconnecting and v6.transport.disconnecting
    assert not outside.transport.disconnecting
    assert b"This address is banned" in Connection(factory, host="203.0.113.200", port=40303).raw()
    assert b"This address is banned" in Connection(factory, host="2001:db8:ffff::1", port=40304).raw()
    Connection(factory, host="203.0.112.255", port=40305).join("near")
    admin.lines()
    admin.send("/bans")
    assert admin.lines()[0] == "[Server] 2 bans:"
    admin.send("/unban 203.0.113.0/24")
    assert admin.lines() == ["[Server] root1 lifted the ban on 203.0.113.0/24"]
    Connection(factory, host="203.0.113.5", port=40306).join("back")


def test_network_bans_are_read_at_start_up_and_expire():
    """Bans in the database are indexed at start-up (network bans until they expire, mapped addresses as IPv4)."""
    factory = make_factory()
    database = factory.accounts.store.database
    database.add_ban("198.51.100.0/24", ADDRESS, 100, "", None, 0)
    database.add_ban("::ffff:7f00:2", ADDRESS, None, "", None, 0)
    bans = Bans(factory.accounts.store, factory.clock)
    bans.load()
    assert bans.find(None, "198.51.100.3").result.target == "198.51.100.0/24"
    assert bans.find(None, "127.0.0.2").result.target == "127.0.0.2"
    assert bans.find(None, "198.51.101.3").result is None
    factory.clock.advance(101)
    assert bans.find(None, "198.51.100.3").result is None


def test_nick_cannot_take_a_banned_nickname():
    """/nick to a banned nickname is refused, as a join under it would be."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/ban mallory 1h")
    bob.lines()
    bob.send("/nick Mallory")
    assert bob.lines() == ["[Server] cannot change nickname: Mallory is banned"]
    assert factory.chat.find("bob") is bob.protocol


def test_revoked_admin_loses_rights_at_the_next_admin_command():
    """An admin revoked in the database while online is told so and refused at the next admin command."""
    factory = make_factory()
    admin = admin_logged_in(factory, "root1", port=40400)
    bob = Connection(factory, port=40402).join("bob")
    admin.lines()
    factory.accounts.store.database.set_admin("root1", False)
    admin.send("/kick bob")
    assert admin.lines() == ["[Server] your admin rights were revoked: /kick is for admins"]
    assert not bob.transport.disconnecting
    assert not admin.protocol.is_admin
    admin.send("/bans")
    assert admin.lines() == ["[Server] permission denied: /bans is for admins"]


# Mutes


def test_mute_of_a_nickname_holds_across_reconnects_and_blocks_nick():
    """An unregistered user muted cannot shed the mute with /nick, nor by coming back."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/mute bob 1h")
    bob.lines()
    bob.send("/nick bobby")
    assert bob.lines() == ["[Server] cannot change nickname while you are muted"]
    bob.close()
    again = Connection(factory, port=40500).join("bob")
    again.send("hello")
    assert again.lines() == ["[Server] you are muted for another 1h"]


def test_mute_of_an_account_holds_under_any_nickname():
    """A registered user muted stays muted after logging in again and changing nickname."""
    factory = make_factory(admins=["root1"])
    admin = admin_logged_in(factory, "root1", port=40600)
    alice = registered(factory, "alice", port=40601)
    admin.send("/mute alice")
    alice.close()
    alice = log_in(factory, "alice", port=40602)
    alice.send("/nick zed")
    alice.lines()
    alice.send("hi")
    assert alice.lines() == ["[Server] you are muted until an admin lifts it"]
    assert factory.bans.mutes.find("zed") is None


def test_mutes_survive_a_restart():
    """Mutes are stored: a server started on the same database still has them."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/mute bob 10m")
    restarted = Bans(factory.accounts.store, factory.clock)
    restarted.load()
    assert restarted.mutes.muted_for(bob.protocol) == 600
    factory.clock.advance(601)
    assert restarted.mutes.muted_for(bob.protocol) == 0


def test_mute_unmute_and_mutes_work_for_someone_offline():
    """/mute and /unmute change a stored mute of someone offline; /mutes lists the mutes."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/mutes")
    assert admin.lines() == ["[Server] no mutes"]
    admin.send("/mute bob 10m")
    bob.close()
    admin.lines()
    admin.send("/mute BOB 2h")
    assert admin.lines() == ["[Server] bob was muted by root1 for 2h"]
    admin.send("/mutes")
    assert admin.lines() == ["[Server] 1 mute:", "[Server]   nickname bob by root1, for 2h"]
    admin.send("/unmute bob")
    assert admin.lines() == ["[Server] bob was unmuted by root1"]
    admin.send("/unmute bob")
    assert admin.lines() == ["[Server] bob is not muted"]
    admin.send("/mute carol")
    assert admin.lines() == ["[Server] nobody called carol is online or muted"]
    admin.send("/mute bob 10x")
    assert "10x is not a duration" in admin.lines()[0]


def test_muted_user_quits_without_a_reason_and_cannot_request():
    """A muted user's /quit reason is not shown, and /request is refused with the mute notice."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/mute bob")
    bob.lines()
    bob.send("/request root1")
    assert bob.lines() == ["[Server] you are muted until an admin lifts it"]
    assert admin.lines() == ["[Server] bob was muted by root1 until lifted"]
    bob.send("/quit visit evil.example")
    bob.close()
    assert admin.lines() == ["[Server] bob left the chat (quit)"]


# The approval queue


def approval_factory():
    factory = make_factory(admins=["root1"], approve_joins=True)
    admin = admin_logged_in(factory, "root1", port=41000)
    admin.lines()
    return factory, admin


def wait(factory, nickname, host, port):
    newcomer = Connection(factory, host=host, port=port)
    newcomer.lines()
    newcomer.send(nickname)
    return newcomer


def test_waiters_per_address_are_capped():
    """Beyond the cap, a newcomer from an address with people waiting is turned away."""
    factory, admin = approval_factory()
    for i in range(MAX_WAITERS_PER_ADDRESS):
        wait(factory, "w%d" % (i,), "192.0.2.50", 41100 + i)
    extra = wait(factory, "extra", "192.0.2.50", 41199)
    assert extra.lines() == [
        "[Server] %d people from your address already wait for approval: try again later"
        % (MAX_WAITERS_PER_ADDRESS,)
    ]
    assert extra.transport.disconnecting
    wait(factory, "other", "192.0.2.51", 41198)
    admin.send("/deny w0")
    assert not wait(factory, "again", "192.0.2.50", 41197).transport.disconnecting


def test_many_requests_to_join_are_summarised():
    """Beyond the first few, requests to join reach admins as one summary per period."""
    factory, admin = approval_factory()
    for i in range(12):
        wait(factory, "n%d" % (i,), "192.0.2.%d" % (i,), 41200 + i)
    told = admin.lines()
    assert len(told) == APPROVAL_NOTICES_IN_FULL
    assert told[0] == "[Server] n0 (192.0.2.0) asks to join: /approve n0 or /deny n0"
    factory.clock.advance(APPROVAL_SUMMARY_SECONDS)
    assert admin.lines() == ["[Server] %d more asked to join: /pending" % (12 - APPROVAL_NOTICES_IN_FULL,)]
    wait(factory, "late", "192.0.2.100", 41300)
    assert admin.lines() == []
    factory.clock.advance(APPROVAL_SUMMARY_SECONDS)
    assert admin.lines() == ["[Server] 1 more asked to join: /pending"]
    factory.clock.advance(2 * APPROVAL_SUMMARY_SECONDS)
    wait(factory, "calm", "192.0.2.101", 41301)
    assert admin.lines() == ["[Server] calm (192.0.2.101) asks to join: /approve calm or /deny calm"]


def test_pending_is_paged():
    """/pending shows 20 waiting newcomers a page and says how to see the next."""
    factory, admin = approval_factory()
    for i in range(25):
        wait(factory, "p%02d" % (i,), "198.51.100.%d" % (i,), 41400 + i)
    admin.lines()
    admin.send("/pending")
    page = admin.lines()
    assert page[0] == "[Server] 25 people waiting to join (page 1 of 2):"
    assert page[1].startswith("[Server]   p00 (198.51.100.0): /approve p00")
    assert len(page) == 22 and page[-1] == "[Server] /pending 2 for the next page"
    admin.send("/pending 2")
    page = admin.lines()
    assert len(page) == 6 and page[-1].startswith("[Server]   p24 ")
    admin.send("/pending 3")
    assert admin.lines() == ["[Server] there are only 2 pages"]
    for junk in ("x", "\u00b2"):
        admin.send("/pending " + junk)
        assert admin.lines() == ["[Server] usage: /pending [PAGE], PAGE a number from 1"]


def test_waiting_newcomer_can_quit():
    """A newcomer waiting for approval is told it can /quit, and /quit frees its nickname."""
    factory, admin = approval_factory()
    bob = wait(factory, "bob", "192.0.2.60", 41500)
    assert bob.lines()[-1] == "[Server] Type /quit to stop waiting."
    bob.send("hello?")
    assert bob.lines() == ["[Server] still waiting for an admin's approval: /quit to stop waiting"]
    bob.send("/QUIT bored")
    assert bob.lines() == ["[Server] Goodbye!"]
    assert bob.transport.disconnecting
    bob.close()
    assert factory.chat.waiting() == [] and factory.chat.waiting_from("192.0.2.60") == 0


# Stored mutes and network bans


def test_database_of_schema_1_gains_the_mutes_table(tmp_path):
    """A database made before mutes were stored is migrated on opening and keeps its bans."""
    import sqlite3

    from wazzap.persist import store

    path = str(tmp_path / "old.sqlite3")
    connection = sqlite3.connect(path)
    for statement in store.MIGRATIONS[0]:
        connection.execute(statement)
    connection.execute("PRAGMA application_id = %d" % (store.APPLICATION_ID,))
    connection.execute("PRAGMA user_version = 1")
    connection.execute(
        "INSERT INTO bans VALUES ('mallory', 'mallory', 'nickname', NULL, '', NULL, 0)"
    )
    connection.commit()
    connection.close()
    with Database.open(path) as db:
        assert db.schema_version() == store.SCHEMA_VERSION
        assert [ban.target for ban in db.active_bans(0)] == ["mallory"]
        db.add_mute("Bob", NICKNAME, None, "root1", 5)
        assert [(m.target, m.until) for m in db.active_mutes(0)] == [("Bob", None)]


def test_stored_mutes_expire_and_are_replaced():
    """A mute is replaced by a new one on the same target, ignored once over, and removed by unmute."""
    db = Database.open(":memory:")
    db.add_mute("alice", "account", 100, "root1", 0)
    db.add_mute("ALICE", "account", 200, "root2", 1)
    assert [(m.target, m.until, m.by) for m in db.active_mutes(150)] == [("ALICE", 200, "root2")]
    assert db.active_mutes(200) == []
    assert db.remove_mute("alice") and not db.remove_mute("alice")
    with pytest.raises(ValueError):
        db.add_mute("x", ADDRESS, None, None, 0)


def test_find_ban_matches_the_networks_given():
    """The database confirms a network ban only for the networks the index found."""
    db = Database.open(":memory:")
    db.add_ban("203.0.113.0/24", ADDRESS, None, "", None, 0)
    assert db.find_ban(None, "203.0.113.9", 0, ["203.0.113.0/24"]).target == "203.0.113.0/24"
    assert db.find_ban(None, "203.0.113.9", 0) is None
    assert db.find_ban(None, None, 0) is None
