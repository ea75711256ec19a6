"""
End-to-end: socket activation as systemd does it, without systemd.  The test
listens on a loopback socket and starts the real C{twistd -n wazzap --port
systemd:...} with it as file descriptor 3, C{LISTEN_FDS=1},
C{LISTEN_FDNAMES} and C{LISTEN_PID} set to the server's own pid (which
C{sh} knows as C{$$} before it C{exec}s twistd), and it chats there; and
the units in
C{contrib/} say what the server expects.
"""

import configparser
import os
import signal
import socket
import subprocess
import time

import pytest

from tests.support import (
    DEFAULT_TIMEOUT,
    REPO,
    TIMEOUT,
    LineClient,
    child_environment,
    twistd_path,
)
from wazzap.app.tap import Options

pytestmark = pytest.mark.timeout(90)

#: The first descriptor systemd passes.
SD_LISTEN_FDS_START = 3
#: What contrib/wazzap.socket names its socket.
FDNAME = "wazzap"

#: Runs its arguments with LISTEN_PID set to the pid they will have.
WITH_LISTEN_PID = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"'


class ActivatedServer:
    """
    A C{twistd -n wazzap} handed C{listener} as systemd would hand it.
    """

    def __init__(self, workdir, listener, endpoint, name=FDNAME):
        self.log_path = workdir / ("twistd-%d.log" % (time.monotonic_ns(),))
        env = child_environment()
        env.update(LISTEN_FDS="1", LISTEN_FDNAMES=name)
        fd = listener.fileno()
        self.process = subprocess.Popen(
            [
                "sh",
                "-c",
                WITH_LISTEN_PID,
                "sh",
                twistd_path(),
                "-n",
                "--pidfile=",
                "--logfile=" + str(self.log_path),
                "wazzap",
                "--db=" + str(workdir / "wazzap.sqlite3"),
                "--port=" + endpoint,
            ],
            cwd=str(workdir),
            env=env,
            # The socket goes where systemd puts it; pass_fds keeps it
            # open, as it closes the other descriptors after preexec_fn.
            preexec_fn=lambda: os.dup2(fd, SD_LISTEN_FDS_START),
            pass_fds=(SD_LISTEN_FDS_START,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while needle not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = b""
                if self.process.poll() is not None:
                    output = self.process.stdout.read()
                raise AssertionError(
                    "no %r in the log:\n%s\n%s" % (needle, output.decode(errors="replace"), self.log())
                )
            time.sleep(0.02)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(DEFAULT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(DEFAULT_TIMEOUT)
        self.process.stdout.close()
        return self.process.returncode


@pytest.fixture
def listener():
    """
    A listening loopback socket, as a socket unit makes it; closed at the end.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


@pytest.fixture
def activate(tmp_path, listener):
    """
    Start servers on the listener (C{activate(endpoint)}); each is stopped at the end.
    """
    servers = []

    def start(endpoint, name=FDNAME):
        server = ActivatedServer(tmp_path, listener, endpoint, name)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def clients():
    """
    Raw clients a test opens; closed at the end.
    """
    opened = []
    yield opened
    for client in opened:
        client.close()


@pytest.mark.parametrize(
    "endpoint", ["systemd:domain=INET:name=wazzap", "systemd:domain=INET:index=0"]
)
def test_an_activated_server_chats_on_the_socket_it_was_passed(activate, listener, clients, endpoint):
    """Handed a socket by name or by index, the server listens on it and people chat there."""
    port = listener.getsockname()[1]
    server = activate(endpoint)
    server.wait_for_log("listening on 127.0.0.1:%d" % (port,))
    alice = LineClient("127.0.0.1", port)
    bob = LineClient("127.0.0.1", port)
    clients.extend([alice, bob])
    alice.join("alice")
    bob.join("bob")
    alice.send("hello from a socket systemd made")
    assert bob.read_until("alice:") == "alice: hello from a socket systemd made"


def test_a_connection_made_while_the_server_restarts_is_served(activate, listener, clients):
    """The socket outlives the server: who connects while it restarts is greeted by the next one."""
    port = listener.getsockname()[1]
    first = activate("systemd:domain=INET:name=wazzap")
    first.wait_for_log("listening on 127.0.0.1:%d" % (port,))
    before = LineClient("127.0.0.1", port)
    clients.append(before)
    before.join("before")  # the reactor runs: SIGTERM is a clean stop
    first.stop()
    assert "server is shutting down" in before.wait_closed()[-1]
    early = LineClient("127.0.0.1", port, timeout=TIMEOUT * 2)
    clients.append(early)
    second = activate("systemd:domain=INET:name=wazzap")
    second.wait_for_log("listening on 127.0.0.1:%d" % (port,))
    assert early.join("early").startswith("[Server] Welcome, early!")


def test_without_the_socket_the_start_is_one_line(tmp_path):
    """A systemd: port that systemd did not pass ends the start with one line and status 1."""
    env = child_environment()
    for variable in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(variable, None)
    result = subprocess.run(
        [
            twistd_path(),
            "-n",
            "--pidfile=",
            "--logfile=" + str(tmp_path / "twistd.log"),
            "wazzap",
            "--db=" + str(tmp_path / "wazzap.sqlite3"),
            "--port=systemd:domain=INET:name=wazzap",
        ],
        cwd=str(tmp_path),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 4,
    )
    assert result.returncode == 1, result
    assert result.stderr.splitlines() == [
        "twistd wazzap: --port 'systemd:domain=INET:name=wazzap': systemd passed no such socket:"
        " start wazzap through its socket unit, which passes it with LISTEN_FDS and"
        " LISTEN_FDNAMES (see: twistd wazzap --help)"
    ]


def _unit(name):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(REPO / "contrib" / name)
    return unit


def test_the_units_agree_with_each_other_and_the_server():
    """The service adopts the socket the socket unit names, reloads with SIGHUP and runs unprivileged."""
    socket_unit, service = _unit("wazzap.socket"), _unit("wazzap.service")
    name = socket_unit["Socket"]["FileDescriptorName"]
    start = service["Service"]["ExecStart"]
    assert "--port systemd:domain=INET6:name=%s " % (name,) in start
    assert socket_unit["Socket"]["ListenStream"].startswith("[::]:")
    assert socket_unit["Socket"]["Service"] == "wazzap.service"
    assert service["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Service"]["User"] == "wazzap"
    assert "--nodaemon --pidfile= " in start
    assert os.path.basename(start.split()[0]) == "twistd"


def test_the_template_for_several_processes_starts_a_server_of_the_cluster():
    """wazzap@PORT.service's command line is one wazzap accepts: its port, Redis and PostgreSQL."""
    service = _unit("wazzap@.service")["Service"]
    start = service["ExecStart"].replace("\\\n", " ").replace("%i", "5556").split()
    assert start[:4] == ["/opt/wazzap/bin/twistd", "--nodaemon", "--pidfile=", "--logfile=-"]
    assert start[4] == "wazzap"
    options = Options()
    options.parseOptions(start[5:])
    assert options["redis"] == "redis://127.0.0.1:6379/0"
    assert options["db"].startswith("postgresql://")
    assert options["control-socket"] == "/run/wazzap-5556/control"
    assert service["RuntimeDirectory"] == "wazzap-%i"
