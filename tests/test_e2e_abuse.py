"""
End-to-end: what the real C{twistd -n wazzap} does about clients that misuse
it: never reading, flooding, idling, opening too many connections, churning,
speaking HTTP, TLS or telnet.  Limits are set low so each test is quick.
"""

import selectors
import socket
import ssl
import time

from tests.support import TIMEOUT, LineClient, open_fds, peak_rss_kib, room, until


def read_all_until_closed(sock, timeout=TIMEOUT):
    """
    Every byte the server sends until it closes the connection.
    """
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("the server did not close the connection; got %r" % (data,))
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except socket.timeout:
            continue
        if not chunk:
            return data
        data += chunk


def test_client_that_stops_reading_is_dropped_and_others_get_everything(start_server, open_client):
    """
    A client that never reads is disconnected as too slow while the others receive every
    line in order and memory stays bounded.
    """
    # Without room history, which holds up to 100 ms of the room's lines
    # until they are written (its memory is tested in test_e2e_history).
    server = start_server(
        "--max-queued-output", "65536", "--slow-timeout", "1", "--flood-rate", "0",
        "--history-days", "0",
    )
    alice, bob = room(server, open_client, "alice", "bob")
    sloth = open_client(server, rcvbuf=4096)
    sloth.join("sloth")
    alice.read_until("sloth joined")
    bob.read_until("sloth joined")
    peak_before = peak_rss_kib(server.process.pid)
    padding = "x" * 500
    batches, per_batch = 40, 200
    received = []
    for batch in range(batches):
        first = batch * per_batch
        payload = "".join("%06d %s\n" % (n, padding) for n in range(first, first + per_batch))
        alice.send_raw(payload.encode())
        received += bob.read_through("%06d %s" % (first + per_batch - 1, padding))
    if not any("sloth left" in line for line in received):
        received += bob.read_through("sloth left")
    numbers = [int(line.split()[1]) for line in received if line.startswith("alice: ")]
    assert numbers == list(range(batches * per_batch))
    assert "[Server] sloth left the chat (too slow: stopped reading)" in received
    assert (
        alice.read_until("sloth left") == "[Server] sloth left the chat (too slow: stopped reading)"
    )
    # 4 MB went to the room: holding it for the sloth, even for a while,
    # would raise the peak resident size by about as much.
    growth_kib = peak_rss_kib(server.process.pid) - peak_before
    assert growth_kib < 1024, growth_kib
    alice.send("still flowing")
    assert bob.read_until("still flowing") == "alice: still flowing"


def test_flood_is_slowed_down_not_dropped(start_server, open_client):
    """
    Thirty lines pasted at once arrive complete and in order, paced, and the paster is told
    it is being slowed down.
    """
    server = start_server("--flood-burst", "5", "--flood-rate", "40")
    alice, bob = room(server, open_client, "alice", "bob")
    started = time.monotonic()
    alice.send_raw(b"".join(b"paste line %02d\n" % (n,) for n in range(30)))
    lines = bob.read_through("paste line 29")
    elapsed = time.monotonic() - started
    assert [line for line in lines if line.startswith("alice:")] == [
        "alice: paste line %02d" % (n,) for n in range(30)
    ]
    # 25 lines beyond the burst at 40 a second take about 0.6 s.
    assert 0.5 <= elapsed < TIMEOUT, elapsed
    notice = alice.read_until("[Server]")
    assert "slow" in notice, notice


def test_login_timeout_closes_silent_connections_without_blocking_others(start_server, open_client):
    """
    Connections that never choose a nickname are closed with a notice, and 200 of them do
    not keep a real user out.
    """
    server = start_server("--login-timeout", "1", "--max-per-address", "0")
    received = {}
    with selectors.DefaultSelector() as selector:
        try:
            # In batches smaller than the listen queue, each read up to its
            # prompt, so that this test is not about how bursts are accepted.
            for _ in range(5):
                batch = [
                    socket.create_connection((server.host, server.port), timeout=TIMEOUT)
                    for _ in range(40)
                ]
                for sock in batch:
                    received[sock] = b""
                    while b"Choose a nickname" not in received[sock]:
                        chunk = sock.recv(65536)
                        assert chunk, received[sock]
                        received[sock] += chunk
                    sock.setblocking(False)
                    selector.register(sock, selectors.EVENT_READ)
            alice = open_client(server)
            alice.join("alice")
            open_socks = set(received)
            deadline = time.monotonic() + TIMEOUT
            while open_socks and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.1):
                    try:
                        chunk = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        chunk = b""
                    received[key.fileobj] += chunk
                    if not chunk:
                        selector.unregister(key.fileobj)
                        open_socks.discard(key.fileobj)
            assert not open_socks, "%d silent connections were never closed" % (len(open_socks),)
        finally:
            for sock in received:
                sock.close()
    for data in received.values():
        assert b"Choose a nickname" in data and b"no nickname chosen in time" in data, data
    alice.send("/who")
    assert alice.read_until("online") == "[Server] 1 online: alice"


def test_burst_of_connections_is_accepted_without_delay(start_server, open_client):
    """
    200 connections opened back to back are each accepted at once, so a real user arriving
    in a burst is not held back.
    """
    server = start_server("--login-timeout", "5", "--max-per-address", "0")
    opened, slow = [], []
    try:
        for n in range(200):
            started = time.monotonic()
            opened.append(socket.create_connection((server.host, server.port), timeout=TIMEOUT))
            took = time.monotonic() - started
            if took > 0.5:
                slow.append((n, round(took, 2)))
        alice = open_client(server)
        alice.join("alice")
    finally:
        for sock in opened:
            sock.close()
    # A full listen queue drops SYNs, and the kernel retries only after 1 s.
    assert not slow, "connections that waited for a SYN retry: %r" % (slow,)


def test_per_address_limit_refuses_the_extra_connection(start_server, open_client):
    """
    Beyond --max-per-address connections from one address are told why and closed; a freed
    slot is reusable.
    """
    server = start_server("--max-per-address", "3")
    first, second, third = [open_client(server) for _ in range(3)]
    for client in (first, second, third):
        client.read_until("Choose a nickname")
    fourth = open_client(server)
    lines = fourth.wait_closed(TIMEOUT)
    assert any("Too many connections" in line and "3" in line for line in lines), lines
    assert not any("Choose a nickname" in line for line in lines), lines
    first.close()

    def try_join():
        client = LineClient(server.host, server.port)
        try:
            client.join("again")
            return client
        except (AssertionError, OSError, EOFError):
            client.close()
            return None

    again = until(try_join, timeout=3)
    assert again is not None, "no connection accepted after one closed"
    again.close()


def test_idle_user_is_disconnected_and_the_room_told(start_server, open_client):
    """
    With --idle-timeout 1 a silent user is disconnected with a notice and the room is told.
    """
    server = start_server("--idle-timeout", "1")
    alice, bob = room(server, open_client, "alice", "bob")
    seen = []
    deadline = time.monotonic() + 4
    while not any("alice left" in line for line in seen) and time.monotonic() < deadline:
        bob.send("/who")
        seen += bob.read_through("online:")
        time.sleep(0.2)
    left = [line for line in seen if "alice left" in line]
    assert left and left[0].startswith("[Server] alice left the chat ("), seen
    assert "silence" in left[0] or "idle" in left[0], left
    goodbye = alice.wait_closed(TIMEOUT)
    assert any("silence" in line or "idle" in line for line in goodbye), goodbye
    bob.send("/who")
    assert bob.read_until("online") == "[Server] 1 online: bob"


def test_churn_leaves_no_ghosts_and_no_leaked_descriptors(start_server, open_client):
    """
    200 quick connect/join/leave cycles, some abrupt, leave only the real users online and
    the fd count where it was.
    """
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    pid = server.process.pid
    fds_before = open_fds(pid)
    for n in range(200):
        if n % 20 == 0:
            alice.send("chat %d" % (n,))
        client = LineClient(server.host, server.port)
        kind = n % 5
        if kind == 0:
            client.reset()
            continue
        client.join("churn%d" % (n,))
        if kind == 1:
            client.send("/quit")
            client.wait_closed(TIMEOUT)
            client.close()
        elif kind == 2:
            client.sock.shutdown(socket.SHUT_WR)
            client.close()
        elif kind == 3:
            client.reset()
        else:
            client.send("hello from churn%d" % (n,))
            client.close()
    alice.send("chat done")
    lines = bob.read_through("alice: chat done", timeout=TIMEOUT * 2)
    assert [line for line in lines if line.startswith("alice:")] == [
        "alice: chat %d" % (n,) for n in range(0, 200, 20)
    ] + ["alice: chat done"]

    def who():
        alice.send("/who")
        return alice.read_until("online:")

    assert until(lambda: who() == "[Server] 2 online: alice, bob", timeout=3), who()
    assert until(lambda: open_fds(pid) == fds_before, timeout=3), (open_fds(pid), fds_before)


def test_http_request_gets_a_plain_answer_and_is_closed(start_server, open_client):
    """
    A first line "GET / HTTP/1.1" is answered with a short plain-text HTTP error and the
    connection closed.
    """
    server = start_server()
    (alice,) = room(server, open_client, "alice")
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n")
        data = read_all_until_closed(sock)
    assert len(data) < 1024, data
    assert b"\r\nHTTP/1.0 400 " in data or data.startswith(b"HTTP/1."), data
    assert b"Content-Type: text/plain" in data and b"chat server" in data, data
    assert b"Sorry" not in data, data
    alice.send("/who")
    assert alice.read_until("online") == "[Server] 1 online: alice"
    assert "joined as GET" not in server.log()


def client_hello():
    """
    The first flight of a real TLS client, as Python's ssl module writes it.
    """
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def test_tls_client_hello_gets_a_plain_answer_and_is_closed(start_server, open_client):
    """
    A TLS ClientHello is answered with a short plain-text explanation and closed, not taken
    as a nickname.
    """
    server = start_server()
    (alice,) = room(server, open_client, "alice")
    hello = client_hello()
    assert hello.startswith(b"\x16\x03\x01")
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        sock.sendall(hello)
        data = read_all_until_closed(sock)
    assert len(data) < 1024, data
    assert b"TLS" in data and b"Sorry" not in data, data
    data.decode("ascii")
    alice.send("/who")
    assert alice.read_until("online") == "[Server] 1 online: alice"


def test_telnet_commands_are_ignored(start_server, open_client):
    """
    Telnet IAC sequences (option negotiation, commands in a line) are dropped, not shown as
    garbage (Ctrl+C, which leaves, is in test_e2e_net).
    """
    server = start_server()
    (bob,) = room(server, open_client, "bob")
    alice = open_client(server)
    alice.read_until("Choose a nickname")
    alice.send_raw(b"\xff\xfd\x03\xff\xfb\x18alice\r\n")
    alice.read_until("Welcome, alice!")
    bob.read_until("alice joined")
    alice.send_raw(b"\xff\xf1")
    time.sleep(0.1)
    alice.send_raw(b"after a nop\r\n")
    alice.send_raw(b"mid\xff\xf1dle\r\n")
    alice.send_raw(b"\xff\xfc\x06\r\n")
    alice.send_raw(b"end\r\n")
    lines = bob.read_through("alice: end")
    assert lines == ["alice: after a nop", "alice: middle", "alice: end"], lines
    alice.send("/who")
    assert alice.read_through("online:") == ["[Server] 2 online: alice, bob"]
