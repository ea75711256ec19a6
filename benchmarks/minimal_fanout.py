"""
The floor for scenario K: the cheapest one-core fan-out we know how to write in
Python.  One epoll loop; the first line of a connection is its nickname and is
answered with C{Welcome, NICK!} (so the load generator joins every server the
same way); after that every complete line received is written, as received, to
every other joined socket.  Output a socket cannot take at once is kept for it,
so nothing is lost.  No parsing, no formatting, no limits.

    python benchmarks/minimal_fanout.py PORT
"""

import selectors
import socket
import sys

BACKLOG = 4096
READ_BYTES = 65536


def main():
    port = int(sys.argv[1])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    joined = {}  # socket -> bytearray of output it could not take yet
    partial = {}  # socket -> bytes of an incomplete line (or of the nickname)

    def close(sock):
        selector.unregister(sock)
        joined.pop(sock, None)
        partial.pop(sock, None)
        sock.close()

    def write(sock, data):
        pending = joined[sock]
        if pending:
            pending += data
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return
        if sent < len(data):
            pending += data[sent:]
            selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, True)

    while True:
        for key, events in selector.select():
            sock = key.fileobj
            if key.data is None:
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    partial[conn] = b""
                    selector.register(conn, selectors.EVENT_READ, True)
                continue
            if events & selectors.EVENT_WRITE and sock in joined:
                pending = joined[sock]
                try:
                    sent = sock.send(pending)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    close(sock)
                    continue
                del pending[:sent]
                if not pending:
                    selector.modify(sock, selectors.EVENT_READ, True)
            if not events & selectors.EVENT_READ:
                continue
            try:
                data = sock.recv(READ_BYTES)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                close(sock)
                continue
            data = partial[sock] + data
            cut = data.rfind(b"\n") + 1
            partial[sock] = data[cut:]
            if not cut:
                continue
            data = data[:cut]
            if sock not in joined:
                nickname, _, data = data.partition(b"\n")
                joined[sock] = bytearray()
                write(sock, b"Welcome, " + nickname.rstrip(b"\r") + b"!\n")
                if not data:
                    continue
            for other in list(joined):
                if other is not sock:
                    write(other, data)


if __name__ == "__main__":
    main()
