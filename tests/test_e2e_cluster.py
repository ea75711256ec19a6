"""
End-to-end: several real C{twistd -n wazzap} processes on one real
C{redis-server} and one database, acting as one server to nc-like users on
loopback: chat, nicknames, moderation, a killed process and Redis stopped
during chat.  Each test reuses its processes across its steps, since
starting one costs a second or more.
"""

import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import (
    TIMEOUT,
    LineClient,
    LoginClient,
    ServerProcess,
    free_port,
    seed_accounts,
    until,
)
from wazzap.bus.redis import HEARTBEAT_SECONDS, SILENT_SECONDS
from wazzap.bus.redis_link import MAX_RETRY_SECONDS

#: A killed process is taken for dead after SILENT_SECONDS, noticed at the
#: next heartbeat: its users are gone from the others well within this.
DEAD_WITHIN_SECONDS = SILENT_SECONDS + 2 * HEARTBEAT_SECONDS + TIMEOUT

UNREACHABLE = "The other servers cannot be reached just now"
REACHABLE = "This server reaches the others again"


@pytest.fixture(params=["postgresql"])
def cluster_db(request, tmp_path):
    """
    C{cluster_db(admins=())}: the C{--db} option every process of a test
    shares, with the accounts C{admins} registered (see L{seed_accounts})
    and flagged as admins.  A PostgreSQL database of the tests' own, as
    processes on several machines share; a test may ask for a SQLite file
    too (C{@pytest.mark.parametrize("cluster_db", ["sqlite"], indirect=True)}),
    which processes on one machine may share.  The one place that picks
    the database of these tests.
    """
    if request.param == "postgresql":
        target = request.getfixturevalue("postgres_url")
    else:
        target = tmp_path / "cluster.sqlite3"
    return lambda admins=(): seed_accounts(target, admins, admins=admins)


@pytest.fixture
def cluster(tmp_path, redis_server, cluster_db):
    """
    Start C{count} processes on the test's Redis and database
    (C{cluster(count, admins=())}), each connected to Redis, and
    C{cluster.restart(process)} one on its own port; every process and
    client is stopped or closed when the test ends.
    """
    processes, clients = [], []
    options = []

    def start_one(port=None):
        port = port or free_port()
        server = ServerProcess(
            tmp_path,
            *options,
            "--redis=" + redis_server.url,
            # Processes sharing a database each need their own.
            "--control-socket=%s" % (tmp_path / ("control-%d" % (port,)),),
            port=port,
        )
        processes.append(server)
        server.wait_for_log("connected to Redis")
        return server

    def start(count, admins=(), more=()):
        options.append(cluster_db(admins))
        options.extend(more)
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda _: start_one(), range(count)))

    def connect(server, nickname=None, client_class=LineClient):
        client = client_class(server.host, server.port)
        clients.append(client)
        if nickname is not None:
            client.join(nickname)
        return client

    start.connect = connect
    start.restart = lambda server: start_one(server.port)
    start.redis = redis_server
    yield start
    for client in clients:
        client.close()
    for server in processes:
        server.stop()


def said(sender, line, *readers):
    """
    Have C{sender} say C{line}; return what each of C{readers} read up to
    and including it.
    """
    sender.send(line)
    return [reader.read_through(line) for reader in readers]


def read_all(reader, needles):
    """
    What C{reader} reads until it has read a line containing each of
    C{needles}, in any order.
    """
    seen = []
    for needle in needles:
        if not any(needle in line for line in seen):
            seen += reader.read_through(needle)
    return seen


def until_answered(clients, command, needle, expected):
    """
    Ask C{command} of each of C{clients} until it answers C{expected}:
    what one process tells the others takes a moment to reach them.
    """
    for client in clients:
        answered = until(lambda: client.ask(command, needle) == expected, TIMEOUT, 0.02)
        assert answered, "%s never answered %r" % (command, expected)


@pytest.mark.parametrize("cluster_db", ["postgresql", "sqlite"], indirect=True)
def test_three_processes_are_one_server(cluster):
    """Users on three processes chat in rooms, list each other, rename and talk privately."""
    one, two, three = cluster(3)
    alice = cluster.connect(one, "alice")
    bob = cluster.connect(two, "bob")
    carol = cluster.connect(three, "carol")
    everyone = (alice, bob, carol)
    until_answered(everyone, "/who", "online:", "[Server] 3 online: alice, bob, carol")
    # Lines of each sender reach the others once each, in order.
    users = {"alice": alice, "bob": bob, "carol": carol}
    for number in range(5):
        for name, sender in users.items():
            sender.send("%s line %d" % (name, number))
    for name, reader in users.items():
        others = [other for other in users if other != name]
        seen = read_all(reader, ["%s line 4" % (other,) for other in others])
        for other in others:
            assert [line for line in seen if line.startswith(other + ":")] == [
                "%s: %s line %d" % (other, other, number) for number in range(5)
            ], seen
    # A room created on one process and joined from the others.
    alice.send("/join #maths")
    assert alice.read_until("you joined") == "[Server] you joined #maths. You are the first one here."
    alice.send("/topic sums and more")
    alice.read_until("topic")
    until_answered(
        (bob, carol),
        "/topic #maths",
        re.compile("topic of|no room"),
        "[Server] topic of #maths: sums and more",
    )
    bob.send("/join #maths")
    assert bob.read_until("you joined") == "[Server] you joined #maths. Also here: alice."
    until_answered((carol,), "/names #maths", "#maths,", "[Server] #maths, 2: alice, bob")
    carol.send("/join #maths")
    carol.read_until("you joined")
    alice.read_until("carol joined #maths")
    bob.read_until("carol joined #maths")
    (seen_by_bob, seen_by_carol) = said(alice, "two plus two", bob, carol)
    assert seen_by_bob[-1] == seen_by_carol[-1] == "alice: two plus two"
    for client in (alice, bob, carol):
        client.send("/who")
        assert client.read_through("online:") == [
            "[Server] 3 online: alice (#lobby, #maths), bob (#lobby, #maths), "
            "carol (#lobby, #maths)"
        ]
        client.send("/names")
        assert client.read_until("#maths,") == "[Server] #maths, 3: alice, bob, carol"
        client.send("/rooms")
        assert client.read_through("#maths (3)")[-3:] == [
            "[Server] 2 rooms:",
            "[Server]   #lobby (3)",
            "[Server]   #maths (3): sums and more",
        ]
    # A new nickname is heard once by someone sharing two rooms with it.
    bob.send("/nick robert")
    assert bob.read_until("robert") == "[Server] bob is now known as robert"
    (seen_by_alice,) = said(carol, "after the rename", alice)
    assert seen_by_alice.count("[Server] bob is now known as robert") == 1
    # Private messages across processes, both ways.
    alice.send("/msg carol psst")
    assert carol.read_until("psst") == "[PM from alice] psst"
    carol.send("/msg alice hush")
    assert alice.read_until("hush") == "[PM from carol] hush"
    bob.send("/msg alice from two")
    assert alice.read_until("from two") == "[PM from robert] from two"


def test_two_processes_race_for_a_nickname(cluster):
    """Two users on two processes choosing one nickname at the same moment: exactly one gets it."""
    processes = cluster(2)
    for attempt in range(5):
        nickname = "racer%d" % (attempt,)
        clients = [cluster.connect(server) for server in processes]
        for client in clients:
            client.read_until("Choose a nickname")
        start = threading.Barrier(len(clients))

        def choose(client):
            start.wait(TIMEOUT)
            client.send(nickname)
            return client.read_until(re.compile("Welcome|already online"))

        with ThreadPoolExecutor(len(clients)) as pool:
            answers = list(pool.map(choose, clients))
        winners = [answer.startswith("[Server] Welcome, %s!" % (nickname,)) for answer in answers]
        assert sorted(winners) == [False, True], answers
        assert answers[winners.index(False)] == "[Server] Sorry, %s is already online." % (nickname,)
        # The one refused is asked again, and gets in under another.
        loser = clients[winners.index(False)]
        loser.send("other%d" % (attempt,))
        loser.read_until("Welcome, other%d!" % (attempt,))


def test_moderation_reaches_every_process(cluster):
    """An admin on one process kicks, bans and mutes users on another, at once."""
    one, two, three = cluster(3, admins=("boss",))
    boss = cluster.connect(one, client_class=LoginClient)
    boss.log_in("boss")
    bob = cluster.connect(two, "bob")
    carol = cluster.connect(two, "carol")
    dave = cluster.connect(two, "dave")
    until_answered((boss,), "/who", "online:", "[Server] 4 online: bob, boss, carol, dave")
    boss.send("/kick bob too loud")
    assert bob.wait_closed(TIMEOUT)[-1] == "[Server] disconnected: kicked by boss: too loud"
    banned = time.monotonic()
    boss.send("/ban carol 1h spam")
    assert carol.wait_closed(TIMEOUT)[-1] == "[Server] disconnected: banned by boss: spam"
    assert time.monotonic() - banned < 1

    def refused_on_three():
        again = cluster.connect(three)
        again.read_until("Choose a nickname")
        again.send("carol")
        answer = again.read_until(re.compile("is banned|Welcome|already online"))
        again.close()
        return answer.startswith("[Server] carol is banned")

    # In force everywhere within a second (processes reread the bans).
    assert until(refused_on_three, banned + 1 - time.monotonic(), 0.05)
    muted = time.monotonic()
    boss.send("/mute dave 10m")
    assert dave.read_until("muted by") == "[Server] dave was muted by boss for 10m"
    dave.send("can I still talk")
    assert dave.read_until("muted").startswith("[Server] you are muted for another ")
    assert time.monotonic() - muted < 1


def test_a_killed_process_leaves_and_its_restart_rejoins(cluster):
    """A SIGKILLed process's users leave the others' rooms and free their nicknames; restarted, it rejoins."""
    one, two, three = cluster(3)
    alice = cluster.connect(one, "alice")
    bob = cluster.connect(two, "bob")
    carol = cluster.connect(three, "carol")
    until_answered((alice, carol), "/who", "online:", "[Server] 3 online: alice, bob, carol")
    killed = time.monotonic()
    two.signal(signal.SIGKILL)
    bob.close()
    gone = "[Server] bob left the chat (their server stopped answering)"
    for client in (alice, carol):
        assert client.read_until("bob left", timeout=DEAD_WITHIN_SECONDS) == gone
    assert time.monotonic() - killed < DEAD_WITHIN_SECONDS
    assert alice.ask("/who", "online:") == "[Server] 2 online: alice, carol"
    cluster.connect(three, "bob")
    alice.read_until("bob joined the chat")
    restarted = cluster.restart(two)
    dan = cluster.connect(restarted, "dan")
    until_answered((dan,), "/who", "online:", "[Server] 4 online: alice, bob, carol, dan")
    (seen_by_alice, seen_by_carol) = said(dan, "back from the dead", alice, carol)
    assert seen_by_alice[-1] == seen_by_carol[-1] == "dan: back from the dead"
    (seen_by_dan,) = said(alice, "welcome back", dan)
    assert seen_by_dan[-1] == "alice: welcome back"


def test_redis_stopped_during_chat(cluster):
    """Redis stopped: everyone is told and each process carries its own lines; back, lines cross again."""
    one, two = cluster(2)
    alice = cluster.connect(one, "alice")
    bob = cluster.connect(one, "bob")
    carol = cluster.connect(two, "carol")
    everyone = (alice, bob, carol)
    until_answered(everyone, "/who", "online:", "[Server] 3 online: alice, bob, carol")
    cluster.redis.stop()
    for client in everyone:
        assert client.read_until(UNREACHABLE).startswith("[Server] " + UNREACHABLE)
    (seen_by_bob,) = said(alice, "just us two", bob)
    assert seen_by_bob[-1] == "alice: just us two"
    cluster.redis.start()
    for client in everyone:
        client.read_until(REACHABLE, timeout=MAX_RETRY_SECONDS + TIMEOUT)
    (seen_by_bob, seen_by_carol) = said(alice, "all together again", bob, carol)
    assert seen_by_bob[-1] == seen_by_carol[-1] == "alice: all together again"
    assert "just us two" not in " ".join(seen_by_carol)
    (seen_by_alice,) = said(carol, "hello from two", alice)
    assert seen_by_alice[-1] == "carol: hello from two"


def test_a_room_whose_people_are_elsewhere_is_replayed_to_who_joins_it_here(cluster):
    """What was said in a room on one process is replayed to the first who joins it on another."""
    one, two = cluster(2, more=("--replay=5",))
    alice = cluster.connect(one, "alice")
    bob = cluster.connect(two, "bob")
    alice.send("/join #talk")
    alice.read_through("you joined #talk")
    alice.send("said before bob came")
    # Written to the database in batches of a tenth of a second.
    time.sleep(0.5)
    bob.send("/join #talk")
    lines = bob.read_through("--- now ---")
    assert [line for line in lines if "[history #talk" in line and "said before bob came" in line]
    # Said at once: it reaches bob's process whether or not alice's knows yet that he is there.
    alice.send("said after")
    bob.read_through("said after")
