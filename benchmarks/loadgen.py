"""
The load generator: many chat clients in one process, on raw non-blocking
sockets and one epoll loop (no Twisted), so that it costs far less per line
than the servers it measures.

Every client joins the way a person does: it sends a nickname line and waits
for C{Welcome, NICK!}.  A benchmark message is one line,
C{~M<perf_counter_ns at send> <filler text>}; a receiver counts the C{~M}
markers in each chunk of complete lines (one C-level C{bytes.count}); the
clients picked by C{latency_every} (every client, or one in N) also take the
latency of every marked line they receive (one regex C{findall} per chunk, one
clock reading per chunk).  Lines without a marker (join notices, prompts) are
counted as bytes only.

Every wait is bounded: each phase ends at its deadline or after a quiet spell,
and reports what it got.
"""

import re
import resource
import selectors
import socket
import time
from array import array

MARKER = b"~M"
FILLER = b" the quick brown fox jumps over the lazy dog"
TIMESTAMP = re.compile(rb"~M(\d+)")
READ_BYTES = 256 * 1024
#: Messages a flooding sender puts in one send() once its socket is writable.
SEND_BATCH = 16

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE


def raise_open_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Client:
    __slots__ = ("sock", "welcome", "joined", "tail", "out", "remaining", "closed", "timed")

    def __init__(self, sock, nickname, timed=True):
        self.sock = sock
        self.welcome = b"Welcome, " + nickname + b"!"
        self.joined = False
        self.tail = b""
        self.out = b""
        self.remaining = 0
        self.closed = False
        self.timed = timed


class LoadGenerator:
    """
    A crowd of clients of one server at C{host}:C{port}.
    """

    def __init__(self, host, port, rcvbuf=None, latency_every=1):
        self.latency_every = latency_every
        self.host = host
        self.port = port
        self.rcvbuf = rcvbuf
        self.selector = selectors.DefaultSelector()
        self.clients = []
        self.joined = 0
        self.disconnects = 0
        self.connect_errors = 0
        self.bytes_received = 0
        self.deliveries = 0
        self.latencies_ns = array("q")
        self.last_delivery_ns = 0

    # Event loop

    def pump(self, timeout):
        """
        Handle one round of ready sockets, waiting at most C{timeout} seconds.
        """
        for key, events in self.selector.select(timeout):
            client = key.data
            if events & EVENT_READ:
                self._read(client)
            if events & EVENT_WRITE and not client.closed:
                self._write(client)

    def _read(self, client):
        try:
            data = client.sock.recv(READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(client)
            self.disconnects += 1
            return
        self.bytes_received += len(data)
        if client.tail:
            data = client.tail + data
        if not client.joined:
            if client.welcome in data:
                client.joined = True
                self.joined += 1
                client.tail = b""
            else:
                client.tail = data[-len(client.welcome) :]
            return
        cut = data.rfind(b"\n") + 1
        if cut != len(data):
            client.tail = data[cut:]
            data = data[:cut]
        else:
            client.tail = b""
        count = data.count(MARKER)
        if count:
            now = time.perf_counter_ns()
            self.deliveries += count
            self.last_delivery_ns = now
            if client.timed:
                self.latencies_ns.extend([now - int(t) for t in TIMESTAMP.findall(data)])

    def _write(self, client):
        if not client.out:
            if client.remaining <= 0:
                self.selector.modify(client.sock, EVENT_READ, client)
                return
            count = min(client.remaining, SEND_BATCH)
            client.remaining -= count
            client.out = (b"~M%d" % time.perf_counter_ns() + FILLER + b"\n") * count
        try:
            sent = client.sock.send(client.out)
        except BlockingIOError:
            return
        except OSError:
            self._close(client)
            self.disconnects += 1
            return
        client.out = client.out[sent:]

    def _close(self, client):
        if client.closed:
            return
        client.closed = True
        if client.joined:
            self.joined -= 1
        try:
            self.selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()

    def close(self):
        for client in self.clients:
            self._close(client)
        self.selector.close()

    # Phases

    def connect(self, count, batch=250, timeout=60.0, nodelay=False):
        """
        Open C{count} connections, C{batch} at a time, each sending its
        nickname; wait (at most C{timeout} s in all) until each batch is
        welcomed.  Return the number joined.
        """
        deadline = time.monotonic() + timeout
        for start in range(0, count, batch):
            for i in range(start, min(start + batch, count)):
                sock = socket.socket()
                if self.rcvbuf:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                if nodelay:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(max(deadline - time.monotonic(), 0.1))
                try:
                    sock.connect((self.host, self.port))
                except OSError:
                    self.connect_errors += 1
                    sock.close()
                    continue
                sock.setblocking(False)
                nickname = b"b%d" % i
                client = Client(sock, nickname, i % self.latency_every == 0)
                self.clients.append(client)
                self.selector.register(sock, EVENT_READ, client)
                try:
                    sock.send(nickname + b"\n")
                except OSError:
                    self._close(client)
                    self.disconnects += 1
            while self.joined + self.disconnects < len(self.clients) and time.monotonic() < deadline:
                self.pump(0.05)
            if time.monotonic() >= deadline:
                break
        return self.joined

    def settle(self, quiet=0.5, timeout=30.0):
        """
        Read until nothing has arrived for C{quiet} s (join notices and the
        like), at most C{timeout} s.
        """
        deadline = time.monotonic() + timeout
        last_bytes, last_change = self.bytes_received, time.monotonic()
        while time.monotonic() < deadline:
            self.pump(0.05)
            if self.bytes_received != last_bytes:
                last_bytes, last_change = self.bytes_received, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                return True
        return False

    def live_clients(self):
        return [c for c in self.clients if c.joined and not c.closed]

    def flood(self, senders, messages, stall=5.0, timeout=120.0):
        """
        C{senders} clients each send C{messages} messages as fast as the server
        takes them; run until every delivery arrived, nothing arrived for
        C{stall} s, or C{timeout} s.  Return (expected deliveries, seconds).
        """
        live = self.live_clients()
        expected = min(senders, len(live)) * messages * (len(live) - 1)
        start_ns = time.perf_counter_ns()
        for client in live[:senders]:
            client.remaining = messages
            self.selector.modify(client.sock, EVENT_READ | EVENT_WRITE, client)
        self._run_until(expected, start_ns, stall, timeout)
        return expected, (self.last_delivery_ns - start_ns) / 1e9 if self.deliveries else 0.0

    def at_rate(self, rate, duration, stall=5.0, timeout=None):
        """
        Send C{rate} messages a second in total for C{duration} s, one at a
        time, from every client in turn; then wait for the deliveries as in
        L{flood}.  Return (expected deliveries, seconds, messages sent).
        """
        live = self.live_clients()
        total = int(rate * duration)
        expected = total * (len(live) - 1)
        interval_ns = int(1e9 / rate)
        start_ns = time.perf_counter_ns()
        sent = 0
        while sent < total and live:
            now = time.perf_counter_ns()
            due = start_ns + sent * interval_ns
            if now >= due:
                client = live[sent % len(live)]
                if not client.closed:
                    message = b"~M%d" % time.perf_counter_ns() + FILLER + b"\n"
                    try:
                        client.sock.send(message)
                    except OSError:
                        pass
                sent += 1
                continue
            self.pump(min((due - now) / 1e9, 0.05))
            if now - start_ns > (duration + 30) * 1e9:
                break
        expected = sent * (len(live) - 1)
        self._run_until(expected, time.perf_counter_ns(), stall, timeout or duration + 60)
        return expected, (time.perf_counter_ns() - start_ns) / 1e9, sent

    def _run_until(self, expected, start_ns, stall, timeout):
        deadline = time.monotonic() + timeout
        last_count, last_change = -1, time.monotonic()
        while self.deliveries < expected and time.monotonic() < deadline:
            self.pump(0.05)
            if self.deliveries != last_count:
                last_count, last_change = self.deliveries, time.monotonic()
            elif time.monotonic() - last_change >= stall:
                break

    def percentiles_ms(self, *fractions):
        """
        The latencies at C{fractions} (0.5 for the median), in ms.
        """
        if not self.latencies_ns:
            return [None] * len(fractions)
        ordered = sorted(self.latencies_ns)
        last = len(ordered) - 1
        return [round(ordered[min(int(len(ordered) * f), last)] / 1e6, 3) for f in fractions]
