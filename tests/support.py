"""
Helpers for end-to-end tests: the real C{twistd -n wazzap}, started as a
subprocess on a free loopback port, and plain sockets that talk to it the way
nc does.  Every wait is bounded.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DEFAULT_TIMEOUT = 10


def twistd_path():
    """
    The twistd script of the Python running the tests (python -m does not work).
    """
    return str(Path(sys.executable).with_name("twistd"))


def child_environment():
    """
    The environment for a child process: the repository first on the path, so
    twistd finds this checkout's plugin whether or not it was installed.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def strip_colors(text):
    return ANSI.sub("", text)


class ServerProcess:
    """
    A running C{twistd -n wazzap}; its log is kept in C{log_path}.
    """

    def __init__(self, workdir, *options, host="127.0.0.1"):
        self.host = host
        self.port = free_port(host)
        self.workdir = Path(workdir)
        self.log_path = self.workdir / ("twistd-%d.log" % (self.port,))
        self.db_path = self.workdir / "wazzap.sqlite3"
        if not any(option.startswith("--db") for option in options):
            options = ("--db=%s" % (self.db_path,),) + options
        interface = host.replace(":", "\\:")
        kind = "tcp6" if ":" in host else "tcp"
        self.args = [
            twistd_path(),
            "-n",
            "--pidfile=",
            "--logfile=" + str(self.log_path),
            "wazzap",
            "--port=%s:%d:interface=%s" % (kind, self.port, interface),
            *options,
        ]
        self.process = subprocess.Popen(
            self.args,
            cwd=str(self.workdir),
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.wait_for_log("listening on")

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors="replace")
                raise AssertionError(
                    "server exited (%s) before %r:\n%s\n%s"
                    % (self.process.returncode, needle, output, self.log())
                )
            time.sleep(0.02)
        raise AssertionError("no %r in the server log:\n%s" % (needle, self.log()))

    def connect(self, nickname=None):
        """
        A new L{LineClient}; with C{nickname}, already joined under it.
        """
        client = LineClient(self.host, self.port)
        if nickname is not None:
            client.read_until("Choose a nickname")
            client.send(nickname)
            client.read_until("Welcome, %s!" % (nickname,))
        return client

    def signal(self, signum):
        self.process.send_signal(signum)

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """
        SIGTERM, then SIGKILL if it has not gone; return the exit status.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process.stdout.close()
        return self.process.returncode


class LineClient:
    """
    A raw TCP connection to the server, reading lines with colours stripped.
    """

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self._buffer = b""
        self.lines = []

    def send(self, line, ending=b"\n"):
        data = line.encode("utf-8") if isinstance(line, str) else line
        self.sock.sendall(data + ending)

    def send_raw(self, data):
        self.sock.sendall(data)

    def _receive(self, deadline):
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        for raw in complete:
            self.lines.append(strip_colors(raw.rstrip(b"\r").decode("utf-8", "replace")))

    def read_until(self, needle, timeout=None):
        """
        Return the first unread line containing C{needle} (a str or compiled
        regex), consuming every line up to it.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            while self.lines:
                line = self.lines.pop(0)
                found = needle.search(line) if hasattr(needle, "search") else needle in line
                if found:
                    return line
            if time.monotonic() >= deadline:
                raise AssertionError("timed out waiting for %r" % (needle,))
            try:
                self._receive(deadline)
            except socket.timeout:
                raise AssertionError("timed out waiting for %r" % (needle,))

    def read_lines(self, quiet=0.3, timeout=None):
        """
        Every line that arrives until the connection has been quiet C{quiet} s.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        lines, self.lines = self.lines, []
        while time.monotonic() < deadline:
            try:
                self._receive(min(deadline, time.monotonic() + quiet))
            except (socket.timeout, EOFError):
                break
            lines.extend(self.lines)
            self.lines = []
        return lines

    def wait_closed(self, timeout=None):
        """
        Read until the server closes the connection; return the lines read.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            try:
                self._receive(deadline)
            except EOFError:
                lines, self.lines = self.lines, []
                return lines
            except socket.timeout:
                break
            except ConnectionResetError:
                return self.lines
        raise AssertionError("the server did not close the connection")

    def close(self):
        self.sock.close()
