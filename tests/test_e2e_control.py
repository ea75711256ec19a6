"""
End-to-end tests of the operator's control: the real C{twistd -n wazzap},
C{python -m wazzap.admin} talking to its control socket, raw clients as nc
makes them, and C{--console} on a pipe and on a pseudo-terminal.
"""

import os
import select
import signal
import stat
import subprocess
import time

import pexpect
import pytest

from tests.support import (
    DEFAULT_TIMEOUT,
    LineClient,
    admin_cli,
    child_environment,
    free_port,
    twistd_path,
)

pytestmark = pytest.mark.timeout(60)


def admin(server, *arguments):
    """
    Run the admin command on C{server}'s database; return (status, stdout, stderr).
    """
    process = admin_cli("--db", str(server.db_path), *arguments)
    return process.returncode, process.stdout, process.stderr


def asks_to_join(server, nickname):
    """
    A raw client that gave C{nickname} and now waits for approval.
    """
    client = LineClient(server.host, server.port)
    client.read_until("Choose a nickname")
    client.send(nickname)
    client.read_until("Type /quit to stop waiting.")
    return client


def test_pending_and_approve_through_the_control_socket(start_server):
    """With --approve-joins and no admin account, wazzap-admin pending lists a newcomer and approve lets them in."""
    server = start_server("--approve-joins")
    bob = asks_to_join(server, "bob")
    try:
        assert admin(server, "pending") == (
            0,
            "  bob (127.0.0.1): /approve bob or /deny bob\n",
            "",
        )
        assert admin(server, "approve", "bob") == (0, "bob was approved by the operator\n", "")
        assert bob.read_until("Welcome, bob!").startswith("[Server] Welcome, bob!")
        status, out, err = admin(server, "deny", "bob")
        assert (status, out) == (1, "")
        assert err == "python -m wazzap.admin: bob is not waiting to join: see /pending\n"
    finally:
        bob.close()


def test_kick_announce_and_who_act_on_the_running_server(start_server, open_client):
    """who lists the users, announce reaches them all, and kick disconnects one as the operator."""
    server = start_server()
    alice = open_client(server, "alice")
    bob = open_client(server, "bob")
    alice.read_until("bob joined the chat")
    assert admin(server, "who") == (0, "2 online: alice, bob\n", "")
    assert admin(server, "announce", "restart", "at", "five") == (0, "announced to 2 people online\n", "")
    assert alice.read_until("restart") == bob.read_until("restart") == "[Server] restart at five"
    assert admin(server, "kick", "bob", "too", "loud") == (0, "bob was kicked\n", "")
    assert "[Server] disconnected: kicked by the operator: too loud" in bob.wait_closed()
    assert alice.read_until("bob left") == "[Server] bob left the chat (kicked by the operator: too loud)"
    assert "kicked by the operator: [8 characters]" in server.log()
    assert "too loud" not in server.log()


def test_the_control_socket_is_the_owners_alone_and_goes_with_the_server(start_server):
    """The socket beside the database is mode 0600 while the server runs, and removed when it stops."""
    server = start_server()
    path = str(server.db_path) + ".control"
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert admin(server, "who") == (0, "nobody is online\n", "")  # the reactor runs: SIGTERM stops it
    assert server.stop() in (0, -signal.SIGTERM)
    assert not os.path.exists(path)
    status, out, err = admin(server, "who")
    assert (status, out) == (1, "")
    assert err == "python -m wazzap.admin: no server is running (there is no control socket %s)\n" % (
        path,
    )


def twistd(workdir, *options, stdin=subprocess.DEVNULL):
    """
    Start C{twistd -n wazzap} on a free loopback port in C{workdir}, its
    output (the log too) on a pipe.
    """
    return subprocess.Popen(
        [
            twistd_path(),
            "-n",
            "--pidfile=",
            "wazzap",
            "--port=tcp:%d:interface=127.0.0.1" % (free_port(),),
            "--db=%s" % (workdir / "wazzap.sqlite3",),
            *options,
        ],
        cwd=str(workdir),
        env=child_environment(),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_a_second_server_on_the_database_is_refused_and_a_killed_ones_socket_replaced(
    start_server, tmp_path
):
    """A live control socket stops a second server in one line; the one a SIGKILL left is replaced."""
    first = start_server()
    second = twistd(tmp_path)
    output, _ = second.communicate(timeout=DEFAULT_TIMEOUT)
    assert second.returncode == 1
    assert output.decode().splitlines()[-1] == (
        "wazzap: another server runs on this database: its control socket %s.control answers "
        "(stop it first, or give this one another --db; processes sharing one through "
        "--redis need a --control-socket each)" % (first.db_path,)
    )
    first.process.kill()
    first.process.wait(DEFAULT_TIMEOUT)
    assert os.path.exists(str(first.db_path) + ".control")
    status, _, err = admin(first, "who")
    assert status == 1 and "left from one that stopped" in err
    again = start_server()
    assert admin(again, "who") == (0, "nobody is online\n", "")
    assert "removed the control socket" in again.log()


class Output:
    """
    The lines a process writes to a pipe, read with bounded waits.
    """

    def __init__(self, pipe):
        self.pipe = pipe
        self.seen = b""

    def read_until(self, needle, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        needle = needle.encode()
        while needle not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.pipe], [], [], left)[0]:
                raise AssertionError("no %r in %r" % (needle, self.seen[-2000:]))
            data = os.read(self.pipe.fileno(), 65536)
            if not data:
                raise AssertionError("output ended before %r: %r" % (needle, self.seen[-2000:]))
            self.seen += data
        return self.seen


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(DEFAULT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(DEFAULT_TIMEOUT)


def nonblocking(pid, fd):
    """
    Whether descriptor C{fd} of process C{pid} has O_NONBLOCK set.
    """
    with open("/proc/%d/fdinfo/%d" % (pid, fd)) as info:
        flags = next(line for line in info if line.startswith("flags:"))
    return bool(int(flags.split()[1], 8) & os.O_NONBLOCK)


def port_of(output):
    """
    The port a server's log says it listens on.
    """
    text = output.read_until("listening on 127.0.0.1:").decode()
    return int(text.split("listening on 127.0.0.1:")[1].split()[0])


def test_console_on_a_pipe_prints_a_request_and_approves_it(tmp_path):
    """twistd -n wazzap --console prints a request to join and takes approve; the server outlives its input."""
    server = twistd(tmp_path, "--approve-joins", "--console", stdin=subprocess.PIPE)
    try:
        output = Output(server.stdout)
        port = port_of(output)
        output.read_until("wazzap console: type help for the commands")
        bob = LineClient("127.0.0.1", port)
        bob.read_until("Choose a nickname")
        bob.send("bob")
        waiting = bob.read_through("Type /quit to stop waiting.")
        assert not any("No admin is online" in line for line in waiting)
        output.read_until("bob (127.0.0.1) asks to join: /approve bob or /deny bob\n")
        assert not nonblocking(server.pid, 1), "the log's stdout was made non-blocking"
        server.stdin.write(b"approve bob\n")
        server.stdin.flush()
        output.read_until("bob was approved by the operator\n")
        bob.read_until("Welcome, bob!")
        server.stdin.close()
        output.read_until("the console's input ended; the server goes on")
        bob.send("still here")
        assert bob.ask("/who", "online") == "[Server] 1 online: bob"
        bob.close()
    finally:
        stop(server)


def test_console_on_a_terminal_denies_a_request(tmp_path):
    """On a pseudo-terminal, the console shows a request to join and deny turns the newcomer away."""
    port = free_port()
    console = pexpect.spawn(
        twistd_path(),
        [
            "-n",
            "--pidfile=",
            "--logfile=%s" % (tmp_path / "twistd.log",),
            "wazzap",
            "--port=tcp:%d:interface=127.0.0.1" % (port,),
            "--db=%s" % (tmp_path / "wazzap.sqlite3",),
            "--approve-joins",
            "--console",
        ],
        cwd=str(tmp_path),
        env=child_environment(),
        timeout=DEFAULT_TIMEOUT,
    )
    try:
        console.expect_exact("wazzap console: type help for the commands")
        bob = LineClient("127.0.0.1", port)
        bob.read_until("Choose a nickname")
        bob.send("bob")
        console.expect_exact("bob (127.0.0.1) asks to join: /approve bob or /deny bob")
        console.sendline("deny bob try tomorrow")
        console.expect_exact("bob was denied by the operator")
        assert "[Server] disconnected: denied by the operator: try tomorrow" in bob.wait_closed()
        console.sendline("who")
        console.expect_exact("nobody is online")
    finally:
        console.kill(signal.SIGTERM)
        console.close(force=True)


@pytest.mark.parametrize(
    "nodaemon, stdin, why",
    [
        (False, None, "--console needs twistd -n: a daemon has no terminal to read"),
        (True, subprocess.DEVNULL, "--console reads standard input, and it is /dev/null"),
    ],
)
def test_console_is_refused_without_a_terminal(tmp_path, nodaemon, stdin, why):
    """--console without -n, or with nothing to read, stops the start with one line."""
    arguments = [twistd_path(), "--pidfile=", "--logfile=%s" % (tmp_path / "log",)]
    if nodaemon:
        arguments.append("-n")
    arguments += ["wazzap", "--port=tcp:%d:interface=127.0.0.1" % (free_port(),), "--console"]
    read_end, write_end = os.pipe()
    try:
        process = subprocess.run(
            arguments,
            cwd=str(tmp_path),
            env=child_environment(),
            stdin=stdin if stdin is not None else read_end,
            capture_output=True,
            text=True,
            timeout=DEFAULT_TIMEOUT,
        )
    finally:
        os.close(read_end)
        os.close(write_end)
    assert process.returncode == 1
    assert process.stderr.strip().splitlines() == [
        "twistd wazzap: %s (see: twistd wazzap --help)" % (why,)
    ]
