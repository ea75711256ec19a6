"""
Helpers for end-to-end tests: the real C{twistd -n wazzap}, started as a
subprocess on a free loopback port, and plain sockets that talk to it the way
nc does.  Every wait is bounded.
"""

import atexit
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import argon2

from wazzap.persist import passwords
from wazzap.persist.store import open_database

REPO = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DEFAULT_TIMEOUT = 10
#: Short enough that a failing test fails quickly, long enough for a busy box.
TIMEOUT = 5

#: The password of the accounts L{seed_accounts} writes.
PASSWORD = "correct-horse"
NICKNAME_PROMPT = "Choose a nickname"

#: The only escape sequences the server itself writes: SGR colour changes.
SGR = re.compile(rb"\x1b\[[0-9;]*m")

#: Characters no user may make another terminal receive (besides CR LF).
FORBIDDEN = re.compile(
    "[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


def twistd_path():
    """
    The twistd script of the Python running the tests (python -m does not work).
    """
    return str(Path(sys.executable).with_name("twistd"))


#: Where children keep their default database (XDG_DATA_HOME): never the
#: home directory of whoever runs the tests.
_DATA_HOME = tempfile.mkdtemp(prefix="wazzap-test-data-")
atexit.register(shutil.rmtree, _DATA_HOME, True)


def child_environment():
    """
    The environment for a child process: the repository first on the path, so
    twistd finds this checkout's plugin whether or not it was installed, and
    a data directory of the tests' own for any default database.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["XDG_DATA_HOME"] = _DATA_HOME
    return env


def run_wazzap(workdir, *options, daemon=False, timeout=TIMEOUT * 4, **run_options):
    """
    Run C{twistd wazzap} with C{options}, its database, log and pid file in
    C{workdir} and on a free loopback port unless C{options} name one, to
    its end (a daemon's starter ends once the daemon is up): the completed
    process, stdout and stderr apart, as text.
    """
    port = [] if any(option.startswith("--port") for option in options) else [
        "--port=tcp:%d:interface=127.0.0.1" % (free_port(),)
    ]
    return subprocess.run(
        [
            twistd_path(),
            *([] if daemon else ["-n"]),
            "--pidfile=" + str(workdir / "twistd.pid"),
            "--logfile=" + str(workdir / "twistd.log"),
            "wazzap",
            "--db=" + str(workdir / "wazzap.sqlite3"),
            *port,
            *options,
        ],
        cwd=str(workdir),
        env=child_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        **run_options,
    )


def interruptible():
    """
    A child's C{preexec_fn}: Ctrl+C (SIGINT) at its default, as a program
    started from a terminal has it.  A test run started in the background
    (C{&}) ignores SIGINT, and its children would inherit that.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def strip_colors(text):
    return ANSI.sub("", text)


def assert_clean_output(raw):
    """
    C{raw} bytes, as a terminal with colours on receives them, carry no
    control other than the server's own SGR colours and CR LF line ends.
    """
    assert raw, "nothing was received"
    without_colors = SGR.sub(b"", raw)
    assert b"\x1b" not in without_colors, _first_escape(raw)
    assert b"\r" not in without_colors.replace(b"\r\n", b"")
    assert b"\n" not in without_colors.replace(b"\r\n", b"")
    text = without_colors.decode("utf-8").replace("\r\n", "")
    bad = FORBIDDEN.search(text)
    context = text[max(bad.start() - 40, 0) : bad.end() + 40] if bad else ""
    assert bad is None, "control %r in %r" % (bad.group(), context)


def _first_escape(raw):
    index = SGR.sub(b"", raw).index(b"\x1b")
    return "foreign escape sequence near %r" % (SGR.sub(b"", raw)[max(index - 40, 0) : index + 40],)


def percentile(samples, fraction):
    """
    The C{fraction} quantile of C{samples} (nearest rank); C{samples} must not be empty.
    """
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def open_fds(pid):
    """
    How many file descriptors process C{pid} has open.
    """
    return len(os.listdir("/proc/%d/fd" % (pid,)))


def peak_rss_kib(pid):
    """
    The largest resident set size process C{pid} has had so far, in KiB.
    """
    return _status_number(pid, "VmHWM:")


def thread_count(pid):
    """
    How many threads process C{pid} runs.
    """
    return _status_number(pid, "Threads:")


def _status_number(pid, field):
    with open("/proc/%d/status" % (pid,)) as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise AssertionError("no %s for %d" % (field, pid))


def reset(sock):
    """
    Close C{sock} abruptly: SO_LINGER 0 makes close() send a RST instead of a FIN.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.05):
    """
    Poll C{predicate} until it is true or C{timeout} passes; return its last value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def admin_cli(*arguments, env=None):
    """
    Run C{python -m wazzap.admin ARGUMENTS} (in UTC, with C{env} added);
    return the completed process.
    """
    environment = child_environment()
    environment["TZ"] = "UTC"
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "wazzap.admin", *arguments],
        cwd=str(REPO),
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
    )


@lru_cache(maxsize=None)
def password_hash(password):
    """
    An argon2id hash of C{password} made with the server's own parameters.
    """
    hasher = argon2.PasswordHasher(
        time_cost=passwords.ARGON2_TIME_COST,
        memory_cost=passwords.ARGON2_MEMORY_KIB,
        parallelism=passwords.ARGON2_PARALLELISM,
        hash_len=passwords.ARGON2_HASH_BYTES,
        salt_len=passwords.ARGON2_SALT_BYTES,
        type=argon2.Type.ID,
    )
    return hasher.hash(password)


def seed_accounts(db_path, nicknames, admins=()):
    """
    Register C{nicknames} (with L{PASSWORD}) in the database at C{db_path}
    (a SQLite file, or a PostgreSQL URL) before a server opens it; flag
    C{admins}.  Return the --db option.
    """
    with open_database(str(db_path)) as database:
        for nickname in nicknames:
            assert database.create_account(nickname, password_hash(PASSWORD))
        for nickname in admins:
            assert database.set_admin(nickname, True)
    return "--db=%s" % (db_path,)


def admin_server(start_server, tmp_path, *options, nicknames=()):
    """
    A server whose database has the admin account "boss" (and C{nicknames}).
    """
    db = seed_accounts(tmp_path / "wazzap.sqlite3", ("boss",) + tuple(nicknames), admins=("boss",))
    return start_server(db, *options)


def room(server, open_client, *nicknames):
    """
    Join C{nicknames} in order, each having seen everyone after it join.
    """
    clients = [open_client(server, nickname) for nickname in nicknames]
    for index, client in enumerate(clients):
        for later in nicknames[index + 1 :]:
            client.read_until("%s joined the chat" % (later,))
    return clients


class ServerProcess:
    """
    A running C{twistd -n wazzap}; its log is kept in C{log_path}.
    """

    def __init__(self, workdir, *options, host="127.0.0.1", port=None):
        """
        @param port: to listen on, as a process restarted on its port does;
            by default a free one.
        """
        self.host = host
        self.port = free_port(host) if port is None else port
        self.workdir = Path(workdir)
        self.log_path = self.workdir / ("twistd-%d.log" % (self.port,))
        # A process restarted on its port appends to the log of the one before.
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.db_path = self.workdir / "wazzap.sqlite3"
        if not any(option.startswith("--db") for option in options):
            options = ("--db=%s" % (self.db_path,),) + options
        if not any(option.startswith("--max-connections-per-minute") for option in options):
            # Tests open many connections from 127.0.0.1 in seconds.
            options = ("--max-connections-per-minute=0",) + options
        if not any(option.startswith("--replay") for option in options):
            # Tests that read exact lines would read replayed ones too: those
            # about history ask for replays.
            options = ("--replay=0",) + options
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
        """
        What this process wrote to its log.
        """
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                return log.read().decode(errors="replace")
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
            client.join(nickname)
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
    A raw TCP connection to the server, as nc makes: it reads lines with
    colours stripped into C{lines}, and keeps every byte received in C{raw}.
    """

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT, rcvbuf=None, source=None, nodelay=False):
        """
        @param rcvbuf: a receive buffer size, set before connecting so that it
            bounds the window the kernel advertises.
        @param source: a loopback address to connect from (any of 127.0.0.0/8
            reaches a server on 127.0.0.1), to try address bans and limits.
        @param nodelay: send each line at once, so that latencies measured are
            the server's rather than Nagle's algorithm's.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            self.sock.bind((source, 0))
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self._buffer = b""
        self.lines = []
        self.raw = b""

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
        self.raw += data
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        for raw in complete:
            self.lines.append(strip_colors(raw.rstrip(b"\r").decode("utf-8", "replace")))

    def read_through(self, needle, timeout=None):
        """
        Return every unread line up to and including the first one containing
        C{needle} (a str or compiled regex).
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = []
        while True:
            while self.lines:
                line = self.lines.pop(0)
                seen.append(line)
                if needle.search(line) if hasattr(needle, "search") else needle in line:
                    return seen
            if time.monotonic() >= deadline:
                raise AssertionError("timed out waiting for %r; got %r" % (needle, seen[-20:]))
            try:
                self._receive(deadline)
            except socket.timeout:
                raise AssertionError("timed out waiting for %r; got %r" % (needle, seen[-20:]))

    def read_until(self, needle, timeout=None):
        """
        Return the first unread line containing C{needle} (a str or compiled
        regex), consuming every line up to it.
        """
        return self.read_through(needle, timeout)[-1]

    def ask(self, line, needle):
        """
        Send C{line} and return the first line that answers it with C{needle}.
        """
        self.send(line)
        return self.read_until(needle)

    def join(self, nickname, ending=b"\n"):
        """
        Answer the nickname prompt and wait for the welcome; return the welcome.
        """
        self.read_until("Choose a nickname")
        self.send(nickname, ending)
        return self.read_until("Welcome, %s!" % (nickname,))

    def raw_line(self, fragment):
        """
        The last raw line received (colours kept) that contains C{fragment}.
        """
        for line in reversed(self.raw.split(b"\n")):
            if fragment in line:
                return line + b"\n"
        raise AssertionError("no raw line with %r" % (fragment,))

    def reset(self):
        """
        Close abruptly, with a RST (see L{reset}).
        """
        reset(self.sock)

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


class LoginClient(LineClient):
    """
    A L{LineClient} that can log in to a registered nickname.
    """

    def log_in(self, nickname, password=PASSWORD, welcome=True, prompted=False):
        """
        Give a registered nickname and its password (after the nickname prompt
        unless C{prompted} says it was read); with C{welcome}, wait for the
        welcome and return it.
        """
        if not prompted:
            self.read_until(NICKNAME_PROMPT)
        self.send(nickname)
        assert self.read_until("Password:") == "[Server] %s is registered. Password:" % (nickname,)
        self.send(password)
        if welcome:
            return self.read_until("Welcome, %s!" % (nickname,))
        return None
