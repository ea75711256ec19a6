"""
The contract of the store's database (L{wazzap.persist.sql.SqlDatabase}),
for every backend: a test module imports these tests and gives a C{db}
fixture (an open, new database) and an C{open_db} fixture (a function
opening another connection to the same database, with C{create} as
L{wazzap.persist.store.open_database} takes it, closed when the test ends).
"""

import pickle

import pytest

from wazzap.core.records import Account
from wazzap.persist.store import (
    ACCOUNT,
    ADDRESS,
    MEMO_KEPT,
    MEMO_RECIPIENT_FULL,
    MEMO_SENDER_FULL,
    MEMO_UNREGISTERED,
    NICKNAME,
    Ban,
    Memo,
    Mute,
    Session,
    StoreError,
)


def test_reopen_keeps_data(db, open_db):
    """What one connection wrote is there when the database is opened again."""
    db.create_account("Alice", "hash", at=10)
    db.add_ban("10.0.0.1", ADDRESS, None, "spam", "Alice", 11)
    db.close()
    again = open_db(create=False)
    assert not again.created
    assert again.get_account("alice") == Account("Alice", "hash", False, 10)
    assert [b.target for b in again.active_bans(12)] == ["10.0.0.1"]


def test_two_connections(db, open_db):
    """The admin command's writes are seen by a server holding the database open."""
    admin = open_db(create=False)
    db.create_account("alice", "hash", at=1)
    assert admin.set_admin("alice", True)
    assert db.get_account("alice").is_admin


def test_a_new_database_says_it_was_created(db):
    """Opening an empty database creates the schema and says so."""
    assert db.created


def test_use_after_close_is_a_store_error(db):
    """Using a closed database is a one-line StoreError, not a driver's error."""
    db.close()
    with pytest.raises(StoreError) as raised:
        db.get_account("alice")
    assert "closed" in str(raised.value) and "\n" not in str(raised.value)
    db.close()


# Accounts


def test_create_and_get_account(db):
    """An account is found under any case and keeps the nickname as typed."""
    assert db.create_account("Alice", "hash", at=5)
    assert db.get_account("ALICE") == Account("Alice", "hash", False, 5)
    assert db.get_account("bob") is None


def test_create_account_taken(db):
    """A nickname taken in another case cannot be created again."""
    assert db.create_account("Alice", "one", at=1)
    assert not db.create_account("alice", "two", at=2)
    assert db.get_account("alice").password_hash == "one"


def test_create_account_default_time(db):
    """Without a time the account is created now."""
    db.create_account("alice", "hash")
    assert db.get_account("alice").created_at > 1_600_000_000


def test_set_password(db):
    """The password hash can be replaced, for existing accounts only."""
    db.create_account("Alice", "old", at=1)
    assert db.set_password("aLiCe", "new")
    assert db.get_account("alice").password_hash == "new"
    assert not db.set_password("bob", "new")


def test_delete_account(db):
    """A deleted account is gone; deleting it again says so."""
    db.create_account("Alice", "hash", at=1)
    assert db.delete_account("ALICE")
    assert db.get_account("alice") is None
    assert not db.delete_account("alice")


def test_set_admin(db):
    """The admin flag can be set and cleared, for existing accounts only."""
    db.create_account("Alice", "hash", at=1)
    assert db.set_admin("alice", True)
    assert db.get_account("Alice").is_admin is True
    assert db.set_admin("ALICE", False)
    assert db.get_account("Alice").is_admin is False
    assert not db.set_admin("bob", True)


def test_list_accounts(db):
    """Accounts are listed case-insensitively by nickname."""
    db.create_account("bob", "b", at=2)
    db.create_account("Alice", "a", at=1)
    db.create_account("carol", "c", at=3)
    db.set_admin("carol", True)
    assert db.list_accounts() == [
        Account("Alice", "a", False, 1),
        Account("bob", "b", False, 2),
        Account("carol", "c", True, 3),
    ]


# Sessions


def test_sessions(db):
    """A session is recorded at login and closed once at logout."""
    first = db.session_started("Alice", "127.0.0.1", 100)
    assert db.last_seen("alice") == Session("Alice", "127.0.0.1", 100, None, None)
    assert db.session_ended(first, 160, "quit")
    assert not db.session_ended(first, 170, "again")
    assert db.last_seen("ALICE") == Session("Alice", "127.0.0.1", 100, 160, "quit")
    assert db.last_seen("bob") is None


def test_history(db):
    """History is newest first, limited, and only the nickname's own."""
    for i in range(5):
        session = db.session_started("alice" if i % 2 else "Alice", "::%d" % (i,), 10 * i)
        db.session_ended(session, 10 * i + 5, "quit")
    db.session_started("bob", "::9", 15)
    history = db.history("ALICE")
    assert [s.login_at for s in history] == [40, 30, 20, 10, 0]
    assert [s.nickname for s in history[:2]] == ["Alice", "alice"]
    assert [s.login_at for s in db.history("alice", limit=2)] == [40, 30]
    assert db.history("nobody") == []


def test_close_dangling_sessions(db):
    """Sessions a crashed server left open are closed; ended ones are untouched."""
    ended = db.session_started("alice", "::1", 1)
    db.session_ended(ended, 2, "quit")
    db.session_started("bob", "::2", 3)
    db.session_started("carol", "::3", 4)
    assert db.close_dangling_sessions(100, "server stopped") == 2
    assert db.last_seen("bob") == Session("bob", "::2", 3, 100, "server stopped")
    assert db.last_seen("alice").reason == "quit"
    assert db.close_dangling_sessions(200, "server stopped") == 0


def ended_sessions(db, count, login_at, duration=10):
    """Record C{count} sessions starting at C{login_at}, each ended C{duration} later."""
    for _ in range(count):
        db.session_ended(db.session_started("alice", "::1", login_at), login_at + duration, "quit")


def prune_all(db, ended_before, batch):
    """Prune in batches as the server does; return the rows deleted and the calls made."""
    deleted, calls, after_id = 0, 0, 0
    while after_id is not None:
        count, after_id = db.prune_sessions(ended_before, after_id, batch=batch)
        deleted, calls = deleted + count, calls + 1
    return deleted, calls


def test_prune_sessions_deletes_only_those_ended_before(db):
    """Pruning deletes sessions that ended before the cut-off, and keeps later and open ones."""
    still_open = db.session_started("bob", "::2", 5)
    ended_sessions(db, 7, login_at=10)
    ended_sessions(db, 3, login_at=100)
    assert prune_all(db, ended_before=50, batch=3) == (7, 3)
    assert [s.login_at for s in db.history("alice")] == [100, 100, 100]
    assert db.last_seen("bob").logout_at is None
    assert db.session_ended(still_open, 6, "quit")


def test_prune_sessions_stops_at_recent_ones(db):
    """Pruning stops at the first batch holding a session started after the cut-off."""
    ended_sessions(db, 4, login_at=10)
    ended_sessions(db, 100, login_at=100)
    assert prune_all(db, ended_before=50, batch=5) == (4, 1)
    assert len(db.history("alice", limit=1000)) == 100


def test_prune_sessions_of_an_empty_history(db):
    """Pruning an empty history deletes nothing, in one call."""
    assert prune_all(db, ended_before=50, batch=5) == (0, 1)


# Bans


def test_ban_expires(db):
    """A timed ban is found until it ends, and then no longer."""
    db.add_ban("Mallory", NICKNAME, 100, "spam", "alice", 10)
    ban = Ban("Mallory", NICKNAME, 100, "spam", "alice", 10)
    assert db.find_ban("mallory", "10.0.0.1", 99.5) == ban
    assert db.active_bans(99.5) == [ban]
    assert db.find_ban("mallory", "10.0.0.1", 100) is None
    assert db.active_bans(100) == []


def test_permanent_address_ban(db):
    """An address ban with no end is found for anyone from that address."""
    db.add_ban("2001:DB8::1", ADDRESS, None, "abuse", None, 10)
    assert db.find_ban("anyone", "2001:db8::1", 1e12).target == "2001:DB8::1"
    assert db.find_ban(None, "2001:db8::1", 1e12).until is None
    assert db.find_ban("anyone", "2001:db8::2", 1e12) is None


def test_ban_kinds_do_not_mix(db):
    """A nickname ban does not match an address of the same text, nor the reverse."""
    db.add_ban("alice", NICKNAME, None, "", None, 1)
    db.add_ban("10.0.0.1", ADDRESS, None, "", None, 1)
    assert db.find_ban("bob", "alice", 2) is None
    assert db.find_ban("10.0.0.1", "10.0.0.2", 2) is None


def test_find_ban_prefers_longest(db):
    """When both the nickname and the address are banned, the longer ban is reported."""
    db.add_ban("mallory", NICKNAME, 500, "nick", None, 1)
    db.add_ban("10.0.0.1", ADDRESS, 900, "address", None, 1)
    assert db.find_ban("mallory", "10.0.0.1", 2).reason == "address"
    db.add_ban("MALLORY", NICKNAME, None, "for ever", None, 3)
    assert db.find_ban("mallory", "10.0.0.1", 4).reason == "for ever"


def test_ban_replaced(db):
    """Banning a target again replaces its ban."""
    db.add_ban("mallory", NICKNAME, None, "first", "alice", 1)
    db.add_ban("Mallory", NICKNAME, 50, "second", "bob", 2)
    assert db.active_bans(3) == [Ban("Mallory", NICKNAME, 50, "second", "bob", 2)]


def test_remove_ban(db):
    """A ban can be lifted once, in any case."""
    db.add_ban("mallory", NICKNAME, None, "", None, 1)
    assert db.remove_ban("MALLORY")
    assert db.find_ban("mallory", "::1", 2) is None
    assert not db.remove_ban("mallory")


def test_bad_ban_kind(db):
    """A ban on anything but a nickname or an address is a programming error."""
    with pytest.raises(ValueError):
        db.add_ban("x", "planet", None, "", None, 1)


# Mutes


def test_mutes_in_force_and_lifted(db):
    """A mute is in force until it ends, replaced by a new one, and lifted once."""
    db.add_mute("Alice", ACCOUNT, 100, "boss", 10)
    db.add_mute("bob", NICKNAME, None, None, 5)
    assert db.active_mutes(50) == [
        Mute("bob", NICKNAME, None, None, 5),
        Mute("Alice", ACCOUNT, 100, "boss", 10),
    ]
    assert db.active_mutes(100) == [Mute("bob", NICKNAME, None, None, 5)]
    db.add_mute("ALICE", ACCOUNT, 300, "carol", 20)
    assert db.active_mutes(200)[-1] == Mute("ALICE", ACCOUNT, 300, "carol", 20)
    assert db.remove_mute("alice") and not db.remove_mute("alice")
    assert db.active_mutes(200) == [Mute("bob", NICKNAME, None, None, 5)]
    with pytest.raises(ValueError):
        db.add_mute("x", ADDRESS, None, None, 1)


def test_find_ban_in_networks(db):
    """A network ban is found through the networks the caller names, and no other way."""
    db.add_ban("10.0.0.0/8", ADDRESS, None, "range", None, 1)
    assert db.find_ban(None, "10.1.2.3", 2, ["10.0.0.0/8"]).target == "10.0.0.0/8"
    assert db.find_ban(None, "10.1.2.3", 2) is None
    assert db.find_ban(None, None, 2) is None


# Room history


def lines(*ids, at=None):
    """History lines with these ids, at their id as a time unless C{at} says."""
    return [(i, float(i if at is None else at), "said", "alice", "line %d" % (i,)) for i in ids]


def test_history_written_and_read(db):
    """Lines written in chunks are counted and read back in order, per room and id range."""
    db.write_history([("#lobby", lines(1, 2, 3)), ("#other", lines(4))])
    db.write_history([("#lobby", lines(5, 6))])
    assert db.room_lines([("#lobby", 10, 0, None), ("#other", 10, 0, None)]) == [
        (5, [(i, float(i), ("said", "alice", "line %d" % (i,))) for i in (1, 2, 3, 5, 6)]),
        (1, [(4, 4.0, ("said", "alice", "line 4"))]),
    ]
    count, got = db.room_lines([("#lobby", 2, 1, 5)])[0]
    assert (count, [line[0] for line in got]) == (3, [3, 5])
    assert db.room_lines([("#lobby", 0, 0, None)]) == [(5, [])]
    assert db.last_history_id() == 6


def test_history_of_servers_sharing_a_room_is_read_in_id_order(db):
    """Chunks whose ids interleave (two servers writing one room) read back as the newest lines, in order."""
    for ids in ((1, 3, 5, 7), (2, 4, 6, 8), (9, 11), (10, 12)):
        db.write_history([("#lobby", lines(*ids))])
    for limit, first in ((5, 8), (6, 7), (12, 1)):
        count, got = db.room_lines([("#lobby", limit, 0, None)])[0]
        assert (count, [line[0] for line in got]) == (12, list(range(first, 13)))
    count, got = db.room_lines([("#lobby", 3, 2, 10)])[0]
    assert (count, [line[0] for line in got]) == (8, [8, 9, 10])


def test_history_chunks_are_cut_and_replaced(db):
    """A long batch is kept as several chunks; one written again replaces the old."""
    db.write_history([("#lobby", lines(*range(1, 600)))])
    assert db.room_lines([("#lobby", 1000, 0, None)])[0][0] == 599
    db.write_history([("#lobby", lines(1, 2))])
    count, got = db.room_lines([("#lobby", 1000, 0, None)])[0]
    assert count == 2 + 599 - 256 and got[0][0] == 1


def test_history_gone_and_forgotten_rooms(db):
    """Lines up to an id go with C{gone}; forgetting rooms keeps only those named."""
    db.write_history([("#a", lines(1)), ("#a", lines(2)), ("#b", lines(3)), ("#c", lines(4))])
    db.write_history(gone=[("#a", 1)])
    assert db.room_lines([("#a", 10, 0, None)])[0][0] == 1
    db.forget_rooms_except(["#a", "#b"])
    queries = [(room, 9, 0, None) for room in ("#a", "#b", "#c")]
    assert [count for count, _ in db.room_lines(queries)] == [1, 1, 0]
    db.forget_rooms_except([])
    assert db.room_lines([("#a", 9, 0, None)])[0][0] == 0


def test_read_positions(db):
    """Read positions are replaced per account, kept in order, and go with the account."""
    db.create_account("Alice", "hash", at=1)
    db.write_history(positions=[("alice", [("#b", 7, False), ("#a", 3, True)])])
    assert db.read_positions("ALICE") == [("#b", 7, False), ("#a", 3, True)]
    assert db.last_history_id() == 7
    db.write_history(positions=[("alice", [("#a", 4, True)]), ("bob", [("#c", 1, False)])])
    assert db.read_positions("alice") == [("#a", 4, True)]
    db.delete_account("alice")
    assert db.read_positions("alice") == []
    assert db.read_positions("bob") == [("#c", 1, False)]


def test_prune_history_by_age(db):
    """Chunks all older than the cut-off go, oldest first, in batches."""
    for i in range(1, 6):
        db.write_history([("#lobby", lines(i, at=10 * i))])
    assert db.prune_history_before(35, batch=2) == (2, True)
    assert db.prune_history_before(35, batch=2) == (1, False)
    assert db.prune_history_before(35, batch=2) == (0, False)
    assert db.room_lines([("#lobby", 10, 0, None)])[0][0] == 2


def test_prune_crowded_rooms(db):
    """A room beyond its lines keeps its newest, the boundary chunk cut."""
    db.write_history([("#big", lines(1, 2, 3))])
    db.write_history([("#big", lines(4, 5))])
    db.write_history([("#small", lines(6))])
    assert db.crowded_rooms(3) == ["#big"]
    assert db.prune_room_lines("#big", 3) == 2
    count, got = db.room_lines([("#big", 10, 0, None)])[0]
    assert (count, [line[0] for line in got]) == (3, [3, 4, 5])
    assert db.prune_room_lines("#big", 3) == 0
    assert db.prune_room_lines("#big", 2) == 1
    assert db.crowded_rooms(3) == []


def test_tampered_history_is_refused(db):
    """A chunk that is not plain values is a StoreError, never run."""
    db.write_history([("#lobby", lines(1))])
    import wazzap.persist.sql as sql

    real = sql._dumps
    try:
        sql._dumps = lambda chunk: pickle.dumps([(2, 2.0, pickle.loads)])
        db.write_history([("#lobby", lines(2))])
    finally:
        sql._dumps = real
    with pytest.raises(StoreError, match="unreadable"):
        db.room_lines([("#lobby", 10, 0, None)])


# Offline messages


def test_memos_kept_listed_and_delivered(db):
    """A memo for an account is kept, listed for both ends, and deleted once delivered."""
    assert db.leave_memo("bob", "alice", "hi", "", 1, 10, 5) == (MEMO_UNREGISTERED, None)
    db.create_account("Alice", "hash", at=1)
    assert db.leave_memo("Bob", "alice", "hi", "red", 2, 10, 5) == (MEMO_KEPT, "Alice")
    assert db.leave_memo("carol", "ALICE", "yo", "", 3, 10, 5) == (MEMO_KEPT, "Alice")
    waiting = db.memos_for("alice")
    assert [(m.sender, m.recipient, m.text, m.style, m.sent_at) for m in waiting] == [
        ("Bob", "Alice", "hi", "red", 2), ("carol", "Alice", "yo", "", 3),
    ]
    assert db.memos_from("BOB") == [waiting[0]]
    assert db.delete_memos([m.id for m in waiting]) == 2
    assert db.delete_memos([]) == 0
    assert db.memos_for("alice") == []


def test_memo_limits(db):
    """The recipient's and the sender's limits are checked before a memo is kept."""
    db.create_account("alice", "hash", at=1)
    assert db.leave_memo("bob", "alice", "1", "", 1, 3, 2)[0] == MEMO_KEPT
    assert db.leave_memo("bob", "alice", "2", "", 2, 3, 2)[0] == MEMO_KEPT
    assert db.leave_memo("BOB", "alice", "3", "", 3, 3, 2)[0] == MEMO_SENDER_FULL
    assert db.leave_memo("carol", "alice", "3", "", 3, 3, 2)[0] == MEMO_KEPT
    assert db.leave_memo("dave", "alice", "4", "", 4, 3, 2)[0] == MEMO_RECIPIENT_FULL
    assert len(db.memos_for("alice")) == 3


def test_take_back_memo_and_memos_go_with_the_account(db):
    """A sender takes back its Nth memo; deleting the account deletes those waiting."""
    db.create_account("alice", "hash", at=1)
    for i in range(3):
        db.leave_memo("bob", "alice", "m%d" % (i,), "", i, 10, 5)
    memo, waited = db.take_back_memo("bob", 2)
    assert (memo.text, waited) == ("m1", 3)
    assert db.take_back_memo("bob", 3) == (None, 2)
    assert isinstance(db.memos_for("alice")[0], Memo)
    assert db.delete_account("alice")
    assert db.memos_for("alice") == [] and db.memos_from("bob") == []
