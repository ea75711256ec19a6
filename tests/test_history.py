"""
Tests for room history: the writer and reader of L{wazzap.persist.history}
on an in-memory database and a L{Clock}, its schema migration, and what
members are told (L{wazzap.core.replay}) over connections on
L{StringTransport}s.
"""

import sqlite3

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import Logger

from tests.doubles import (
    Connection,
    SynchronousHasher,
    SynchronousStore,
    add_account,
    connect,
    log_in,
)
from wazzap.persist import store
from wazzap.persist.accounts import Accounts
from wazzap.persist.bans import Bans
from wazzap.chat import Chat
from wazzap.core import events
from wazzap.core.replay import HISTORY_PAGE_SECONDS, NOW, SINCE_LEFT_LINES
from wazzap.core.rooms import LOBBY
from wazzap.listeners.line import render
from wazzap.persist.history import (
    BATCH_INTERVAL_SECONDS,
    DAY,
    MAX_UNWRITTEN_LINES,
    HistoryLog,
    HistoryRetention,
)
from wazzap.server import ChatFactory, Limits
from wazzap.persist.store import SCHEMA_VERSION, Database, StoreError

#: 2026-12-01 09:30 UTC: a clock at a time with a date.
NOON_ISH = 1796117400.0
PASSWORD = "correct horse"


class CountingStore(SynchronousStore):
    """
    A L{SynchronousStore} that counts its history transactions, and holds
    their answers back while C{hold} is set, as a slow disk would.
    """

    def __init__(self):
        SynchronousStore.__init__(self)
        self.transactions = []
        self.hold = False
        self.held = []

    def write_history(self, chunks=(), positions=(), gone=()):
        self.transactions.append([line for _, lines in chunks for line in lines])
        self.database.write_history(chunks, positions, gone)
        if not self.hold:
            return defer.succeed(None)
        answer = defer.Deferred()
        self.held.append(answer)
        return answer

    def release(self):
        held, self.held = self.held, []
        for answer in held:
            answer.callback(None)


def make_log(tail_lines=20, days=7, store=None, rooms=(LOBBY,)):
    clock = Clock()
    clock.advance(NOON_ISH)
    store = store or CountingStore()
    return HistoryLog.open(store, clock, list(rooms), days, tail_lines), store, clock


def said(text, nickname="alice"):
    return events.Said(nickname, "red", text)


def texts(lines):
    return [line[3].text for line in lines]


def read(log, *queries):
    results = []
    log.read(list(queries)).addCallback(results.append)
    return results[0]


# Writing in batches


def test_a_turn_of_lines_is_one_transaction():
    """The lines recorded in one reactor turn are written in one transaction, at the end of it."""
    log, saved, clock = make_log()
    for word in ("one", "two", "three"):
        log.record(LOBBY, said(word))
    assert saved.transactions == []
    clock.advance(0)
    assert [len(lines) for lines in saved.transactions] == [3]


def test_transactions_are_at_least_the_interval_apart():
    """A line recorded just after a write waits until the batch interval has passed."""
    log, saved, clock = make_log()
    log.record(LOBBY, said("one"))
    clock.advance(0)
    log.record(LOBBY, said("two"))
    clock.advance(BATCH_INTERVAL_SECONDS / 2)
    assert len(saved.transactions) == 1
    clock.advance(BATCH_INTERVAL_SECONDS / 2)
    assert len(saved.transactions) == 2


def test_one_transaction_at_a_time():
    """While a transaction is under way, new lines wait for it rather than start another."""
    log, saved, clock = make_log()
    saved.hold = True
    log.record(LOBBY, said("one"))
    clock.advance(0)
    log.record(LOBBY, said("two"))
    clock.advance(1)
    assert len(saved.transactions) == 1
    saved.release()
    clock.advance(0)
    assert [texts_of(lines) for lines in saved.transactions] == [["one"], ["two"]]


def texts_of(rows):
    return [events.unpack(row[2:]).text for row in rows]


def test_a_full_queue_drops_its_oldest_lines_with_one_warning():
    """While the disk lags, the unwritten lines stay bounded: the oldest go, and the log warns once."""
    log, saved, clock = make_log()
    logged = []
    log.log = Logger(observer=logged.append)
    saved.hold = True
    log.record(LOBBY, said("in flight"))
    clock.advance(0)
    for number in range(MAX_UNWRITTEN_LINES + 5):
        log.record(LOBBY, said(str(number)))
    warnings = [event for event in logged if "dropping" in event["log_format"]]
    assert len(warnings) == 1
    saved.release()
    clock.advance(1)
    written = texts_of(saved.transactions[1])
    assert len(written) == MAX_UNWRITTEN_LINES
    assert written[0] == "5" and written[-1] == str(MAX_UNWRITTEN_LINES + 4)


def test_flush_writes_at_once():
    """flush() writes what is held without waiting for the timer, and fires once written."""
    log, saved, clock = make_log()
    log.record(LOBBY, said("one"))
    done = log.flush()
    assert done.called
    assert len(saved.transactions) == 1


# Reading merged with what is not written


def test_reads_include_lines_not_yet_written():
    """A read gives written and unwritten lines together, in order, and counts them all."""
    log, saved, clock = make_log()
    for word in ("one", "two"):
        log.record(LOBBY, said(word))
    clock.advance(0)
    saved.hold = True
    log.record(LOBBY, said("three"))
    clock.advance(1)  # in flight
    log.record(LOBBY, said("four"))  # queued
    ((count, lines),) = read(log, (LOBBY, 10, 0, None))
    assert count == 4
    assert texts(lines) == ["one", "two", "three", "four"]


@pytest.mark.parametrize("per_batch", [1, 3, 10])
def test_reads_take_the_last_lines_between_ids(per_batch):
    """A read gives the last N lines after one id and up to another, across batches written."""
    log, saved, clock = make_log()
    ids = []
    for number in range(10):
        log.record(LOBBY, said(str(number)))
        ids.append(log.mark())
        if number % per_batch == per_batch - 1:
            clock.advance(BATCH_INTERVAL_SECONDS)
    clock.advance(BATCH_INTERVAL_SECONDS)
    ((count, lines),) = read(log, (LOBBY, 3, ids[1], ids[7]))
    assert count == 6
    assert texts(lines) == ["5", "6", "7"]
    ((count, lines),) = read(log, (LOBBY, 10, 0, None))
    assert count == 10
    assert texts(lines) == [str(number) for number in range(10)]


def test_lines_of_other_rooms_are_not_read():
    """Each room's history is its own."""
    log, saved, clock = make_log(rooms=(LOBBY, "#maths"))
    log.record(LOBBY, said("lobby"))
    log.record("#maths", said("maths"))
    clock.advance(0)
    log.record("#maths", said("maths unwritten"))
    ((count, lines),) = read(log, ("#MATHS", 10, 0, None))
    assert texts(lines) == ["maths", "maths unwritten"]


def test_tail_is_the_last_lines_up_to_a_mark_and_young_enough():
    """The replay tail keeps the last lines in memory, up to an id, and none older than the retention."""
    log, saved, clock = make_log(tail_lines=3, days=1)
    log.record(LOBBY, said("old"))
    clock.advance(DAY + 1)
    for word in ("a", "b"):
        log.record(LOBBY, said(word))
    mark = log.mark()
    log.record(LOBBY, said("later"))
    assert texts(log.tail(LOBBY, mark, 10)) == ["a", "b"]
    assert texts(log.tail(LOBBY, log.mark(), 2)) == ["b", "later"]


# Surviving a restart


def test_lines_and_positions_survive_reopening(tmp_path):
    """A new log on the same database has the lines and positions, and numbers new lines after them."""
    path = str(tmp_path / "wazzap.sqlite3")
    first_store = CountingStore()
    first_store.database = Database.open(path)
    log, _, clock = make_log(store=first_store)
    log.record(LOBBY, said("before"))
    log.left("Alice", [(LOBBY, log.mark(), True)])
    log.flush()
    first_store.database.close()
    second_store = CountingStore()
    second_store.database = Database.open(path)
    again, _, clock = make_log(store=second_store)
    assert texts(again.tail(LOBBY, again.mark(), 10)) == ["before"]
    positions = []
    again.positions("alice").addCallback(positions.append)
    assert positions == [[(LOBBY, 1, True)]]
    again.record(LOBBY, said("after"))
    assert again.mark() == 2


def test_positions_not_yet_written_are_read_from_memory():
    """Where someone left is known at once, before it is written."""
    log, saved, clock = make_log()
    log.left("Alice", [("#maths", 7, False)])
    positions = []
    log.positions("ALICE").addCallback(positions.append)
    assert positions == [[("#maths", 7, False)]]


def test_rooms_that_vanished_with_the_last_server_are_forgotten():
    """At start-up only permanent rooms keep their history."""
    saved = CountingStore()
    log, _, clock = make_log(store=saved, rooms=(LOBBY, "#maths"))
    log.record(LOBBY, said("kept"))
    log.record("#maths", said("kept too"))
    log.record("#tmp", said("gone"))
    log.flush()
    make_log(store=saved, rooms=(LOBBY,))
    counts = saved.database.room_lines([(room, 10, 0, None) for room in ("#lobby", "#maths", "#tmp")])
    assert [count for count, _ in counts] == [1, 0, 0]


def test_a_room_that_vanishes_takes_its_history():
    """room_gone deletes the room's lines, written or not, and its tail."""
    log, saved, clock = make_log()
    log.record("#tmp", said("written"))
    clock.advance(0)
    log.record("#tmp", said("unwritten"))
    log.room_gone("#tmp")
    clock.advance(1)
    assert read(log, ("#tmp", 10, 0, None)) == [(0, [])]
    assert log.tail("#tmp", log.mark(), 10) == []


# Retention


def retention(log, saved, clock, days, max_lines):
    service = HistoryRetention(saved, days, max_lines, clock)
    service.startService()
    service.stopService()


def test_retention_deletes_old_lines():
    """Lines older than --history-days go; younger ones stay."""
    log, saved, clock = make_log()
    log.record(LOBBY, said("old"))
    clock.advance(3 * DAY)
    log.record(LOBBY, said("young"))
    log.flush()
    retention(log, saved, clock, 2, 100)
    ((count, rows),) = saved.database.room_lines([("#lobby", 10, 0, None)])
    assert [events.unpack(row[2]).text for row in rows] == ["young"]


@pytest.mark.parametrize("per_batch", [1, 4, 100])
def test_retention_keeps_the_newest_lines_of_each_room(per_batch):
    """A room keeps at most --history-lines lines, its newest, however they were batched."""
    log, saved, clock = make_log(rooms=(LOBBY, "#maths"))
    for number in range(23):
        log.record(LOBBY, said(str(number)))
        if number % per_batch == per_batch - 1:
            clock.advance(BATCH_INTERVAL_SECONDS)
    log.record("#maths", said("alone"))
    log.flush()
    retention(log, saved, clock, 7, 5)
    ((count, rows),) = saved.database.room_lines([("#lobby", 10, 0, None)])
    assert count == 5
    assert [events.unpack(row[2]).text for row in rows] == [str(n) for n in range(18, 23)]
    assert saved.database.room_lines([("#maths", 10, 0, None)])[0][0] == 1


def test_zero_days_keeps_nothing():
    """With --history-days 0 the retention deletes every line."""
    log, saved, clock = make_log()
    log.record(LOBBY, said("one"))
    log.flush()
    retention(log, saved, clock, 0, 100)
    assert saved.database.room_lines([("#lobby", 10, 0, None)])[0][0] == 0


# The schema


def schema_2_database(path):
    """
    A file as the wazzap of schema version 2 left it, with an account, a
    ban and a session.
    """
    connection = sqlite3.connect(path, isolation_level=None)
    for statements in store.MIGRATIONS[:2]:
        for statement in statements:
            connection.execute(statement)
    connection.execute("PRAGMA application_id = %d" % (store.APPLICATION_ID,))
    connection.execute("PRAGMA user_version = 2")
    connection.close()


def test_a_schema_2_database_migrates_keeping_everything(tmp_path):
    """An existing database is brought forward with its accounts, bans and login history."""
    path = str(tmp_path / "old.sqlite3")
    schema_2_database(path)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(
        "INSERT INTO accounts VALUES ('alice', 'Alice', 'hash', 1, 10)"
    )
    connection.execute(
        "INSERT INTO bans VALUES ('10.0.0.1', '10.0.0.1', 'address', NULL, 'spam', 'Alice', 11)"
    )
    connection.execute(
        "INSERT INTO sessions (nickname_key, nickname, address, login_at) "
        "VALUES ('alice', 'Alice', '10.0.0.2', 12)"
    )
    connection.close()
    with Database.open(path) as database:
        assert database.schema_version() == SCHEMA_VERSION
        assert database.get_account("alice").is_admin
        assert [ban.target for ban in database.active_bans(20)] == ["10.0.0.1"]
        assert database.history("alice")[0].address == "10.0.0.2"
        database.write_history([("#lobby", [(1, 13.0) + events.pack(said("hi"))])])
        assert database.room_lines([("#lobby", 10, 0, None)])[0][0] == 1


def test_a_newer_database_is_refused_in_one_line(tmp_path):
    """A file from a newer wazzap is refused with one line saying to upgrade."""
    path = str(tmp_path / "new.sqlite3")
    Database.open(path).close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = %d" % (SCHEMA_VERSION + 1,))
    connection.close()
    with pytest.raises(StoreError, match="newer than this wazzap knows") as raised:
        Database.open(path)
    assert "\n" not in str(raised.value)


# What members are told


def history_factory(replay_lines=20, approve_joins=False, rooms=()):
    clock = Clock()
    clock.advance(NOON_ISH)
    saved = SynchronousStore()
    accounts = Accounts(saved, SynchronousHasher(), (), clock)
    log = HistoryLog.open(saved, clock, [LOBBY, *rooms], 7, replay_lines)
    chat = Chat(clock, rooms=rooms, history=log, replay_lines=replay_lines)
    return ChatFactory(
        chat,
        accounts,
        Bans(saved, clock),
        Limits(flood_rate_lines_per_second=0),
        clock=clock,
        approve_joins=approve_joins,
    )


def talk(connection, *lines):
    for line in lines:
        connection.send(line)


def test_a_late_joiner_sees_the_replay_in_order():
    """Joining replays the room's last lines, marked with their time, then --- now ---."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "one", "two", "/me waves")
    bob = Connection(factory, port=40002)
    bob.lines()
    bob.send("bob")
    lines = bob.lines()
    start = lines.index("[history #lobby 09:30] alice: one")
    assert lines[start:] == [
        "[history #lobby 09:30] alice: one",
        "[history #lobby 09:30] alice: two",
        "[history #lobby 09:30] * alice waves",
        "[Server] " + NOW,
    ]
    talk(alice, "three")
    assert bob.lines() == ["alice: three"]


def test_comings_and_goings_are_not_history():
    """Joins, parts and quits are not replayed: only what was said, and the room's own notices."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "one")
    bob = Connection(factory, port=40002).join("bob")
    talk(bob, "/join #maths", "/part #maths")
    bob.close()
    carol = Connection(factory, port=40003)
    carol.lines()
    carol.send("carol")
    replayed = [line for line in carol.lines() if line.startswith("[history")]
    assert replayed == ["[history #lobby 09:30] alice: one"]
    ((count, lines),) = read(factory.chat.history, (LOBBY, 10, 0, None))
    assert (count, [type(line[3]) for line in lines]) == (1, [events.Said])


def join_in_one_turn(factory, *nicknames, port=40010):
    """
    Connections that send their nicknames in the same reactor turn, then
    the turn's end; each connection's output since its greeting.
    """
    connections = [connect(factory, port + number) for number in range(len(nicknames))]
    for connection, nickname in zip(connections, nicknames):
        connection.protocol.dataReceived(nickname.encode("ascii") + b"\n")
    factory.clock.advance(0)
    return connections


def test_a_crowd_joining_in_one_turn_shares_one_rendered_replay(monkeypatch):
    """Ten people joining in one turn are told the same replay, rendered once, not ten times."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "one", "two", "/me waves")
    rendered = []
    history_line = render.LineRenderer._history_line

    def counted(renderer, event, recipient):
        rendered.append(event)
        return history_line(renderer, event, recipient)

    monkeypatch.setattr(render.LineRenderer, "_history_line", counted)
    crowd = join_in_one_turn(factory, *["n%d" % number for number in range(10)])
    expected = [
        "[history #lobby 09:30] alice: one",
        "[history #lobby 09:30] alice: two",
        "[history #lobby 09:30] * alice waves",
        "[Server] " + NOW,
    ]
    for connection in crowd:
        lines = connection.lines()
        start = lines.index(expected[0])
        assert lines[start : start + 4] == expected
    assert len(rendered) == 3


def test_a_line_said_between_two_joiners_of_a_turn_is_in_the_second_replay():
    """A replay shared in a turn is made again once the room has said more: each hears every line once."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "one")
    alice.lines()
    bob, carol = connect(factory, 40002), connect(factory, 40003)
    bob.protocol.dataReceived(b"bob\n")
    alice.protocol.dataReceived(b"two\n")
    carol.protocol.dataReceived(b"carol\n")
    factory.clock.advance(0)
    bob_lines, carol_lines = bob.lines(), carol.lines()
    assert [line for line in bob_lines if "one" in line or "two" in line] == [
        "[history #lobby 09:30] alice: one",
        "alice: two",
    ]
    assert [line for line in carol_lines if "one" in line or "two" in line] == [
        "[history #lobby 09:30] alice: one",
        "[history #lobby 09:30] alice: two",
    ]


def test_replay_zero_shows_nothing():
    """--replay 0 shows no history and no separator."""
    quiet = history_factory(replay_lines=0)
    alice = Connection(quiet, port=40001).join("alice")
    talk(alice, "one")
    carol = Connection(quiet, port=40003)
    carol.lines()
    carol.send("carol")
    assert not [line for line in carol.lines() if "history" in line or NOW in line]


def test_replay_of_two_lines():
    """A replay of two lines is the two newest."""
    factory = history_factory(replay_lines=2)
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "one", "two", "three")
    bob = Connection(factory, port=40002)
    bob.lines()
    bob.send("bob")
    lines = bob.lines()
    assert lines[-3:] == [
        "[history #lobby 09:30] alice: two",
        "[history #lobby 09:30] alice: three",
        "[Server] " + NOW,
    ]


def test_joining_a_room_replays_it():
    """/join of a room with history replays that room's lines to the newcomer only."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "/join #maths", "x squared")
    bob = Connection(factory, port=40002).join("bob")
    bob.send("/join #maths")
    lines = bob.lines()
    assert "[history #maths 09:30] alice: x squared" in lines
    assert lines[-1] == "[Server] " + NOW
    assert not any("history" in line for line in alice.lines())


def test_nothing_is_replayed_while_waiting_for_approval():
    """Someone waiting for an admin's approval is told no history."""
    factory = history_factory(approve_joins=True)
    add_account(factory, "root1", PASSWORD, admin=True)
    admin = log_in(factory, "root1", PASSWORD, 40001)
    talk(admin, "secret plans")
    waiter = Connection(factory, port=40002)
    waiter.lines()
    waiter.send("bob")
    assert not any("history" in line for line in waiter.lines())


def test_private_messages_are_not_history():
    """A private message is never in a room's history."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    bob = Connection(factory, port=40002).join("bob")
    talk(alice, "@bob psst")
    assert "[PM from alice] psst" in bob.lines()
    carol = Connection(factory, port=40003)
    carol.lines()
    carol.send("carol")
    assert not any("psst" in line for line in carol.lines())


def test_topics_and_notices_are_history():
    """A topic change is kept with the room's lines."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "/join #maths", "/topic algebra")
    bob = Connection(factory, port=40002).join("bob")
    bob.send("/join #maths")
    assert any(
        "alice set the topic of #maths: algebra" in line and line.startswith("[history")
        for line in bob.lines()
    )


def test_a_user_room_that_vanishes_loses_its_history():
    """Once a room made by users empties, a room of that name starts with no history."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "/join #tmp", "forget me", "/part #tmp")
    alice.lines()
    alice.send("/join #tmp")
    assert not any("forget me" in line for line in alice.lines())


def test_permanent_rooms_keep_their_history_when_empty():
    """A --room room keeps its lines when everybody has left it."""
    factory = history_factory(rooms=("#maths",))
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "/join #maths", "remember me", "/part #maths")
    alice.lines()
    alice.send("/join #maths")
    assert "[history #maths 09:30] alice: remember me" in alice.lines()


# Since you left


def registered_in(factory, nickname, port, *rooms):
    add_account(factory, nickname, PASSWORD)
    connection = log_in(factory, nickname, PASSWORD, port)
    for room in rooms:
        connection.send("/join " + room)
    connection.lines()
    return connection


def test_since_you_left_tells_exactly_what_was_said():
    """A registered user coming back is put back in its rooms and told what was said since, once."""
    factory = history_factory()
    bob = Connection(factory, port=40002).join("bob")
    talk(bob, "/join #maths", "/join #lobby")
    alice = registered_in(factory, "alice", 40001, "#maths")
    talk(bob, "before she left")
    alice.close()
    talk(bob, "in the lobby", "/join #maths", "in maths")
    bob.lines()
    alice = log_in(factory, "alice", PASSWORD, 40003)
    lines = alice.lines()
    history = [line for line in lines if line.startswith("[history")]
    assert history == [
        "[history #lobby 09:30] bob: in the lobby",
        "[history #maths 09:30] bob: in maths",
    ]
    assert lines[-1] == "[Server] " + NOW
    assert lines.index("[Server] you are back in #maths; you talk in #maths") < lines.index(
        "[history #lobby 09:30] bob: in the lobby"
    )
    talk(bob, "live")
    assert "bob: live" in alice.lines()
    assert factory.chat.room_of(alice.protocol).name == "#maths"


def test_since_you_left_skips_what_is_past_the_limit():
    """More than the limit since leaving: the newest are told, and a line says how to see the rest."""
    factory = history_factory()
    bob = Connection(factory, port=40002).join("bob")
    alice = registered_in(factory, "alice", 40001)
    alice.close()
    for number in range(SINCE_LEFT_LINES + 5):
        bob.send(str(number))
    alice = log_in(factory, "alice", PASSWORD, 40003)
    lines = alice.lines()
    history = [line for line in lines if line.startswith("[history")]
    assert len(history) == SINCE_LEFT_LINES
    assert history[-1].endswith("bob: %d" % (SINCE_LEFT_LINES + 4,))
    assert (
        "[Server] #lobby: 5 earlier lines since you left are not shown: /history #lobby 105"
        in lines
    )


def test_first_login_of_a_registered_user_is_a_replay():
    """A registered user with no rooms left from gets the replay like anyone."""
    factory = history_factory()
    bob = Connection(factory, port=40002).join("bob")
    talk(bob, "hello")
    add_account(factory, "alice", PASSWORD)
    alice = log_in(factory, "alice", PASSWORD, 40001)
    assert "[history #lobby 09:30] bob: hello" in alice.lines()


# /history


def test_history_shows_the_last_lines_of_the_room():
    """/history N shows a room's last N lines between a heading and an end line."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    talk(alice, "one", "two", "three")
    alice.lines()
    alice.send("/history 2")
    assert alice.lines() == [
        "[Server] the last 2 lines of #lobby:",
        "[history #lobby 09:30] alice: two",
        "[history #lobby 09:30] alice: three",
        "[Server] end of the history of #lobby",
    ]


def test_history_is_paged_a_turn_at_a_time():
    """A long /history goes out a page at a time, not all at once."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    for number in range(120):
        alice.send(str(number))
    alice.lines()
    alice.send("/history 120")
    first = alice.lines()
    factory.clock.advance(HISTORY_PAGE_SECONDS)
    factory.clock.advance(HISTORY_PAGE_SECONDS)
    rest = alice.lines()
    assert len([line for line in first if line.startswith("[history")]) == 50
    assert len([line for line in rest if line.startswith("[history")]) == 70
    assert rest[-1] == "[Server] end of the history of #lobby"


@pytest.mark.parametrize(
    "command, notice",
    [
        ("/history 0", "[Server] N is a number of lines from 1 to 1000, not 0"),
        ("/history 1001", "[Server] N is a number of lines from 1 to 1000, not 1001"),
        ("/history #maths", "[Server] you are not in #maths: /history shows only rooms you are in"),
        ("/history #lobby 5 6", "[Server] usage: /history [#ROOM] [N]"),
        ("/history 5 #lobby", "[Server] usage: /history [#ROOM] [N]"),
        ("/history ++5", "[Server] usage: /history [#ROOM] [N]"),
        ("/history #lobby \u00b2", "[Server] usage: /history [#ROOM] [N]"),
        (
            "/history bob",
            "[Server] permission denied: /history NICK is for admins; "
            "/history [#ROOM] [N] shows the lines of a room",
        ),
    ],
)
def test_bad_history_requests_get_one_notice(command, notice):
    """/history with junk, a room one is not in, or N out of range gets one clear notice."""
    factory = history_factory()
    alice = Connection(factory, port=40001).join("alice")
    alice.send(command)
    assert alice.lines() == [notice]


def test_admins_history_of_a_nickname_is_their_sessions():
    """/history NICK still lists an admin the sessions of NICK, as /sessions does."""
    factory = history_factory()
    add_account(factory, "root1", PASSWORD, admin=True)
    admin = log_in(factory, "root1", PASSWORD, 40001)
    Connection(factory, port=40002).join("carol").close()
    admin.lines()
    admin.send("/history carol")
    lines = admin.lines()
    assert lines[0] == "[Server] last 1 sessions of carol:"
    admin.send("/sessions carol")
    assert admin.lines() == lines


# Rendering


def test_history_lines_are_dimmed_in_colour_and_plain_without():
    """The colour renderer dims a history line and drops its colours; the plain one adds none."""
    event = events.History("#lobby", NOON_ISH, False, events.Said("alice", "red", "hi", "blue"))
    assert render.COLORED.render((event,), None) == (
        b"\x1b[2m[history #lobby 09:30] alice: hi\x1b[0m\r\n"
    )
    assert render.PLAIN.render((event,), None) == b"[history #lobby 09:30] alice: hi\r\n"


def test_history_lines_of_another_day_have_their_date():
    """A line from another day shows its date as well as its time."""
    event = events.History("#lobby", NOON_ISH, True, events.Joined("bob"))
    assert render.PLAIN.render((event,), None) == (
        b"[history #lobby 2026-12-01 09:30] [Server] bob joined the chat\r\n"
    )


def test_a_tampered_chunk_is_refused_not_run(tmp_path):
    """History that names a class (which only a tampered file could) is refused with a StoreError."""
    import os
    import pickle

    with Database.open(str(tmp_path / "w.sqlite3")) as database:
        database._connection.execute(
            "INSERT INTO room_history VALUES ('#lobby', 1, 1, 1.0, 1, ?)",
            (pickle.dumps([(1, 1.0, os.system)]),),
        )
        with pytest.raises(StoreError, match="unreadable"):
            database.room_lines([("#lobby", 10, 0, None)])


# Options


def test_history_options_have_their_defaults_and_limits():
    """--history-days, --history-lines and --replay default to 7, 10,000 and 20; a bad value is one line."""
    from wazzap.app.tap import Options

    options = Options()
    options.parseOptions([])
    assert (options["history-days"], options["history-lines"], options["replay"]) == (7, 10_000, 20)
    for bad, says in (
        (["--replay", "1001"], "--replay must be at most 1000"),
        (["--history-days", "-1"], "--history-days must be at least 0"),
        (["--history-lines", "0"], "--history-lines must be at least 1"),
    ):
        with pytest.raises(SystemExit, match=says) as raised:
            Options().parseOptions(bad)
        assert "\n" not in str(raised.value)


def test_a_large_batch_is_written_in_pieces_read_back_whole():
    """A batch longer than a chunk is stored in several rows and read back in order."""
    log, saved, clock = make_log()
    total = store.HISTORY_CHUNK_LINES * 2 + 3
    for number in range(total):
        log.record(LOBBY, said(str(number)))
    clock.advance(0)
    rows = saved.database._query("SELECT lines FROM room_history ORDER BY first_id")
    assert [row[0] for row in rows] == [store.HISTORY_CHUNK_LINES, store.HISTORY_CHUNK_LINES, 3]
    ((count, lines),) = read(log, (LOBBY, total, 0, None))
    assert count == total
    assert texts(lines) == [str(number) for number in range(total)]


def test_deleting_an_account_forgets_its_read_positions():
    """A deleted account's read positions go with it: a new owner of the nickname starts afresh."""
    database = Database.open(":memory:")
    database.create_account("alice", "hash", at=1)
    database.create_account("bob", "hash", at=1)
    database.write_history(positions=[("Alice", [("#lobby", 5, True)]), ("bob", [("#art", 7, True)])])
    assert database.delete_account("alice")
    assert database.read_positions("alice") == []
    assert database.read_positions("bob") == [("#art", 7, True)]


def test_servers_sharing_a_sqlite_file_number_their_lines_apart(tmp_path):
    """Two histories on one file through Redis get server numbers of their own: no line id is both's."""
    first, second = SynchronousStore(), SynchronousStore()
    for one_store in (first, second):
        one_store.database.close()
        one_store.database = Database.open(str(tmp_path / "shared.sqlite3"))
    clock = Clock()
    clock.advance(NOON_ISH)
    logs = [HistoryLog.open(s, clock, [LOBBY], 7, 20, shared=True) for s in (first, second)]
    ids = [log.record(LOBBY, said("same moment %d" % n)) for n in range(3) for log in logs]
    assert len(set(ids)) == 6
    for log in logs:
        log.flush()
    assert sorted(texts(read(logs[0], (LOBBY, 10, 0, None))[0][1])) == sorted(
        "same moment %d" % n for n in range(3) for _ in logs
    )


def test_a_line_heard_from_another_server_is_replayed_and_marked():
    """A line another server published is in the tail with its id, and the mark is past it."""
    log, _, _ = make_log()
    own = log.record(LOBBY, said("here"))
    log.remember(LOBBY, said("there", "bob"), own + 5000)
    assert log.mark() == own + 5000
    assert texts(log.tail(LOBBY, log.mark(), 10)) == ["here", "there"]
    assert log.record(LOBBY, said("again")) == own + 1
