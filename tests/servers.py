"""
Real servers that wazzap uses, started by the tests on free loopback ports
in temporary directories: C{redis-server}.  Where one is not installed the
tests that need it skip, saying how to install it.
"""

import shutil
import socket
import subprocess
import time

import pytest

from tests.support import free_port

REDIS_MISSING = "redis-server is not installed: apt-get install redis-server"

#: Seconds a server may take to start or stop.
START_SECONDS = 10


def need_redis():
    """
    The path of C{redis-server}, or skip the test.
    """
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip(REDIS_MISSING)
    return path


class RedisServer:
    """
    A C{redis-server} of its own, keeping nothing on disk, that a test may
    stop and start again on the same port.
    """

    def __init__(self, directory):
        self._binary = need_redis()
        self._directory = directory
        self.port = free_port()
        self._process = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % (self.port,)

    def start(self):
        self._process = subprocess.Popen(
            [
                self._binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self._directory),
                "--daemonize", "no", "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while self.command("PING") != "+PONG":
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.stop()
                raise AssertionError("redis-server did not start on port %d" % (self.port,))
            time.sleep(0.05)

    def command(self, *words):
        """
        The first line Redis answers C{words} with, or L{None} if it cannot
        be reached.
        """
        request = b"*%d\r\n" % (len(words),) + b"".join(
            b"$%d\r\n%s\r\n" % (len(word.encode()), word.encode()) for word in words
        )
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(request)
                return sock.makefile("rb").readline().decode().rstrip("\r\n")
        except OSError:
            return None

    def stop(self):
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(START_SECONDS)
        self._process = None


@pytest.fixture
def redis_server(tmp_path_factory):
    """
    A real C{redis-server} for one test, stopped when it ends.
    """
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()
