"""
End-to-end: congestion is per room.  A reader that is slow, or has stopped
reading, in C{#a} holds back senders in C{#a} only: a sender in C{#b} reaches
its readers at full speed meanwhile, measured against the real C{twistd -n
wazzap} over loopback the way L{tests.test_e2e_fairness} measures fairness.

It needs rooms (C{/join}); against a server without them it is skipped.
"""

import re
import time

import pytest

from tests.support import TIMEOUT
from tests.test_e2e_fairness import MS, NS, Traffic, assert_fair, summarize

#: Options of the server: no flood control, and room enough in every queue
#: that nobody is dropped while the test measures.
OPTIONS = ("--flood-rate", "0", "--max-queued-output", str(8 * 1024 * 1024), "--slow-timeout", "60")

#: Lines a second from each sender, and bytes of padding in each: enough
#: that a reader which pauses fills the kernel's buffers within a second.
RATE = 100
PAYLOAD_BYTES = 2000

#: The slow reader's cycle: it stops reading for a while, then takes its
#: output a little at a time, catching up (and so congesting) slowly.
PAUSE_SECONDS = 1.0
CATCH_UP_SECONDS = 0.5
CATCH_UP_BYTES_PER_READ = 16 * 1024

#: A sender held by a reader catching up waits up to a tenth of a second
#: (wazzap.net.output.MAX_HOLD_BACK_SECONDS), or until the reader caught
#: up, which this one does in 15-45 ms: a line 5 ms late was held (an
#: unheld one takes well under a millisecond here), so the abuse in #a is
#: real while #b is measured.
HELD_NS = 5 * MS

_STAMP_SENDER = re.compile(rb"stamp (\d+) ")


def has_join(server, open_client):
    """
    Whether C{server} has the /join command.
    """
    answer = open_client(server, "probe").ask("/help join", "join")
    return "no such command" not in answer


class RoomTraffic(Traffic):
    """
    L{Traffic} in rooms (C{rooms}: member -> room name), which keeps each
    sender's latencies apart: a reader expects the lines of the senders in
    its own room only.
    """

    def __init__(self, members, senders, rate, payload_bytes, rooms):
        super().__init__(members, senders, rate, payload_bytes)
        self.rooms = rooms
        #: sender index -> (sent_ns, latency_ns) of its lines received.
        self.by_sender = {index: [] for index in range(len(self.senders))}

    def _complete(self):
        return all(
            self._expected.get((reader, sender), 0) >= self._sequence[sender]
            for reader in self.members
            for sender in self.senders
            if sender is not reader
            and sender in self.members
            and self.rooms[reader] == self.rooms[sender]
        )

    def _parse(self, reader, line, received):
        before = len(self.samples)
        super()._parse(reader, line, received)
        if len(self.samples) > before:
            index = int(_STAMP_SENDER.search(line).group(1))
            self.by_sender[index].append(self.samples[-1])

    def latencies_of(self, index, start_ns, end_ns):
        """
        The latencies of C{senders[index]}'s lines sent between C{start_ns} and C{end_ns}.
        """
        return [latency for sent, latency in self.by_sender[index] if start_ns <= sent < end_ns]


class SlowReader:
    """
    A reader that pauses, then catches up a little at a time, over and over.
    """

    def __init__(self, client):
        self.client = client
        client.sock.setblocking(False)
        self._cycle_start = None

    def start(self, now):
        """
        Begin the cycle of pauses at C{now}; until then it reads all it gets.
        """
        self._cycle_start = now

    def stop(self):
        """
        Read all it gets again.
        """
        self._cycle_start = None

    def tick(self, now):
        """
        Read a little, if this is the catching-up part of its cycle.
        """
        if self._cycle_start is None:
            self._read(1 << 20)
            return
        cycle_ns = int((PAUSE_SECONDS + CATCH_UP_SECONDS) * NS)
        if (now - self._cycle_start) % cycle_ns >= PAUSE_SECONDS * NS:
            self._read(CATCH_UP_BYTES_PER_READ)

    def _read(self, size):
        try:
            self.client.sock.recv(size)
        except BlockingIOError:
            pass


def enter(client, nickname, room):
    """
    Move C{client} (joined as C{nickname}) from the lobby into C{room} only.
    """
    client.nickname = nickname
    client.send("/join %s" % (room,))
    client.send("/part #lobby")
    return client


def test_a_slow_reader_in_one_room_holds_back_senders_there_only(start_server, open_client):
    """
    While a reader in #a keeps catching up slowly (and another has stopped reading), a sender in
    #a is held back, and a sender in #b reaches its reader in #b within 2x normal p99 latency.
    """
    server = start_server(*OPTIONS)
    if not has_join(server, open_client):
        pytest.skip("this server has no /join command: congestion per room needs rooms")
    nicknames = {"ann": "#a", "amy": "#a", "sloth": "#a", "stone": "#a", "bea": "#b", "bob": "#b"}
    clients = {}
    for nickname, room in nicknames.items():
        rcvbuf = 4096 if nickname in ("sloth", "stone") else None
        clients[nickname] = enter(
            open_client(server, nickname, rcvbuf=rcvbuf, nodelay=True), nickname, room
        )
    # Each room's reader sees every member's line from that room: all have moved.
    for nickname, room in nicknames.items():
        clients[nickname].send("here in %s" % (room,))
    for reader, room in (("amy", "#a"), ("bob", "#b")):
        for nickname in [name for name, its_room in nicknames.items() if its_room == room]:
            if nickname != reader:
                clients[reader].read_until("%s: here in %s" % (nickname, room))
    ann, amy, bea, bob = (clients[name] for name in ("ann", "amy", "bea", "bob"))
    rooms = {clients[nickname]: room for nickname, room in nicknames.items()}
    traffic = RoomTraffic([ann, amy, bea, bob], [ann, bea], RATE, PAYLOAD_BYTES, rooms)
    sloth = SlowReader(clients["sloth"])
    traffic.run(0.5, tick=sloth.tick)
    traffic.start_sending()
    quiet_start = time.monotonic_ns()
    traffic.run(3, tick=sloth.tick)
    abuse_start = time.monotonic_ns()
    sloth.start(abuse_start)
    traffic.run(3 * (PAUSE_SECONDS + CATCH_UP_SECONDS), tick=sloth.tick)
    abuse_end = time.monotonic_ns()
    sloth.stop()
    traffic.run(3, tick=sloth.tick)
    quiet_end = time.monotonic_ns()
    complete = traffic.drain(TIMEOUT)
    held = traffic.latencies_of(0, abuse_start, abuse_end)
    before = summarize("#b before", traffic.latencies_of(1, quiet_start, abuse_start))
    during = summarize("#b while #a congests", traffic.latencies_of(1, abuse_start, abuse_end))
    after = summarize("#b after", traffic.latencies_of(1, abuse_end, quiet_end))
    summarize("#a while it congests", held)
    assert complete, "some lines never reached some readers"
    assert traffic.disorder == [], traffic.disorder[:10]
    assert max(held) >= HELD_NS, "the slow reader never held back the sender in #a"
    assert_fair(before, during, after, "sender in #b while #a congests")
