"""
End-to-end: whether one abusive client costs everybody else anything, measured
against the real C{twistd -n wazzap} over loopback.

The latency tests keep a steady, stamped chat going between ordinary clients on
one non-blocking event loop (L{Traffic}), measure it while all is quiet, then
while a client misbehaves, then quiet again.  "Normal" is the worse p99 of the
two quiet windows, so load from other processes on a shared machine that spans
the run does not count against the server; under abuse p99 must stay within
max(2 x normal, normal + 20 ms).  Each test prints its figures (pytest -s).
"""

import gc
import os
import re
import selectors
import socket
import subprocess
import threading
import time

import pytest

from tests.support import (
    TIMEOUT,
    LineClient,
    open_fds,
    percentile,
    reset,
    strip_colors,
    thread_count,
    until,
)

NS = 1_000_000_000
MS = 1_000_000

#: Absolute slack on latency comparisons, for the noise of a shared machine.
LATENCY_SLACK_NS = 20 * MS

#: Churn lasts this many seconds (the issue asks for a minute; set it so).
CHURN_SECONDS = float(os.environ.get("WAZZAP_CHURN_SECONDS", "10"))

_STAMP = re.compile(rb"stamp (\d+) (\d+) (\d+) ")
_FLOOD_LINE = re.compile(r"^flooder: flood (\d+)$")


def plain(line):
    """
    A received line as text, without colours or line ending.
    """
    return strip_colors(line.rstrip(b"\r").decode("utf-8", "replace"))


def join_crowd(server, open_client, count, prefix="u"):
    """
    Join C{count} clients called C{prefix}0, C{prefix}1, ... one after another.
    """
    return [open_client(server, "%s%d" % (prefix, n)) for n in range(count)]


class Traffic:
    """
    Stamped public lines sent by C{senders} at C{rate} a second each and read
    by every member, all on one non-blocking event loop: the latency of each
    line each member receives (send to receive, one monotonic clock), and
    whether each member got every sender's lines complete and in order.
    """

    def __init__(self, members, senders, rate, payload_bytes):
        self.senders = list(senders)
        self.selector = selectors.DefaultSelector()
        self._buffers = {}
        self.members = []
        for member in members:
            self.add(member)
        self._interval_ns = NS // rate
        self._padding = b"x" * payload_bytes
        self._sequence = {sender: 0 for sender in self.senders}
        self._next_due = {}
        self._pending = {}
        self._expected = {}
        #: (sent_ns, latency_ns) of every stamped line received.
        self.samples = []
        #: (reader, sender, expected, got) for each line out of order or missing.
        self.disorder = []
        #: (received_ns, reader, line) of every line that carries no stamp.
        self.other_lines = []

    def add(self, member):
        """
        Read C{member} too, from what its blocking join left unparsed on.
        """
        member.sock.setblocking(False)
        self._buffers[member] = member._buffer
        self.selector.register(member.sock, selectors.EVENT_READ, member)
        self.members.append(member)

    def start_sending(self):
        now = time.monotonic_ns()
        for index, sender in enumerate(self.senders):
            # Staggered, so the senders' lines do not all land in one turn.
            self._next_due[sender] = now + index * self._interval_ns // len(self.senders)

    def stop_sending(self):
        self._next_due = {}

    def sent_count(self):
        return sum(self._sequence.values())

    def drop(self, member):
        """
        Stop reading C{member} (the server closed it, or the test did).
        """
        self.selector.unregister(member.sock)
        self.members.remove(member)
        self._next_due.pop(member, None)

    def run(self, seconds, tick=None, stop=None):
        """
        Send what is due and read what arrives for C{seconds}, calling
        C{tick(now_ns)} at least every 10 ms; return early once C{stop()} is true.
        """
        deadline = time.monotonic_ns() + int(seconds * NS)
        # A full collection of the samples would stall the loop and show as latency.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._run(deadline, tick, stop)
        finally:
            if collecting:
                gc.enable()

    def _run(self, deadline, tick, stop):
        while True:
            now = time.monotonic_ns()
            if now >= deadline or (stop is not None and stop()):
                return
            for sender, due in list(self._next_due.items()):
                if due <= now:
                    self._send_stamp(sender)
                    # Behind schedule (a stalled loop) skips, never bursts.
                    self._next_due[sender] = max(due + self._interval_ns, now)
            if tick is not None:
                tick(now)
            self._flush_pending()
            wait_ns = min([deadline, now + 10 * MS] + list(self._next_due.values())) - now
            for key, _ in self.selector.select(max(wait_ns, 0) / NS):
                self._read(key.data)

    def drain(self, timeout=TIMEOUT):
        """
        Read until every member has every line sent so far (or C{timeout}).
        """
        self.stop_sending()
        self.run(timeout, stop=self._complete)
        return self._complete()

    def _complete(self):
        return all(
            self._expected.get((reader, sender), 0) >= self._sequence[sender]
            for reader in self.members
            for sender in self.senders
            if sender is not reader and sender in self.members
        )

    def _send_stamp(self, sender):
        index = self.senders.index(sender)
        sequence = self._sequence[sender]
        self._sequence[sender] = sequence + 1
        line = b"stamp %d %d %d %s\n" % (index, sequence, time.monotonic_ns(), self._padding)
        self.send(sender, line)

    def send(self, member, data):
        """
        Queue C{data} for C{member}'s socket and write as much as it takes now.
        """
        self._pending.setdefault(member, bytearray()).extend(data)
        self._flush_pending()

    def pending_bytes(self, member):
        return len(self._pending.get(member, b""))

    def _flush_pending(self):
        for member, data in list(self._pending.items()):
            try:
                sent = member.sock.send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                del self._pending[member]
            elif sent:
                del data[:sent]

    def _read(self, member):
        for _ in range(16):
            try:
                data = member.sock.recv(262144)
            except BlockingIOError:
                return
            except ConnectionResetError:
                data = b""
            received = time.monotonic_ns()
            if not data:
                self.other_lines.append((received, member, None))
                self.drop(member)
                return
            *complete, self._buffers[member] = (self._buffers[member] + data).split(b"\n")
            for line in complete:
                self._parse(member, line, received)

    def _parse(self, reader, line, received):
        match = _STAMP.search(line)
        if match is None:
            self.other_lines.append((received, reader, plain(line)))
            return
        index, sequence, sent = (int(group) for group in match.groups())
        sender = self.senders[index]
        self.samples.append((sent, received - sent))
        expected = self._expected.get((reader, sender), 0)
        if sequence != expected:
            self.disorder.append((reader.nickname, sender.nickname, expected, sequence))
        self._expected[(reader, sender)] = sequence + 1

    def latencies(self, start_ns, end_ns):
        """
        The latencies of the lines sent between C{start_ns} and C{end_ns}.
        """
        return [latency for sent, latency in self.samples if start_ns <= sent < end_ns]

    def saw(self, needle):
        """
        When a member first received a line containing C{needle}, or None.
        """
        for received, _, line in self.other_lines:
            if line is not None and needle in line:
                return received
        return None


def _nickname(client, nickname):
    client.nickname = nickname
    return client


def summarize(name, latencies):
    """
    The p50 and p99 of C{latencies} in ms, printed under C{name}; return p99 in ns.
    """
    assert len(latencies) >= 200, "too few samples in %s: %d" % (name, len(latencies))
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(
        "%s: %d lines, p50 %.1f ms, p99 %.1f ms, max %.1f ms"
        % (name, len(latencies), p50 / MS, p99 / MS, max(latencies) / MS)
    )
    return p99


def assert_fair(before, during, after, label):
    """
    The p99 under abuse is within max(2 x normal, normal + slack) of the worse quiet window.
    """
    normal = max(before, after)
    allowed = max(2 * normal, normal + LATENCY_SLACK_NS)
    assert during <= allowed, (
        "%s: p99 %.1f ms under abuse, normal %.1f ms (before %.1f, after %.1f), allowed %.1f ms"
        % (label, during / MS, normal / MS, before / MS, after / MS, allowed / MS)
    )


def crowd_traffic(server, open_client, count, senders, rate, payload_bytes):
    clients = join_crowd(server, open_client, count)
    for n, client in enumerate(clients):
        _nickname(client, "u%d" % (n,))
    return Traffic(clients, clients[:senders], rate, payload_bytes)


# Slow consumers


def test_client_that_stops_reading_costs_the_other_hundred_nothing(start_server, open_client):
    """
    Among 100 chatting clients, one that stops reading is dropped as too slow before the
    server holds 1 MiB for it (--max-queued-output 64 KiB), while the others' p99 latency
    stays within 2x normal.
    """
    limit = 64 * 1024
    # What may be held for a client beyond the limit: the kernel's send
    # buffer and Twisted's 64 KiB, each a few hundred KiB at most.
    held_bound = 1024 * 1024
    server = start_server(
        "--max-queued-output", str(limit), "--slow-timeout", "2", "--max-per-address", "0"
    )
    # 5 senders x 4 lines/s stays inside the default flood allowance; lines
    # near the 4 KiB limit fill a stopped reader's buffers quickly.
    payload = 4000
    traffic = crowd_traffic(server, open_client, 100, senders=5, rate=4, payload_bytes=payload)
    traffic.run(0.5)
    traffic.start_sending()
    quiet_start = time.monotonic_ns()
    traffic.run(5)
    sloth_joined = time.monotonic_ns()
    sloth = open_client(server, "sloth", rcvbuf=4096)
    sent_before_sloth = traffic.sent_count()

    def owed_bytes():
        return (traffic.sent_count() - sent_before_sloth) * (payload + 40)

    traffic.run(
        30, stop=lambda: traffic.saw("sloth left the chat") or owed_bytes() > held_bound
    )
    dropped = traffic.saw("sloth left the chat")
    owed_at_drop = owed_bytes()
    abuse_end = (dropped or time.monotonic_ns()) + NS
    traffic.run((abuse_end - time.monotonic_ns()) / NS)
    if dropped is None:
        reset(sloth.sock)
    traffic.run(5)
    quiet_end = time.monotonic_ns()
    complete = traffic.drain()
    before = summarize("normal before", traffic.latencies(quiet_start, sloth_joined))
    during = summarize("slow consumer", traffic.latencies(sloth_joined, abuse_end))
    after = summarize("normal after", traffic.latencies(abuse_end, quiet_end))
    print(
        "sloth %s %.1f s after joining, owed about %d KiB"
        % (
            "dropped" if dropped else "still connected",
            ((dropped or abuse_end - NS) - sloth_joined) / NS,
            owed_at_drop // 1024,
        )
    )
    assert complete, "some lines never reached some readers"
    assert traffic.disorder == [], traffic.disorder[:10]
    assert dropped is not None, (
        "the reader that stopped was still connected with about %d KiB owed to it"
        % (owed_at_drop // 1024,)
    )
    # It is not dropped before its queue could have passed the limit.
    assert owed_at_drop > limit, owed_at_drop
    left = [line for _, _, line in traffic.other_lines if line and "sloth left" in line]
    assert left == ["[Server] sloth left the chat (too slow: stopped reading)"] * 100, (
        len(left),
        left[:3],
    )
    assert_fair(before, during, after, "slow consumer")
    sloth.sock.settimeout(TIMEOUT)
    with pytest.raises((ConnectionResetError, EOFError)):
        for _ in range(10000):
            if not sloth.sock.recv(65536):
                raise EOFError

# Floods


def test_flood_of_a_thousand_lines_a_second_costs_others_nothing(start_server, open_client):
    """
    With the default flood options (burst 20, 5 lines/s) one client sending 1,000 lines a
    second for 3 s is told it is slowed down, is relayed at about 5 lines/s, and leaves the
    others' p99 latency within 2x normal.
    """
    server = start_server()
    traffic = crowd_traffic(server, open_client, 40, senders=4, rate=4, payload_bytes=100)
    flooder = _nickname(open_client(server, "flooder"), "flooder")
    traffic.add(flooder)
    traffic.run(0.5)
    traffic.start_sending()
    quiet_start = time.monotonic_ns()
    traffic.run(5)
    flood_start = time.monotonic_ns()
    flood_seconds, flood_rate = 3, 1000
    queued = [0]

    def flood(now):
        due = min(flood_rate * flood_seconds, (now - flood_start) * flood_rate // NS)
        if due > queued[0] and traffic.pending_bytes(flooder) < 1024 * 1024:
            traffic.send(
                flooder, b"".join(b"flood %06d\n" % (n,) for n in range(queued[0], due))
            )
            queued[0] = due

    traffic.run(flood_seconds, tick=flood)
    flood_end = time.monotonic_ns()
    accepted = queued[0] - traffic.pending_bytes(flooder) // len(b"flood 000000\n")
    traffic._pending.pop(flooder, None)
    traffic.run(1)
    abuse_end = time.monotonic_ns()
    traffic.run(5)
    quiet_end = time.monotonic_ns()
    assert traffic.drain(), "some lines never reached some readers"
    assert traffic.disorder == [], traffic.disorder[:10]
    print(
        "flooder queued %d lines in %.1f s, the kernel took about %d"
        % (queued[0], (flood_end - flood_start) / NS, accepted)
    )
    told = [line for _, reader, line in traffic.other_lines if reader is flooder and line]
    assert any("you are sending too fast" in line for line in told), told[-5:]
    reader = traffic.senders[-1]
    relayed = [
        (received, int(match.group(1)))
        for received, who, line in traffic.other_lines
        if who is reader and line and (match := _FLOOD_LINE.search(line))
    ]
    numbers = [number for _, number in relayed]
    assert numbers == list(range(len(numbers))), numbers[:30]
    in_flood = sum(1 for received, _ in relayed if received < abuse_end)
    allowed = 20 + 5 * (abuse_end - flood_start) / NS + 3
    print(
        "relayed %d flood lines by the end of the flood window (at most %.0f)" % (in_flood, allowed)
    )
    assert 20 <= in_flood <= allowed, in_flood
    before = summarize("normal before", traffic.latencies(quiet_start, flood_start))
    during = summarize("flood", traffic.latencies(flood_start, abuse_end))
    after = summarize("normal after", traffic.latencies(abuse_end, quiet_end))
    assert_fair(before, during, after, "flood")


# Connections that never choose a nickname


def timed_join(server, nickname):
    """
    Connect, answer the prompt and wait for the welcome; return (client, seconds).
    """
    started = time.monotonic()
    client = LineClient(server.host, server.port)
    try:
        client.join(nickname)
    except BaseException:
        client.close()
        raise
    return client, time.monotonic() - started


def test_a_thousand_silent_connections_neither_keep_users_out_nor_stay(start_server, open_client):
    """
    1,000 connections that never choose a nickname (--max-per-address 0) leave a real
    user's join under 2 s while they are open and while they are closed together after
    --login-timeout 2, and the server's open fds fall back to where they were.
    """
    server = start_server("--login-timeout", "2", "--max-per-address", "0")
    pid = server.process.pid
    alice = open_client(server, "alice")
    fds_before = open_fds(pid)
    silent = []
    joins = []
    try:
        opened_at = time.monotonic()
        for _ in range(1000):
            silent.append(socket.create_connection((server.host, server.port), timeout=TIMEOUT))
        opened_in = time.monotonic() - opened_at
        assert until(lambda: open_fds(pid) >= fds_before + 1000, timeout=5), (
            open_fds(pid),
            fds_before,
        )
        peak = open_fds(pid)
        # Join again and again, through the moment they all time out together.
        deadline = opened_at + 2 + 5
        n = 0
        while time.monotonic() < deadline and n < 100:
            client, took = timed_join(server, "probe%d" % (n,))
            joins.append(took)
            client.close()
            n += 1
            if open_fds(pid) <= fds_before + 1 and time.monotonic() > opened_at + 2.5:
                break
            time.sleep(0.05)
        until(lambda: open_fds(pid) <= fds_before, timeout=5)
        fds_after = open_fds(pid)
    finally:
        for sock in silent:
            sock.close()
    print(
        "opened 1000 in %.2f s; server fds %d -> %d -> %d; %d joins, median %.1f ms, max %.1f ms"
        % (
            opened_in,
            fds_before,
            peak,
            fds_after,
            len(joins),
            percentile(joins, 0.5) * 1000,
            max(joins) * 1000,
        )
    )
    assert max(joins) < 2, joins
    assert fds_after == fds_before, (fds_before, peak, fds_after)
    alice.send("/who")
    assert alice.read_until("online") == "[Server] 1 online: alice"


# The per-address limit


def test_default_per_address_limit_turns_the_51st_away(start_server, open_client):
    """
    With the default --max-per-address (50) the 51st connection from one address is told
    why and closed, refusals take no slot, and a freed slot admits the next one.
    """
    server = start_server()
    first_fifty = [open_client(server) for _ in range(50)]
    for client in first_fifty:
        client.read_until("Choose a nickname")
    for _ in range(5):
        extra = open_client(server)
        lines = extra.wait_closed(TIMEOUT)
        assert lines == ["[Server] Too many connections from your address (limit 50)."], lines
    first_fifty[0].close()
    again = until(lambda: _prompted(server), timeout=3)
    assert again, "no connection accepted after one of the fifty closed"
    try:
        refused = open_client(server)
        assert refused.wait_closed(TIMEOUT) == [
            "[Server] Too many connections from your address (limit 50)."
        ]
    finally:
        again.close()


def _prompted(server):
    """
    A new connection that got the nickname prompt, or None if it was refused.
    """
    client = LineClient(server.host, server.port)
    try:
        client.read_until("Choose a nickname", timeout=2)
        return client
    except (AssertionError, OSError, EOFError):
        client.close()
        return None


# Churn


def _churn(server, count, per_second, silent, errors, done):
    """
    Open and end C{count} connections, C{per_second} of them a second, in six
    ways; keep the silent ones in C{silent} and any failure in C{errors}.
    """
    started = time.monotonic()
    for n in range(count):
        delay = started + n / per_second - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        kind = n % 6
        try:
            if kind == 5:
                sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
                sock.close()  # EOF before even the prompt
                continue
            client = LineClient(server.host, server.port)
            if kind == 4:
                client.read_until("Choose a nickname")
                silent.append(client)  # never answers: --login-timeout ends it
                continue
            if kind == 3:
                client.read_until("Choose a nickname")
                reset(client.sock)
                continue
            client.join("churn%d" % (n,))
            if kind == 0:
                client.send("/quit")
                client.wait_closed(TIMEOUT)
                client.close()
            elif kind == 1:
                client.close()
            else:
                reset(client.sock)
        except Exception as e:
            errors.append((n, kind, repr(e)))
        done[0] = n + 1


def test_churn_leaves_the_chat_and_the_server_as_they_were(start_server, open_client):
    """
    Connections opened and ended at 50 a second for WAZZAP_CHURN_SECONDS (default 10) s
    (/quit, EOF, reset, reset or EOF before a nickname, silent) while two users chat leave
    /who, every chat line, the fd count and the thread count as they were.
    """
    # Flood control off: a reconnect no longer brings a fresh burst of lines,
    # and this test is about what churn leaves behind, not about its pace.
    server = start_server("--login-timeout", "1", "--flood-rate", "0")
    pid = server.process.pid
    alice = _nickname(open_client(server, "alice"), "alice")
    bob = _nickname(open_client(server, "bob"), "bob")
    alice.read_until("bob joined")
    time.sleep(0.2)
    fds_before, threads_before = open_fds(pid), thread_count(pid)
    traffic = Traffic([alice, bob], [alice, bob], rate=4, payload_bytes=20)
    count = int(CHURN_SECONDS * 50)
    silent, errors, done = [], [], [0]
    churner = threading.Thread(
        target=_churn, args=(server, count, 50, silent, errors, done), daemon=True
    )
    churn_started = time.monotonic()
    traffic.start_sending()
    churner.start()
    try:
        traffic.run(CHURN_SECONDS * 3 + 10, stop=lambda: not churner.is_alive())
        churn_took = time.monotonic() - churn_started
        assert traffic.drain(), "some chat lines never arrived"
        assert not churner.is_alive(), "churn did not finish in time"
        assert errors == [], errors[:10]
        assert done[0] == count
        for client in silent:
            closing = client.wait_closed(TIMEOUT)
            assert any("no nickname chosen in time" in line for line in closing), closing
    finally:
        for client in silent:
            client.close()
    assert traffic.disorder == [], traffic.disorder[:10]
    assert traffic.sent_count() >= 2 * 4 * CHURN_SECONDS * 0.9, traffic.sent_count()
    latencies = traffic.latencies(0, time.monotonic_ns())
    print(
        "%d connections in %.1f s (%.0f/s); chat p50 %.1f ms p99 %.1f ms over %d lines"
        % (
            count,
            churn_took,
            count / churn_took,
            percentile(latencies, 0.5) / MS,
            percentile(latencies, 0.99) / MS,
            len(latencies),
        )
    )
    for client in (alice, bob):
        client.sock.setblocking(True)
        client.sock.settimeout(TIMEOUT)
        client._buffer = traffic._buffers[client]

    def who():
        alice.send("/who")
        return alice.read_until("online:")

    assert until(lambda: who() == "[Server] 2 online: alice, bob", timeout=3), who()
    assert until(lambda: open_fds(pid) == fds_before, timeout=5), (open_fds(pid), fds_before)
    assert until(lambda: thread_count(pid) == threads_before, timeout=5), (
        thread_count(pid),
        threads_before,
    )


# Dead peers


def test_accepted_connections_have_tcp_keepalive_on(start_server, open_client):
    """
    The server's end of an accepted connection runs a keepalive timer (seen with ss -to),
    and the test client's own end, without SO_KEEPALIVE, does not.
    """
    server = start_server()
    open_client(server, "alice")
    port = "127.0.0.1:%d" % (server.port,)
    sides = {}

    def sockets():
        try:
            output = subprocess.run(
                ["ss", "-tnoH", "state", "established"],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            ).stdout
        except (OSError, subprocess.SubprocessError) as e:
            pytest.skip("ss is not available: %s" % (e,))
        rows = [line.split() for line in output.splitlines()]
        sides["server"] = [" ".join(row) for row in rows if row[2:3] == [port]]
        sides["client"] = [" ".join(row) for row in rows if row[3:4] == [port]]
        # Another timer (retransmit, delayed ACK) hides keepalive's until idle.
        return sides["server"] and all("timer:(keepalive" in line for line in sides["server"])

    until(sockets, timeout=3, interval=0.1)
    server_side, client_side = sides["server"], sides["client"]
    if not server_side or not client_side:
        pytest.skip("ss does not show the loopback connection here: %r" % (sides,))
    assert all("timer:(keepalive" in line for line in server_side), server_side
    assert not any("keepalive" in line for line in client_side), client_side
