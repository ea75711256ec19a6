"""
The Redis bus and presence against a real C{redis-server}: the contracts
every bus and presence keeps, then what only several processes show (two
L{Cluster}s in this test process stand for two wazzap processes).

The link is real (the global reactor, spun here for a bounded time); the
heartbeat and the turn's flush run on a L{Clock} each test moves.
"""

import shutil
import time
from itertools import count
from types import SimpleNamespace

import pytest
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from tests import contract_bus, contract_presence
from tests.certificates import make_certificates
from tests.servers import REDIS_MISSING, RedisServer
from tests.doubles import RecordingMember
from wazzap.bus.local import LocalBus
from wazzap.chat import Chat
from wazzap.bus.redis import LEASE_SECONDS, SILENT_SECONDS, Cluster, RedisBus, RedisPresence
from wazzap.bus.redis_link import RedisLink, parse_redis_url
from wazzap.core import events
from wazzap.core.identity import process_id
from wazzap.core.outbox import Outbox
from wazzap.failures import OperatorError
from wazzap.flow import TurnFlusher

SPIN_SECONDS = 5


def spin(done, seconds=SPIN_SECONDS):
    """
    Run the reactor until C{done()} is true; fail after C{seconds}.
    """
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("not done in %s s" % (seconds,))
        reactor.runUntilCurrent()
        reactor.doIteration(0.01)


def wait(deferred):
    results = []
    deferred.addBoth(results.append)
    spin(lambda: results)
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class Process:
    """
    What one wazzap process has of Redis: its cluster, presence and bus,
    with members recorded.
    """

    def __init__(self, url, name, prefix="test:"):
        self.clock = Clock()
        address = parse_redis_url(url)
        self.cluster = Cluster(
            lambda *callbacks: RedisLink(address, reactor, *callbacks),
            prefix,
            lambda: name,
            self.clock,
        )
        self.presence = RedisPresence(self.cluster)
        self.bus = RedisBus(self.cluster, LocalBus(Outbox(TurnFlusher(self.clock))), self.presence)
        self.cluster.startService()
        spin(lambda: self.cluster.up)

    def member(self, nickname, number):
        member = RecordingMember(nickname)
        member.session_key = "%s.%d" % (self.cluster.process, number)
        return member

    def end_turn(self):
        spin(lambda: not self.bus.in_flight)
        self.clock.advance(0)

    def stop(self):
        wait(self.cluster.stopService())


@pytest.fixture
def processes(redis_server):
    started = []

    def start(name, prefix="test:"):
        process = Process(redis_server.url, name, prefix)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.cluster.running:
            process.stop()
    # Let the connections close before the server goes.
    spin(lambda: True)


@pytest.fixture
def presence_setup(processes):
    # The contract's sessions ("1.1", ...) are this process's.
    return SimpleNamespace(presence=processes("1").presence, wait=wait)


@pytest.fixture
def bus_setup(processes):
    # The contract's members have this test process's session keys.
    here = processes(process_id())
    elsewhere = processes("2")
    # Someone elsewhere in every room the contract uses: its lines go through Redis.
    for room in ("lobby", "other", "empty"):
        elsewhere.presence.enter(room, "2.99")
    spin(lambda: all(here.presence.count(room) for room in ("lobby", "other", "empty")))
    return SimpleNamespace(bus=here.bus, end_turn=here.end_turn)


class Recording:
    """
    An observer of presence that records what one of its calls is given
    (as a tuple, or the one value) in C{into}, and takes the others.
    """

    def __init__(self, name, into):
        self._name = name
        self._into = into

    def __getattr__(self, name):
        if name == self._name:
            return lambda *args: self._into.append(args if len(args) > 1 else args[0])
        return lambda *args: None


def _contract(module):
    for name in dir(module):
        if name.startswith("test_"):
            globals()["test_contract_" + name[5:]] = getattr(module, name)


_contract(contract_presence)
_contract(contract_bus)


def test_a_redis_url_gives_host_port_database_password_and_tls():
    """The URL's parts, the password from REDIS_PASSWORD when the URL has none, and clear refusals."""
    address = parse_redis_url("rediss://:s%40cret@cache.example:6380/2")
    assert (address.host, address.port, address.db, address.password, address.tls) == (
        "cache.example", 6380, 2, "s@cret", True
    )
    address = parse_redis_url("redis://127.0.0.1", environ={"REDIS_PASSWORD": "pw"})
    assert (address.port, address.db, address.password, address.tls) == (6379, 0, "pw", False)
    for url, why in (
        ("http://x", "starts redis://"),
        ("redis://x:99999", "port"),
        ("redis:///0", "no host"),
        ("redis://x/zero", "database is a number"),
    ):
        with pytest.raises(OperatorError, match=why):
            parse_redis_url(url, environ={})


def test_exactly_one_of_two_processes_wins_a_nickname(processes):
    """Two processes claiming one nickname at once: one wins, and both then see the winner."""
    one, two = processes("1"), processes("2")
    for attempt in range(5):
        nickname = "racer%d" % attempt
        first = one.presence.claim("1.%d" % attempt, nickname)
        second = two.presence.claim("2.%d" % attempt, nickname)
        won = [wait(first), wait(second)]
        assert sorted(won) == [False, True]
        winner = "1.%d" % attempt if won[0] else "2.%d" % attempt
        spin(lambda: one.presence.locate(nickname) == two.presence.locate(nickname) == winner)


def test_presence_is_mirrored_by_every_process(processes):
    """What one process holds, the other knows: nicknames, rooms, identities and the queue."""
    from wazzap.core.identity import Identity

    one, two = processes("1"), processes("2")
    assert wait(one.presence.claim("1.1", "alice"))
    one.presence.describe("1.1", Identity("alice", "alice", True, "red", "192.0.2.1"))
    one.presence.enter("#maths", "1.1")
    assert wait(one.presence.claim("1.2", "bob"))
    one.presence.wait_for_approval("1.2", "192.0.2.2")
    spin(lambda: two.presence.waiting() == ["1.2"])
    assert two.presence.locate("ALICE") == "1.1"
    assert two.presence.members_of("#maths") == ["1.1"]
    alice = two.presence.remote("1.1")
    assert (alice.nickname, alice.account, alice.is_admin, alice.peer) == (
        "alice", "alice", True, "192.0.2.1"
    )
    assert [member.nickname for member in two.presence.remote_members()] == ["alice"]
    assert two.presence.remote("1.2").peer == "192.0.2.2"
    one.presence.release("1.1")
    spin(lambda: two.presence.locate("alice") is None)
    assert two.presence.members_of("#maths") == [] and two.presence.remote("1.1") is None
    assert wait(two.presence.claim("2.1", "alice"))


def test_a_process_that_starts_late_learns_everyone(processes):
    """A process that starts after others asks for their presence and gets all of it."""
    one = processes("1")
    assert wait(one.presence.claim("1.1", "alice"))
    one.presence.enter("#lobby", "1.1")
    two = processes("2")
    spin(lambda: two.presence.members_of("#lobby") == ["1.1"])
    assert two.presence.nickname_of("1.1") == "alice"


def test_a_line_reaches_the_room_on_every_process_once_and_in_order(processes):
    """Lines published on two processes reach every member of the room once, all in one order."""
    one, two = processes("1"), processes("2")
    alice, bob = one.member("alice", 1), two.member("bob", 1)
    for process, member in ((one, alice), (two, bob)):
        process.bus.join("#lobby", member)
        process.presence.enter("#lobby", member.session_key)
    spin(lambda: one.presence.count("#lobby") == two.presence.count("#lobby") == 2)
    for number in range(20):
        one.bus.publish("#lobby", events.Notice("one %d" % number))
        two.bus.publish("#lobby", events.Notice("two %d" % number))

    def all_heard():
        one.clock.advance(0)
        two.clock.advance(0)
        return len(alice.lines) == len(bob.lines) == 40

    spin(all_heard)
    assert alice.lines == bob.lines
    assert [line for line in alice.lines if "one" in line] == ["[Server] one %d" % n for n in range(20)]


def test_a_private_event_reaches_a_session_on_another_process(processes):
    """An event for one session goes to its process's channel and to it alone."""
    one, two = processes("1"), processes("2")
    bob, carol = two.member("bob", 1), two.member("carol", 2)
    for member in (bob, carol):
        two.bus.join("#lobby", member)
    one.bus.direct(bob.session_key, events.Notice("psst"))
    spin(lambda: two.clock.advance(0) or bob.lines)
    assert bob.lines == ["[Server] psst"] and carol.lines == []


def test_a_quit_heard_in_two_rooms_is_heard_once_elsewhere(processes):
    """heard_in holds across processes: someone in both rooms hears a quit once."""
    one, two = processes("1"), processes("2")
    bob, dan = two.member("bob", 1), two.member("dan", 2)
    two.bus.join("#a", bob)
    two.bus.join("#b", bob)
    two.bus.join("#b", dan)
    for room, key in (("#a", "2.1"), ("#b", "2.1"), ("#b", "2.2")):
        two.presence.enter(room, key)
    spin(lambda: one.presence.count("#a") == 1 and one.presence.count("#b") == 2)
    left = events.Left("alice", "bye", "")
    one.bus.publish("#a", left)
    one.bus.publish("#b", left, heard_in=("#a",))
    spin(lambda: two.clock.advance(0) or len(dan.lines) == 1)
    assert bob.lines == ["alice left (bye)"] or len(bob.lines) == 1
    assert len(dan.lines) == 1


def test_a_silent_process_is_taken_for_dead_and_its_nicknames_freed(processes):
    """A process that stops answering leaves everyone's presence, its rooms are told, its names free."""
    one, two = processes("1"), processes("2")
    gone = []

    one.presence.observe(Recording("remote_gone", gone))
    assert wait(two.presence.claim("2.1", "bob"))
    two.presence.enter("#lobby", "2.1")
    spin(lambda: one.presence.members_of("#lobby") == ["2.1"])
    # Killed: no goodbye, its link just stops.
    two.cluster.link.stopService()
    for _ in range(SILENT_SECONDS // 3 + 2):
        one.clock.advance(3)
    assert gone == [("bob", ["#lobby"])]
    assert one.presence.locate("bob") is None and one.presence.members_of("#lobby") == []
    assert wait(one.presence.claim("1.1", "bob"))


def test_a_lease_lapses_without_renewal_and_a_clash_closes_the_loser(processes, redis_server):
    """
    Cut off from Redis past its lease, a process's nickname may be taken;
    back, it finds it lost and closes its own session, not the winner's.
    """
    one, two = processes("1"), processes("2")
    lost = []

    one.presence.observe(Recording("nickname_lost", lost))
    assert wait(one.presence.claim("1.1", "alice"))
    spin(lambda: two.presence.locate("alice") == "1.1")
    # Process one is cut off, long enough for the others to give it up...
    one.cluster.link.stopService()
    for _ in range(SILENT_SECONDS // 3 + 2):
        two.clock.advance(3)
    assert two.presence.locate("alice") is None
    # ...and for its lease to lapse (30 s: made short here).
    redis_server.command("PEXPIRE", "test:nick:alice", "1")
    spin(lambda: redis_server.command("EXISTS", "test:nick:alice") == ":0")
    assert wait(two.presence.claim("2.1", "alice"))
    # Back, it finds alice another's, and closes its own.
    one.cluster.link.startService()
    spin(lambda: lost)
    assert lost == ["1.1"] and LEASE_SECONDS > SILENT_SECONDS
    assert two.presence.locate("alice") == "2.1"


def test_two_prefixes_on_one_redis_do_not_hear_each_other(processes):
    """Deployments with different prefixes share no nickname and no room."""
    one, other = processes("1"), processes("2", prefix="other:")
    assert wait(one.presence.claim("1.1", "alice"))
    assert wait(other.presence.claim("2.1", "alice"))
    one.presence.enter("#lobby", "1.1")
    spin(lambda: True)
    assert other.presence.members_of("#lobby") == []


def test_redis_going_away_is_told_and_lines_still_reach_this_process(processes, redis_server):
    """Redis stops: the chat is told, local lines still go; Redis back: resubscribed and told again."""
    one = processes("1")
    told = []

    one.presence.observe(Recording("reachable", told))
    alice = one.member("alice", 1)
    one.bus.join("#lobby", alice)
    one.presence.enter("#lobby", alice.session_key)
    one.presence.enter("#lobby", "2.5")  # someone elsewhere: lines go through Redis
    redis_server.stop()
    spin(lambda: told == [False])
    one.bus.publish("#lobby", events.Notice("still here"))
    one.clock.advance(0)
    assert alice.lines == ["[Server] still here"]
    redis_server.start()
    spin(lambda: told == [False, True], seconds=20)
    one.bus.publish("#lobby", events.Notice("through redis"))
    one.end_turn()
    assert alice.lines[-1] == "[Server] through redis"


class ChatProcess(Process):
    """
    A process with its L{Chat} on the Redis bus and presence.
    """

    def __init__(self, url, name, prefix="test:"):
        super().__init__(url, name, prefix)
        self.chat = Chat(
            self.clock,
            presence=self.presence,
            bus=lambda local, presence: self.bus,
            consent_by_default=True,
        )
        # The chat made its own outbox: the bus delivers through it.
        self.bus._local = LocalBus(self.chat.outbox)
        self.numbers = count(1)

    def joined(self, nickname):
        member = self.member(nickname, next(self.numbers))
        assert wait(self.chat.claim(member, nickname)) is None
        self.chat.join(member)
        return member

    def settle(self, *others):
        """
        Let what is on its way arrive, here and at C{others}.
        """
        for process in (self,) + others:
            spin(lambda: not process.bus.in_flight)
        reactor.iterate(0.05)
        for process in (self,) + others:
            process.clock.advance(0)


def test_two_chats_are_one_chat(redis_server):
    """Chats on two processes: each finds, lists and hears the other's members; consent holds across."""
    one, two = ChatProcess(redis_server.url, "1"), ChatProcess(redis_server.url, "2")
    try:
        alice = one.joined("alice")
        spin(lambda: two.chat.find("alice") is not None)
        bob = two.joined("bob")
        spin(lambda: sorted(m.nickname for m in one.chat.members()) == ["alice", "bob"])
        spin(lambda: one.chat.find_room("#lobby").nicknames() == ["alice", "bob"])
        one.chat.find_room("#lobby").say(alice, "hello bob")
        spin(lambda: (one.settle(two), "alice: hello bob" in bob.lines)[1])
        # Consent is on for everyone: a private message needs a private chat.
        remote_bob = one.chat.find("bob")
        assert "only in a private chat" in one.chat.send_private(alice, "bob", "psst")
        one.chat.private_chats.request(alice, remote_bob)
        remote_alice = two.chat.find("alice")
        spin(lambda: two.chat.private_chats.is_requested(remote_alice, bob))
        assert two.chat.private_chats.answer(bob, remote_alice, True)
        spin(lambda: one.chat.private_chats.is_open(alice, remote_bob))
        assert one.chat.send_private(alice, "bob", "psst") is None
        spin(lambda: (one.settle(two), "[PM from alice] psst" in bob.lines)[1])
        # A rename is heard across, and the new name found there.
        assert wait(two.chat.rename(bob, "robert")) is None
        spin(lambda: one.chat.find("robert") is not None and one.chat.find("bob") is None)
        spin(lambda: (one.settle(two), "bob is now known as robert" in " ".join(alice.lines))[1])
        two.chat.leave(bob, "bye")
        spin(lambda: one.chat.find("robert") is None)
        assert one.chat.private_chats.partners(alice) == []
    finally:
        one.stop()
        two.stop()


def test_a_history_line_said_elsewhere_is_heard_with_its_id(processes):
    """Another process's room line comes with the id its history gave it; this one's own does not."""
    one, two = processes("1"), processes("2")
    heard = []
    two.bus.hear(lambda *line: heard.append(line))
    alice, bob = one.member("alice", 1), two.member("bob", 1)
    for process, member in ((one, alice), (two, bob)):
        process.bus.join("#lobby", member)
        process.presence.enter("#lobby", member.session_key)
    spin(lambda: one.presence.count("#lobby") == two.presence.count("#lobby") == 2)
    said = events.Said("alice", "red", "kept", "")
    one.bus.publish("#lobby", said, alice.session_key, line=4242)
    two.bus.publish("#lobby", events.Said("bob", "blue", "mine", ""), bob.session_key, line=4243)
    spin(lambda: not one.bus.in_flight and not two.bus.in_flight)
    spin(lambda: heard)
    assert heard == [("#lobby", said, 4242)]


def test_a_command_after_a_subscription_finds_it_taken(processes):
    """What a process sends after subscribing reaches Redis once it hears that channel."""
    link = processes("1").cluster.link
    for number in range(20):
        channel = "test:room:#r%d" % (number,)
        link.subscribe(channel)
        answer = wait(link.execute("PUBSUB", "NUMSUB", channel))
        assert answer == [channel, 1], number


def test_what_follows_a_moderation_change_waits_for_it_to_take_effect(processes):
    """A line told after a mute reaches another process's members once that process has the mute."""
    from twisted.internet.defer import Deferred

    one, two = processes("1"), processes("2")
    reloaded = Deferred()

    class Observer:
        def __getattr__(self, name):
            return lambda *args: None

        def moderation_changed(self, what):
            return reloaded

    two.presence.observe(Observer())
    bob = two.member("bob", 1)
    two.bus.join("#lobby", bob)
    two.presence.enter("#lobby", bob.session_key)
    spin(lambda: one.presence.count("#lobby") == 1)
    one.presence.moderation_changed("mutes")
    one.bus.publish("#lobby", events.Notice("bob was muted"))
    spin(lambda: two.cluster._backlog)
    two.clock.advance(0)
    assert bob.lines == []
    reloaded.callback(None)
    two.clock.advance(0)
    assert bob.lines == ["[Server] bob was muted"]


def test_a_process_is_known_by_the_id_it_has_once_started(processes, redis_server):
    """twistd makes the services, then forks: the cluster asks for its id as it starts."""
    current = ["parent"]
    clock = Clock()
    address = parse_redis_url(redis_server.url)
    cluster = Cluster(
        lambda *callbacks: RedisLink(address, reactor, *callbacks), "test:", lambda: current[0], clock
    )
    presence = RedisPresence(cluster)
    bus = RedisBus(cluster, LocalBus(Outbox(TurnFlusher(clock))), presence)
    current[0] = "child"
    cluster.startService()
    try:
        spin(lambda: cluster.up)
        bob = RecordingMember("bob")
        bob.session_key = "child.1"
        bus.join("#lobby", bob)
        processes("2").bus.direct("child.1", events.Notice("found you"))
        spin(lambda: clock.advance(0) or bob.lines)
        assert bob.lines == ["[Server] found you"]
    finally:
        wait(cluster.stopService())


def test_rediss_speaks_tls_and_logs_in_with_the_password(tmp_path, monkeypatch):
    """A rediss:// URL verifies the server's certificate, and REDIS_PASSWORD logs in."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(REDIS_MISSING)
    files = make_certificates(tmp_path)
    server = RedisServer(binary, tmp_path, certificates=files, password="s3cret")
    try:
        # What a private CA's operator does: OpenSSL reads it as the trust store.
        monkeypatch.setenv("SSL_CERT_FILE", str(files.ca))
        monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
        one, two = Process(server.url, "1"), Process(server.url, "2")
        try:
            assert wait(one.presence.claim("1.1", "alice"))
            spin(lambda: two.presence.locate("alice") == "1.1")
            assert server.command("GET", "test:nick:alice") == "$3"
        finally:
            one.stop()
            two.stop()
    finally:
        server.stop()


def test_a_line_reaches_a_newcomer_elsewhere_before_this_process_knows_of_them(processes):
    """With another process about, a room's lines go through Redis even when all members seem here."""
    one, two = processes("1"), processes("2")
    spin(lambda: one.presence.others_alive())
    alice, bob = one.member("alice", 1), two.member("bob", 1)
    one.bus.join("#r", alice)
    one.presence.enter("#r", alice.session_key)
    # Bob's process has subscribed; process one has not heard he is there.
    two.bus.join("#r", bob)
    wait(two.cluster.link.execute("PING"))
    assert one.presence.members_of("#r") == [alice.session_key]
    one.bus.publish("#r", events.Notice("just now"))
    spin(lambda: not one.bus.in_flight)

    def heard():
        one.clock.advance(0)
        two.clock.advance(0)
        return bob.lines

    spin(heard)
    assert bob.lines == ["[Server] just now"] and alice.lines == ["[Server] just now"]


def test_a_message_that_is_not_wazzap_s_is_ignored_and_the_link_stays(processes, redis_server):
    """Malformed presence messages change nothing, and what follows them is still heard."""
    one, two = processes("1"), processes("2")
    for junk in ('["claim","9","9.1",5]', '["enter","9",5,"9.1"]', "not json", '{"a":1}', "[]"):
        redis_server.command("PUBLISH", "test:presence", junk)
    assert wait(two.presence.claim("2.1", "bob"))
    spin(lambda: one.presence.locate("bob") == "2.1")
    assert one.cluster.up and one.presence.locate("5") is None


def test_a_whole_state_takes_out_what_it_no_longer_holds(processes, redis_server):
    """A process's state, told again, takes its sessions out of rooms and the queue they left meanwhile."""
    one, two = processes("1"), processes("2")
    assert wait(two.presence.claim("2.1", "bob"))
    two.presence.enter("#a", "2.1")
    two.presence.wait_for_approval("2.1", "192.0.2.4")
    spin(lambda: one.presence.members_of("#a") == ["2.1"] and one.presence.waiting() == ["2.1"])
    # Its exit and unwait were lost (say, while the link was down): its state says so.
    redis_server.command(
        "PUBLISH", "test:presence", '["state","2",[["2.1","bob",null,["#b"],null,false]]]'
    )
    spin(lambda: one.presence.members_of("#b") == ["2.1"])
    assert one.presence.members_of("#a") == [] and one.presence.waiting() == []


def test_a_session_that_lost_its_nickname_leaves_its_rooms(redis_server):
    """The loser of a clash is closed, and leaving takes it out of its rooms here and everywhere."""
    one, two = ChatProcess(redis_server.url, "1"), Process(redis_server.url, "2")
    try:
        alice = one.joined("alice")
        spin(lambda: two.presence.members_of("#lobby") == [alice.session_key])
        one.cluster.link.stopService()
        for _ in range(SILENT_SECONDS // 3 + 2):
            two.clock.advance(3)
        redis_server.command("PEXPIRE", "test:nick:alice", "1")
        spin(lambda: redis_server.command("EXISTS", "test:nick:alice") == ":0")
        assert wait(two.presence.claim("2.1", "alice"))
        one.cluster.link.startService()
        spin(lambda: alice.closed)
        one.chat.leave(alice, alice.closed[0])
        assert not one.bus.local_members("#lobby")
        assert one.presence.members_of("#lobby") == []
        spin(lambda: one.presence.locate("alice") == "2.1")
    finally:
        one.stop()
        two.stop()


def test_an_admin_on_one_process_approves_a_newcomer_waiting_on_another(redis_server):
    """The queue is everyone's: an admin elsewhere is asked, lists the newcomer, and lets them in."""
    one, two = ChatProcess(redis_server.url, "1"), ChatProcess(redis_server.url, "2")
    try:
        root = one.member("root", 1)
        root.is_admin = True
        assert wait(one.chat.claim(root, "root")) is None
        one.chat.join(root)
        spin(lambda: [m.nickname for m in two.chat.admins()] == ["root"])
        newcomer = two.member("newbie", 1)
        newcomer.admit = lambda: two.chat.join(newcomer)
        assert wait(two.chat.claim(newcomer, "newbie")) is None
        assert two.chat.wait_for_approval(newcomer) == 1
        spin(lambda: [m.nickname for m in one.chat.waiting()] == ["newbie"])
        spin(lambda: (one.settle(two), any("newbie" in line for line in root.lines))[1])
        waiting = one.chat.stop_waiting("newbie")
        assert waiting.peer == newcomer.peer
        waiting.admit()
        spin(lambda: two.chat.session_of(newcomer) is not None)
        spin(lambda: one.chat.find("newbie") is not None and two.chat.waiting() == [])
    finally:
        one.stop()
        two.stop()
