"""
The load generator: many chat clients in one process, on raw non-blocking
sockets and one epoll loop (no Twisted), so that it costs far less per line
than the servers it measures.

Every client joins the way a person does: it sends a nickname line and waits
for C{Welcome, NICK!}.  A benchmark message is one line,
C{~M<perf_counter_ns at send> <filler text>}.  The loop is one C{select.epoll}
with a dict from file descriptor to client (no C{selectors} keys), and every
C{recv_into} goes to one preallocated buffer.  An untimed receiver only
counts the C{~M} markers in that buffer (one C-level C{bytearray.count}, no
copy, plus a one-byte check for a marker split between two chunks); it never
cuts lines.  The clients picked by C{latency_every} (every
client, or one in N) keep the incomplete last line and take the latency of
every marked line they receive (one regex C{findall} per chunk, one clock
reading per chunk).  Lines without a marker (join notices, prompts) are
counted as bytes only.

With C{irc_port} and C{irc_every}, one client in C{irc_every} is an IRC
client instead: it registers with NICK and USER, waits for C{001}, and sends
its messages as C{PRIVMSG #lobby :~M...}; every client counts the same
markers, whichever listener's lines carry them.

Every wait is bounded: each phase ends at its deadline or after a quiet spell,
and reports what it got.
"""

import re
import resource
import select
import socket
import ssl
import time
from array import array

MARKER = b"~M"
FILLER = b" the quick brown fox jumps over the lazy dog"
TIMESTAMP = re.compile(rb"~M(\d+)")
READ_BYTES = 256 * 1024
#: The name of the room of a client in rooms (L{LoadGenerator.enter_rooms}).
ROOM = b"#r%02d"
#: What an IRC client's message line starts with.
IRC_MESSAGE = b"PRIVMSG #lobby :"
#: Messages a flooding sender puts in one send() once its socket is writable.
SEND_BATCH = 16

EVENT_READ = select.EPOLLIN
EVENT_WRITE = select.EPOLLOUT
#: Readiness that means "read now": data, or the peer or socket going away.
READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR


def raise_open_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def has_command(host, port, name, timeout=10.0, quiet=0.5):
    """
    Whether the server at C{host}:C{port} has the command C{/name} (bytes):
    one client joins, asks C{/help name}, reads the answer until C{quiet}
    s of silence, and leaves.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"probe\n")
        received = b""
        while b"Welcome, probe!" not in received:
            received += _receive(sock, deadline)
        sock.sendall(b"/help " + name + b"\n")
        answer = b""
        while time.monotonic() < deadline:
            sock.settimeout(quiet)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                if answer:
                    break
                continue
            if not chunk:
                break
            answer += chunk
        if not answer:
            raise RuntimeError("no answer to /help %s" % (name.decode(),))
        return b"no such command /" + name not in answer


def _receive(sock, deadline):
    """
    The next bytes from the blocking C{sock}, waiting until C{deadline}.
    """
    sock.settimeout(max(deadline - time.monotonic(), 0.01))
    chunk = sock.recv(65536)
    if not chunk:
        raise RuntimeError("the server closed the connection")
    return chunk


def cpu_seconds():
    """
    CPU seconds of this process (nanosecond clock, not the 10 ms ticks of
    getrusage on some kernels: flood rounds last well under a second).
    """
    return time.process_time()


class Client:
    __slots__ = ("sock", "fd", "welcome", "joined", "tail", "out", "remaining", "closed", "timed",
                 "tilde", "line_start", "group")

    def __init__(self, sock, nickname, timed=True, irc=False, group=0):
        """
        @param group: the index of the port (of L{LoadGenerator}'s C{ports})
            it connected to.
        """
        self.group = group
        self.sock = sock
        self.fd = sock.fileno()
        self.tilde = False
        self.welcome = (b" 001 %s " % (nickname,)) if irc else b"Welcome, " + nickname + b"!"
        #: What each message line starts with: IRC's command, or nothing.
        self.line_start = IRC_MESSAGE if irc else b""
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

    def __init__(self, host, port, rcvbuf=None, latency_every=1, per_message=False, tls=None,
                 irc_port=None, irc_every=0, ports=None):
        """
        @param tls: an C{ssl.SSLContext} to speak TLS with, or L{None} for plain text.
        @param irc_port: the server's IRC port, where one client in
            C{irc_every} connects (the second, then every C{irc_every}-th).
        @param ports: several ports (of several server processes) instead of
            C{port}: client C{i} connects to C{ports[i % len(ports)]}, is in
            group C{i % len(ports)}, and is timed if C{i // len(ports)} is a
            multiple of C{latency_every}, so that every group has timed
            clients; L{group_latencies_ns} has the latencies of each group.
        """
        self.ports = list(ports or [port])
        #: Per group (port), the latencies its timed clients took.
        self.group_latencies_ns = [array("q") for _ in self.ports]
        self.irc_port = irc_port
        self.irc_every = irc_every if irc_port else 0
        self.latency_every = latency_every
        self.tls = tls
        if tls is not None:
            self._read = self._read_tls
        #: With C{per_message}, send timestamp -> latency of the first and of
        #: the last timed client that received that message.
        self.first_ns = {} if per_message else None
        self.last_ns = {}
        #: With C{per_message}, latencies taken at the moment epoll returned
        #: instead of after this process's reads of the sockets before.
        self.poll_latencies_ns = array("q")
        self.poll_ns = 0
        self.host = host
        self.port = port
        self.rcvbuf = rcvbuf
        self.epoll = select.epoll()
        # One receive buffer for every recv_into(): recv(256 KiB) would
        # malloc 256 KiB per call, above glibc's mmap threshold, i.e. an
        # mmap, mremap and munmap per recv until something else happens to
        # raise the threshold (measured: 2.5x the generator's CPU in C).
        self.buffer = bytearray(READ_BYTES)
        self.view = memoryview(self.buffer)
        self.by_fd = {}
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
        by_fd = self.by_fd
        ready = self.epoll.poll(timeout)
        self.poll_ns = time.perf_counter_ns()
        for fd, events in ready:
            client = by_fd.get(fd)
            if client is None:
                continue
            if events & READABLE:
                self._read(client)
            if events & EVENT_WRITE and not client.closed:
                self._write(client)

    def _watch(self, client, events):
        self.epoll.modify(client.fd, events)

    def _read(self, client):
        try:
            size = client.sock.recv_into(self.view)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            size = 0
        if not size:
            self._close(client)
            self.disconnects += 1
            return
        self.bytes_received += size
        if client.joined and not client.timed:
            # The cheap path, taken by most receivers: count markers in the
            # buffer (no copy), and one split between the previous chunk and
            # this one.
            buffer = self.buffer
            count = buffer.count(MARKER, 0, size)
            if client.tilde and buffer[0] == 0x4D:  # "M"
                count += 1
            client.tilde = buffer[size - 1] == 0x7E  # "~"
            if count:
                self.deliveries += count
                self.last_delivery_ns = time.perf_counter_ns()
            return
        data = self.view[:size].tobytes()
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
                stamps = [int(t) for t in TIMESTAMP.findall(data)]
                latencies = [now - t for t in stamps]
                self.latencies_ns.extend(latencies)
                if len(self.ports) > 1:
                    self.group_latencies_ns[client.group].extend(latencies)
                first = self.first_ns
                if first is not None:
                    # Clock readings only grow: the first reading for a
                    # message is its smallest latency, the last its largest.
                    last = self.last_ns
                    self.poll_latencies_ns.extend([self.poll_ns - t for t in stamps])
                    for t in stamps:
                        if t not in first:
                            first[t] = now - t
                        last[t] = now - t

    def _read_tls(self, client):
        """
        L{_read} over TLS: one read returns one record at most, and epoll
        does not see the records OpenSSL already took from the kernel.
        """
        LoadGenerator._read(self, client)
        while not client.closed and client.sock.pending():
            LoadGenerator._read(self, client)

    def _write(self, client):
        if not client.out:
            if client.remaining <= 0:
                self._watch(client, EVENT_READ)
                return
            count = min(client.remaining, SEND_BATCH)
            client.remaining -= count
            client.out = (client.line_start + b"~M%d" % time.perf_counter_ns() + FILLER
                          + b"\n") * count
        try:
            sent = client.sock.send(client.out)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
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
        self.by_fd.pop(client.fd, None)
        try:
            self.epoll.unregister(client.fd)
        except (KeyError, ValueError, OSError):
            pass
        client.sock.close()

    def close(self):
        for client in self.clients:
            self._close(client)
        self.epoll.close()

    # Phases

    def connect(self, count, batch=250, timeout=60.0, nodelay=False, first=0):
        """
        Open C{count} connections, C{batch} at a time, each sending its
        nickname (C{b<first>}, C{b<first + 1>}, ...); wait (at most C{timeout}
        s in all) until each batch is welcomed.  Return the number joined
        (in all, including earlier calls).
        """
        deadline = time.monotonic() + timeout
        for start in range(first, first + count, batch):
            for i in range(start, min(start + batch, first + count)):
                sock = socket.socket()
                if self.rcvbuf:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                if nodelay:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(max(deadline - time.monotonic(), 0.1))
                irc = bool(self.irc_every) and i % self.irc_every == 1
                group, rank = i % len(self.ports), i // len(self.ports)
                try:
                    sock.connect((self.host, self.irc_port if irc else self.ports[group]))
                    if self.tls is not None:
                        sock = self.tls.wrap_socket(sock, server_hostname="localhost")
                except OSError:
                    self.connect_errors += 1
                    sock.close()
                    continue
                sock.setblocking(False)
                nickname = b"b%d" % i
                client = Client(sock, nickname, rank % self.latency_every == 0, irc, group)
                self.clients.append(client)
                self.by_fd[client.fd] = client
                self.epoll.register(client.fd, EVENT_READ)
                try:
                    if irc:
                        sock.send(b"NICK %s\r\nUSER %s 0 * :%s\r\n" % (nickname, nickname, nickname))
                    else:
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

    def enter_rooms(self, room_size):
        """
        Move the clients, C{room_size} at a time in the order they joined,
        from the lobby into rooms of their own (C{#r00}, C{#r01}, ...): each
        sends C{/join #rNN} and C{/part #lobby}.  L{settle} afterwards.
        """
        for index, client in enumerate(self.clients):
            if not client.closed:
                room = ROOM % (index // room_size,)
                client.out += b"/join " + room + b"\n/part #lobby\n"
                self._write_out(client)

    def talk(self, count):
        """
        The first client says C{count} lines (not benchmark messages), which
        its room keeps as history.  L{settle} afterwards.
        """
        client = self.live_clients()[0]
        client.out += b"".join(b"said before the others came, line %d\n" % (n,)
                               for n in range(count))
        self._write_out(client)

    def _write_out(self, client):
        """
        Send what C{client} has to say; what the socket does not take now
        goes when it is writable.
        """
        self._write(client)
        if client.out and not client.closed:
            self._watch(client, EVENT_READ | EVENT_WRITE)

    def flood(self, senders, messages, stall=5.0, timeout=120.0, room_size=None):
        """
        C{senders} clients each send C{messages} messages as fast as the server
        takes them; run until every delivery arrived, nothing arrived for
        C{stall} s, or C{timeout} s.  Return (expected deliveries, seconds).
        With C{room_size} (the clients are in rooms: L{enter_rooms}), the
        senders are the last client of each room, and each message reaches
        the others of its room only.
        """
        live = self.live_clients()
        if room_size is None:
            chosen = live[:senders]
            receivers = len(live) - 1
        else:
            # The last of each room: the first is timed (latency_every).
            chosen = live[room_size - 1 :: room_size][:senders]
            receivers = room_size - 1
        expected = len(chosen) * messages * receivers
        start_ns = time.perf_counter_ns()
        for client in chosen:
            client.remaining = messages
            self._watch(client, EVENT_READ | EVENT_WRITE)
        self._run_until(expected, start_ns, stall, timeout)
        return expected, (self.last_delivery_ns - start_ns) / 1e9 if self.deliveries else 0.0

    def at_rate(self, rate, duration, stall=5.0, timeout=None, sender_group=None):
        """
        Send C{rate} messages a second in total for C{duration} s, one at a
        time, from every client in turn (of C{sender_group} only, if given);
        then wait for the deliveries as in L{flood}.  Return (expected
        deliveries, seconds, messages sent).
        """
        live = self.live_clients()
        senders = [c for c in live if sender_group is None or c.group == sender_group]
        total = int(rate * duration)
        interval_ns = int(1e9 / rate)
        start_ns = time.perf_counter_ns()
        sent = 0
        while sent < total and senders:
            now = time.perf_counter_ns()
            due = start_ns + sent * interval_ns
            if now >= due:
                client = senders[sent % len(senders)]
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

    def reset_latencies(self):
        self.latencies_ns = array("q")
        self.group_latencies_ns = [array("q") for _ in self.ports]

    def percentiles_ms(self, *fractions, values=None):
        """
        The latencies (or C{values}) at C{fractions} (0.5 for the median), in ms.
        """
        values = self.latencies_ns if values is None else values
        if not values:
            return [None] * len(fractions)
        ordered = sorted(values)
        last = len(ordered) - 1
        return [round(ordered[min(int(len(ordered) * f), last)] / 1e6, 3) for f in fractions]
