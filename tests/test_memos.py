"""
Tests for offline messages (L{wazzap.persist.memos}, L{wazzap.commands.memos}
and the memo methods of L{wazzap.persist.store.Database}): in-memory SQLite, the real
protocol over L{StringTransport}s, and a L{Clock}.
"""

import sqlite3

import pytest
from twisted.internet import defer
from twisted.internet.task import deferLater

from tests.doubles import (
    ThreadedReactor,
    add_account,
    joined,
    log_in,
    make_factory,
    registered,
    started_threads,
)
from wazzap.persist import store
from wazzap.persist.memos import MAX_WAITING_PER_RECIPIENT, MAX_WAITING_PER_SENDER, sent_at
from wazzap.persist.store import (
    MEMO_KEPT,
    MEMO_RECIPIENT_FULL,
    MEMO_SENDER_FULL,
    MEMO_UNREGISTERED,
    SCHEMA_VERSION,
    STORE_THREADS,
    Database,
    Memo,
    Store,
    StoreError,
)
from wazzap.text import strip_styles

DAY = 86400
#: 2026-12-01 09:14 UTC.
MORNING = 1796116440.0
KEPT = (
    "[Server] alice is offline: your message will be delivered when they log in "
    "(/memos lists yours waiting)"
)
UNREGISTERED = (
    "[Server] carol is not online, and not registered: offline messages need a registered recipient"
)


def leave(database, sender="bob", recipient="alice", message="hi", at=MORNING):
    return database.leave_memo(
        sender, recipient, message, "", at, MAX_WAITING_PER_RECIPIENT, MAX_WAITING_PER_SENDER
    )


@pytest.fixture
def database():
    database = Database.open(":memory:")
    database.create_account("Alice", "hash")
    yield database
    database.close()


# The database


def test_a_memo_is_kept_for_a_registered_account_in_any_case(database):
    """A memo to ALICE is kept for the account Alice, named as registered."""
    assert leave(database, recipient="ALICE") == (MEMO_KEPT, "Alice")
    assert database.memos_for("alice") == [Memo(1, "bob", "Alice", "hi", "", MORNING)]
    assert database.memos_from("BOB") == database.memos_for("alice")


def test_a_memo_for_an_unregistered_nickname_is_not_kept(database):
    """Nothing waits for a nickname nobody registered."""
    assert leave(database, recipient="carol") == (MEMO_UNREGISTERED, None)
    assert database.memos_from("bob") == []


def test_a_sender_may_leave_five_for_one_recipient(database):
    """The sixth memo from one nickname to one recipient is refused, to another one kept."""
    database.create_account("dave", "hash")
    for index in range(MAX_WAITING_PER_SENDER):
        assert leave(database, sender="Bob", message=str(index))[0] == MEMO_KEPT
    assert leave(database, sender="BOB") == (MEMO_SENDER_FULL, "Alice")
    assert leave(database, sender="bob", recipient="dave")[0] == MEMO_KEPT
    assert len(database.memos_for("alice")) == MAX_WAITING_PER_SENDER


def test_a_recipient_may_have_twenty_waiting(database):
    """The twenty-first memo for one recipient is refused, whoever sends it."""
    for index in range(MAX_WAITING_PER_RECIPIENT):
        assert leave(database, sender="sender%d" % (index // 4,))[0] == MEMO_KEPT
    assert leave(database, sender="newcomer") == (MEMO_RECIPIENT_FULL, "Alice")
    assert len(database.memos_for("alice")) == MAX_WAITING_PER_RECIPIENT


def test_memos_come_oldest_first_and_go_by_id(database):
    """Memos are listed in the order they were left; delete_memos takes exactly the ids given."""
    for message in ("one", "two", "three"):
        leave(database, message=message)
    memos = database.memos_for("alice")
    assert [memo.text for memo in memos] == ["one", "two", "three"]
    assert database.delete_memos([memos[0].id, memos[2].id]) == 2
    assert database.delete_memos([]) == 0
    assert [memo.text for memo in database.memos_for("alice")] == ["two"]


def test_take_back_by_number(database):
    """take_back_memo deletes the Nth of the sender's memos and says how many there were."""
    for message in ("one", "two"):
        leave(database, message=message)
    leave(database, sender="carol", message="not bob's")
    assert database.take_back_memo("bob", 3) == (None, 2)
    memo, waiting = database.take_back_memo("BOB", 2)
    assert (memo.text, waiting) == ("two", 2)
    assert [memo.text for memo in database.memos_for("alice")] == ["one", "not bob's"]


def test_deleting_an_account_deletes_the_memos_waiting_for_it(database):
    """Memos for an account go with it, those it sent stay, and a new owner of the nickname sees none."""
    database.create_account("dave", "hash")
    leave(database)
    leave(database, sender="alice", recipient="dave")
    assert database.delete_account("alice")
    assert database.memos_for("alice") == []
    assert [memo.text for memo in database.memos_for("dave")] == ["hi"]
    database.create_account("alice", "other hash")
    assert database.memos_for("alice") == []


def test_a_failed_write_is_one_line_and_keeps_nothing(database):
    """A closed database fails leave_memo with a one-line StoreError."""
    database.close()
    with pytest.raises(StoreError, match="cannot write to database :memory:") as caught:
        leave(database)
    assert "\n" not in str(caught.value)


def test_a_failure_inside_the_transaction_rolls_it_back(database):
    """A statement failing after the checks leaves no half-made memo and no open transaction."""
    database._connection.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON memos BEGIN SELECT RAISE(ABORT, 'no'); END"
    )
    with pytest.raises(StoreError):
        leave(database)
    assert not database._connection.in_transaction
    assert database.memos_for("alice") == []


def test_an_older_database_gets_memos_and_keeps_its_accounts(tmp_path):
    """Opening a file from before the memos table adds it, keeping accounts and sessions."""
    path = str(tmp_path / "old.sqlite3")
    before = next(
        index for index, statements in enumerate(store.MIGRATIONS)
        if any("CREATE TABLE memos" in statement for statement in statements)
    )
    connection = sqlite3.connect(path, isolation_level=None)
    for statements in store.MIGRATIONS[:before]:
        for statement in statements:
            connection.execute(statement)
    connection.execute("PRAGMA application_id = %d" % (store.APPLICATION_ID,))
    connection.execute("PRAGMA user_version = %d" % (before,))
    connection.execute(
        "INSERT INTO accounts (nickname_key, nickname, password_hash, created_at) "
        "VALUES ('alice', 'Alice', 'hash', 1)"
    )
    connection.close()
    with Database.open(path) as database:
        assert database.schema_version() == SCHEMA_VERSION
        assert database.get_account("alice").password_hash == "hash"
        assert leave(database)[0] == MEMO_KEPT


def test_the_store_runs_every_memo_method_on_its_thread(tmp_path):
    """The threaded Store offers leave_memo and its kin, answering through Deferreds."""
    reactor = ThreadedReactor()
    threads = started_threads(reactor, STORE_THREADS, "wazzap-store")
    try:
        async_store = Store.open(str(tmp_path / "wazzap.sqlite3"), threads)
        reactor.wait(async_store.create_account("alice", "hash"))
        assert reactor.wait(async_store.leave_memo("bob", "alice", "hi", "", 1.0, 20, 5)) == (
            MEMO_KEPT,
            "alice",
        )
        (memo,) = reactor.wait(async_store.memos_for("alice"))
        assert reactor.wait(async_store.memos_from("bob")) == [memo]
        assert reactor.wait(async_store.take_back_memo("bob", 1)) == (memo, 1)
        assert reactor.wait(async_store.delete_memos([memo.id])) == 0
        reactor.wait(async_store.close())
    finally:
        reactor.wait(threads.stopService())


# Times


def test_sent_at_gives_the_date_only_when_not_today():
    """A time of today is HH:MM UTC; of another day, with its date."""
    assert sent_at(MORNING, MORNING + 3600) == "09:14 UTC"
    assert sent_at(MORNING, MORNING + DAY) == "2026-12-01 09:14 UTC"


# Through the protocol


@pytest.fixture
def factory():
    """
    A server on a Clock at 09:14 UTC whose alice is registered and offline.
    """
    factory = make_factory()
    factory.clock.advance(MORNING)
    add_account(factory, "alice", "correct horse")
    return factory


def waiting(factory, nickname="alice"):
    return [memo.text for memo in factory.accounts.store.database.memos_for(nickname)]


def test_a_message_to_an_offline_user_waits_for_their_login(factory):
    """@alice while alice is away is kept, acknowledged, and shown after her welcome when she logs in."""
    (bob,) = joined(factory, "bob")
    bob.send("@alice see you at lunch")
    assert bob.lines() == [KEPT]
    factory.clock.advance(3600)
    alice = log_in(factory, "alice")
    lines = alice.lines()
    assert lines[0].startswith("[Server] Welcome, alice!")
    assert lines[1:] == [
        "[Server] 1 message came while you were away:",
        "[PM from bob] (09:14 UTC) see you at lunch",
    ]
    assert waiting(factory) == []
    alice.close()
    assert log_in(factory, "alice", port=46001).lines()[1:] == []


def test_msg_and_colours_wait_too_and_old_ones_show_their_date(factory):
    """/msg and /private leave memos like @nick, with their colour; one from yesterday is dated."""
    (bob,) = joined(factory, "bob")
    bob.send("/msg ALICE first")
    bob.send("/private alice /color red second")
    assert bob.lines() == [KEPT, KEPT]
    factory.clock.advance(DAY)
    alice = log_in(factory, "alice")
    raw = alice.raw().decode("utf-8")
    assert "\x1b[31m(2026-12-01 09:14 UTC) second" in raw
    assert strip_styles(raw).splitlines()[1:] == [
        "[Server] 2 messages came while you were away:",
        "[PM from bob] (2026-12-01 09:14 UTC) first",
        "[PM from bob] (2026-12-01 09:14 UTC) second",
    ]


def test_the_online_path_is_unchanged(factory):
    """To someone online, a private message goes at once and nothing is stored."""
    bob, carol = joined(factory, "bob", "carol")
    bob.send("@carol psst")
    assert carol.lines() == ["[PM from bob] psst"]
    assert bob.lines() == ["[PM to carol] psst"]
    assert factory.accounts.store.database.memos_from("bob") == []


@pytest.mark.parametrize(
    "line, notice",
    [
        ("@carol hi", UNREGISTERED),
        ("/msg carol hi", UNREGISTERED),
        (
            "@no!body hi",
            "[Server] no!body is not online, and not registered: "
            "offline messages need a registered recipient",
        ),
        ("@alice", "[Server] the message is empty: say something after the nickname"),
        ("/msg alice   ", "[Server] the message is empty: say something after the nickname"),
    ],
)
def test_bad_memos_get_one_notice_and_keep_nothing(factory, line, notice):
    """An unregistered or impossible nickname, or an empty text, gets one notice and stores nothing."""
    (bob,) = joined(factory, "bob")
    bob.send(line)
    assert bob.lines() == [notice]
    assert waiting(factory) == []


def test_past_five_from_one_sender_a_clear_notice(factory):
    """The sixth waiting message from one nickname to one person is refused and says what to do."""
    (bob,) = joined(factory, "bob")
    for index in range(MAX_WAITING_PER_SENDER):
        bob.send("@alice message %d" % (index,))
    bob.lines()
    bob.send("@alice one too many")
    assert bob.lines() == [
        "[Server] you already have 5 messages waiting for alice, the most allowed: "
        "yours was not kept (/memos lists them, /unsend N takes one back)"
    ]
    assert len(waiting(factory)) == MAX_WAITING_PER_SENDER
    # By nickname: the same nickname on a new connection counts the same.
    bob.close()
    (again,) = joined(factory, "BOB")
    again.send("@alice still too many")
    assert "you already have 5 messages waiting for alice" in again.lines()[0]


def test_past_twenty_for_one_recipient_a_clear_notice(factory):
    """The twenty-first waiting message for one person is refused, whoever sends it."""
    senders = joined(factory, "s1", "s2", "s3", "s4", "s5")
    for sender in senders[:4]:
        for index in range(MAX_WAITING_PER_SENDER):
            sender.send("@alice %d" % (index,))
    senders[4].send("@alice hello")
    assert senders[4].lines() == [
        "[Server] alice is offline and already has 20 messages waiting, the most allowed: "
        "yours was not kept"
    ]
    assert len(waiting(factory)) == MAX_WAITING_PER_RECIPIENT


def test_consent_refuses_as_it_does_online():
    """With consent by default, a memo is refused with the notice someone online would give."""
    factory = make_factory(consent=True)
    add_account(factory, "alice", "correct horse")
    bob, carol = joined(factory, "bob", "carol")
    bob.send("@carol hi")
    online_notice = bob.lines()
    assert online_notice == [
        "[Server] carol takes private messages only in a private chat: ask with /request carol"
    ]
    bob.send("@ALICE hi")
    assert bob.lines() == [online_notice[0].replace("carol", "alice")]
    bob.send("@dave hi")
    assert bob.lines() == [UNREGISTERED.replace("carol", "dave")]
    assert waiting(factory) == []


def test_memos_and_unsend(factory):
    """/memos numbers what you left; /unsend N takes one back and says which."""
    add_account(factory, "dave", "correct horse")
    (bob,) = joined(factory, "bob")
    bob.send("/memos")
    assert bob.lines() == ["[Server] you have no messages waiting to be delivered"]
    bob.send("@alice first")
    bob.send("@dave " + "x" * 100)
    bob.lines()
    bob.send("/memos")
    assert bob.lines() == [
        "[Server] your messages waiting to be delivered (/unsend N takes one back):",
        "[Server]   1. to alice, 09:14 UTC: first",
        "[Server]   2. to dave, 09:14 UTC: " + "x" * 59 + "\u2026",
    ]
    bob.send("/unsend 1")
    assert bob.lines() == ["[Server] took back your message to alice, 09:14 UTC: first"]
    assert waiting(factory) == []
    assert len(waiting(factory, "dave")) == 1


@pytest.mark.parametrize(
    "args, notice",
    [
        ("", "usage: /unsend N, where N is the number /memos shows"),
        ("one", "usage: /unsend N, where N is the number /memos shows"),
        ("-1", "usage: /unsend N, where N is the number /memos shows"),
        ("1.5", "usage: /unsend N, where N is the number /memos shows"),
        ("\u0663", "usage: /unsend N, where N is the number /memos shows"),
        ("0", "there is no message 0: /memos lists yours"),
        ("2", "there is no message 2: you have 1 waiting, /memos lists them"),
        ("9" * 3000, "there is no message %s: /memos lists yours" % ("9" * 3000,)),
    ],
)
def test_unsend_with_junk_or_out_of_range_changes_nothing(factory, args, notice):
    """/unsend with no number, a non-number or one out of range gets one notice and takes nothing."""
    (bob,) = joined(factory, "bob")
    bob.send("@alice kept")
    bob.lines()
    bob.send("/unsend " + args)
    assert bob.lines() == ["[Server] " + notice]
    assert waiting(factory) == ["kept"]


def test_unsend_with_nothing_waiting(factory):
    """/unsend when nothing waits says so."""
    (bob,) = joined(factory, "bob")
    bob.send("/unsend 1")
    assert bob.lines() == ["[Server] you have no messages waiting to be delivered"]


def test_unregistering_deletes_the_memos_waiting(factory):
    """/unregister deletes what waited for the account."""
    carol = registered(factory, "carol")
    carol.send("/nick carol2")  # online under another name: @carol waits
    (bob,) = joined(factory, "bob")
    bob.send("@carol kept")
    assert waiting(factory, "carol") == ["kept"]
    carol.send("/unregister correct horse")
    assert "[Server] the account carol is gone" in carol.lines()
    assert waiting(factory, "carol") == []


def test_help_lists_the_memo_commands(factory):
    """/help has /memos and /unsend, and /help msg says messages wait for the offline."""
    (bob,) = joined(factory, "bob")
    bob.send("/help")
    lines = bob.lines()
    assert "[Server]   /memos -- your messages waiting for people offline, numbered for /unsend." in lines
    assert "[Server]   /unsend N -- take back message N of /memos before it is delivered." in lines
    bob.send("/help msg")
    assert any("/memos lists yours waiting" in line for line in bob.lines())


# What is acknowledged, and when


class SlowStore:
    """
    C{factory}'s store, with the calls named in C{slow} answering only
    when the clock has advanced a second.
    """

    def __init__(self, store, clock, slow):
        self._store = store
        self._clock = clock
        self._slow = slow

    def __getattr__(self, name):
        method = getattr(self._store, name)
        if name not in self._slow:
            return method
        return lambda *args: deferLater(self._clock, 1, lambda: None).addCallback(
            lambda _: method(*args)
        )


def slow(factory, *names):
    memos = factory.commands.memos
    memos.store = SlowStore(memos.store, factory.clock, names)


def test_the_sender_is_told_only_once_it_is_committed(factory):
    """No acknowledgement, and none of the sender's next lines, before the write has returned."""
    slow(factory, "leave_memo")
    bob, carol = joined(factory, "bob", "carol")
    bob.send("@alice hi")
    bob.send("said after")
    assert bob.lines() == [] and carol.lines() == [] and waiting(factory) == []
    factory.clock.advance(1)
    assert bob.lines() == [KEPT]
    assert carol.lines() == ["bob: said after"]
    assert waiting(factory) == ["hi"]


def test_a_failed_write_is_told_and_nothing_is_claimed():
    """With the database locked, the sender hears it was not kept, never that it will be delivered."""
    factory = make_factory(locked=True)
    add_account(factory, "alice", "correct horse")
    (bob,) = joined(factory, "bob")
    bob.send("@alice hi")
    assert bob.lines() == []
    factory.clock.advance(store.BUSY_TIMEOUT_SECONDS)
    assert bob.lines() == [
        "[Server] your message to alice could not be kept (the database failed), "
        "so it was not sent: try again later"
    ]
    assert waiting(factory) == []


def test_memos_are_deleted_only_after_they_were_written(factory):
    """At login the memos are written to the connection before they are deleted."""
    (bob,) = joined(factory, "bob")
    bob.send("@alice hi")
    slow(factory, "delete_memos")
    alice = log_in(factory, "alice")
    assert "[PM from bob] (09:14 UTC) hi" in alice.lines()
    assert waiting(factory) == ["hi"]
    factory.clock.advance(1)
    assert waiting(factory) == []


def test_someone_gone_before_the_database_answers_keeps_their_memos(factory):
    """A login that ends before the waiting memos are read leaves them for the next one."""
    (bob,) = joined(factory, "bob")
    bob.send("@alice hi")
    slow(factory, "memos_for")
    alice = log_in(factory, "alice")
    alice.close()
    factory.clock.advance(1)
    assert waiting(factory) == ["hi"]
    alice = log_in(factory, "alice", port=46001)
    factory.clock.advance(1)
    assert "[PM from bob] (09:14 UTC) hi" in alice.lines()
    assert waiting(factory) == []


def test_a_failed_read_at_login_keeps_them_and_the_user_in(factory):
    """If the waiting memos cannot be read, the login goes on and they stay for the next."""
    (bob,) = joined(factory, "bob")
    bob.send("@alice hi")
    memos = factory.commands.memos
    real = memos.store

    class Failing:
        def __getattr__(self, name):
            if name == "memos_for":
                return lambda *args: defer.fail(StoreError("database :memory:: the disk is full"))
            return getattr(real, name)

    memos.store = Failing()
    alice = log_in(factory, "alice")
    lines = alice.lines()
    assert lines[0].startswith("[Server] Welcome, alice!") and len(lines) == 1
    assert waiting(factory) == ["hi"]


def test_an_admin_gets_the_memos_after_the_admin_lines(factory):
    """An admin's memos come after the welcome and the admin notices."""
    add_account(factory, "root1", "correct horse", admin=True)
    (bob,) = joined(factory, "bob")
    bob.send("@root1 hi")
    root = log_in(factory, "root1")
    lines = root.lines()
    assert lines[1] == "[Server] You are an admin: /help lists your commands."
    assert lines[-2:] == [
        "[Server] 1 message came while you were away:",
        "[PM from bob] (09:14 UTC) hi",
    ]
