"""
Redis for the benchmarks: a C{redis-server} of the run's own, and scenario
P, what one Redis takes before it, not wazzap, is the limit.

P publishes a line the size of wazzap's (a captured room message) on one
channel heard by K subscribers, which read and discard (one C{recv_into}
and one C{bytes.count} per chunk, in a child process of their own):
- at a fixed rate, to take the CPU that redis-server spends per 1,000
  lines a second fanned out to K processes;
- as fast as C{redis-benchmark} (pipelined) publishes, for the ceiling.
"""

import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
REDIS_MISSING = "redis-server is not installed (apt-get install redis-server): skipped"

#: A room message as wazzap publishes it on a room's channel (the room, who
#: not to tell, where it was heard, the packed event, the process), as
#: SUBSCRIBE showed one of a benchmark client's lines.
WAZZAP_MESSAGE = (
    b'["#lobby","eb084b98.1",[],["Said","b3","cyan",'
    b'"~M19364215432101 the quick brown fox jumps over the lazy dog",""],"eb084b98"]'
)
CHANNEL = b"wazzap:room:#lobby"


def command(*words):
    """
    One Redis command in RESP.
    """
    return b"*%d\r\n" % (len(words),) + b"".join(
        b"$%d\r\n%s\r\n" % (len(word), word) for word in words)


class RedisServer:
    """
    A C{redis-server} keeping nothing on disk, on a free loopback port, on
    C{cores} (a taskset list such as C{"0,1"}).
    """

    def __init__(self, port, cores=None):
        binary = shutil.which("redis-server")
        if binary is None:
            raise LookupError(REDIS_MISSING)
        self.port = port
        self.url = "redis://%s:%d/0" % (HOST, port)
        self.workdir = tempfile.mkdtemp(prefix="wazzap-bench-redis-")
        argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                "--dir", self.workdir, "--daemonize", "no", "--loglevel", "warning"]
        if cores is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", cores] + argv
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.pid = self.process.pid
        deadline = time.monotonic() + 10
        while self.ask(b"PING") != b"+PONG":
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start on port %d" % (port,))
            time.sleep(0.05)

    def ask(self, *words):
        """
        The first line of Redis's answer to C{words}, or L{None}.
        """
        try:
            with socket.create_connection((HOST, self.port), timeout=2) as sock:
                sock.sendall(command(*words))
                return sock.makefile("rb").readline().rstrip(b"\r\n")
        except OSError:
            return None

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def subscribe(port, subscribers, seconds, quiet=0.5):
    """
    In a child process: C{subscribers} connections SUBSCRIBEd to
    L{CHANNEL}, reading and discarding until C{quiet} s pass without a
    message once some came, or C{seconds}; print how many messages they
    got in all, then exit.
    """
    buffer = bytearray(256 * 1024)
    epoll = select.epoll()
    sockets = {}
    for _ in range(subscribers):
        sock = socket.create_connection((HOST, port))
        sock.sendall(command(b"SUBSCRIBE", CHANNEL))
        sock.setblocking(False)
        sockets[sock.fileno()] = sock
        epoll.register(sock.fileno(), select.EPOLLIN)
    print("ready", flush=True)
    messages = 0
    now = last = time.monotonic()
    deadline = now + seconds
    while now < deadline and not (messages and now - last > quiet):
        for fd, _ in epoll.poll(0.05):
            try:
                size = sockets[fd].recv_into(buffer)
            except BlockingIOError:
                continue
            messages += buffer.count(b"$7\r\nmessage\r\n", 0, size)
            last = time.monotonic()
        now = time.monotonic()
    print(messages, flush=True)


class Subscribers:
    """
    L{subscribe} in a child process on C{cores}.
    """

    def __init__(self, port, count, seconds, cores=None):
        argv = [sys.executable, __file__, "subscribe", str(port), str(count), str(seconds)]
        if cores is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", cores] + argv
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.pid = self.process.pid
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the subscribers did not start")
        time.sleep(0.2)

    def messages(self, timeout):
        """
        How many messages they got, once they stopped.
        """
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        words = out.split()
        return int(words[-1]) if words and words[-1].isdigit() else None


def publish_at_rate(port, rate, seconds, batch=20):
    """
    Publish L{WAZZAP_MESSAGE} on L{CHANNEL} C{rate} times a second for
    C{seconds}, C{batch} commands in one write, reading the answers as they
    come.  Return how many were published.
    """
    one = command(b"PUBLISH", CHANNEL, WAZZAP_MESSAGE)
    sock = socket.create_connection((HOST, port))
    sock.setblocking(False)
    buffer = bytearray(65536)
    sent = answered = 0
    total = int(rate * seconds)
    start = time.monotonic()
    deadline = start + seconds + 10
    while answered < total and time.monotonic() < deadline:
        due = min(int((time.monotonic() - start) * rate) + 1, total)
        if due - sent >= batch or (due == total and sent < total):
            count = due - sent
            sock.setblocking(True)
            sock.sendall(one * count)
            sock.setblocking(False)
            sent += count
        ready, _, _ = select.select([sock], [], [], 0.001)
        if ready:
            size = sock.recv_into(buffer)
            answered += buffer.count(b"\r\n", 0, size)
    sock.close()
    return sent


def redis_benchmark(port, requests, pipeline, clients):
    """
    C{redis-benchmark} PUBLISHing L{WAZZAP_MESSAGE}: requests a second, or
    L{None} if it is not installed.
    """
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    out = subprocess.run(
        [binary, "-h", HOST, "-p", str(port), "-n", str(requests), "-P", str(pipeline),
         "-c", str(clients), "--csv", "PUBLISH", CHANNEL.decode(), WAZZAP_MESSAGE.decode()],
        capture_output=True, text=True, timeout=120).stdout
    # "test","rps" and six more, then "PUBLISH ...","123456.78",...: the
    # name is not escaped (the message has quotes and commas), so from the end.
    return round(float(out.strip().splitlines()[-1].rsplit(",", 7)[1].strip('"')))


if __name__ == "__main__" and sys.argv[1:2] == ["subscribe"]:
    subscribe(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    os._exit(0)
