"""
End-to-end: what an operator meets starting, running and stopping the real
C{twistd wazzap} (as a daemon too), and the client driven by a script.

Every wait is bounded; every daemon started is killed by its pid file when
the test ends.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import sys

import pytest

from tests.support import DEFAULT_TIMEOUT, TIMEOUT, child_environment, free_port, run_wazzap, until
from wazzap.persist.passwords import argon2_hasher
from wazzap.persist.store import Database


def _log(tmp_path):
    path = tmp_path / "twistd.log"
    return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def daemons(tmp_path):
    """
    The pid files of daemons a test starts; each still running at the end is killed.
    """
    pid_files = [tmp_path / "twistd.pid"]
    yield pid_files
    for pid_file in pid_files:
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            pass


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# Start-up


@pytest.mark.parametrize("daemon", [True, False], ids=["daemon", "foreground"])
def test_port_in_use_is_one_line_and_leaves_no_pid_file_or_traceback(tmp_path, daemons, daemon):
    """
    A port in use ends the start with one line on stderr and status 1, in daemon mode as in the
    foreground, leaving no pid file and no traceback in twistd.log.
    """
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_wazzap(tmp_path, "--port=tcp:%d:interface=127.0.0.1" % (port,), daemon=daemon)
    assert result.returncode == 1, result
    assert result.stderr == (
        "wazzap: cannot listen on tcp:%d:interface=127.0.0.1: address already in use\n" % (port,)
    )
    assert result.stdout == ""
    assert not (tmp_path / "twistd.pid").exists()
    assert "Traceback" not in _log(tmp_path)


def test_daemon_serves_on_the_ports_it_listened_on_before_forking(tmp_path, daemons):
    """
    As a daemon, the server serves on its port, and SIGTERM stops it and removes its pid file.
    """
    port = free_port()
    result = run_wazzap(tmp_path, "--port=tcp:%d:interface=127.0.0.1" % (port,), daemon=True)
    assert (result.returncode, result.stderr) == (0, "")
    pid_file = tmp_path / "twistd.pid"
    assert until(pid_file.exists, TIMEOUT)
    pid = int(pid_file.read_text())
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as chat:
        chat.sendall(b"alice\n")
        received = b""
        while b"Welcome, alice!" not in received:
            data = chat.recv(4096)
            assert data, received
            received += data
    os.kill(pid, signal.SIGTERM)
    assert until(lambda: not _running(pid), TIMEOUT)
    assert not pid_file.exists()
    assert "Traceback" not in _log(tmp_path)


def test_log_names_the_bound_ports_and_the_database(start_server, tmp_path):
    """
    The log gives the port --port 0 got, writes IPv6 addresses in brackets, and names the
    database file it created.
    """
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        pytest.skip("no IPv6 loopback: %s" % (e,))
    server = start_server("--port=tcp:0:interface=127.0.0.1", r"--port=tcp6:0:interface=\:\:1")
    # Up once the first port listens: the log may not hold the others yet.
    server.wait_for_log("listening on [::1]:")
    log = server.log()
    assert "created a new database %s" % (server.db_path,) in log
    assert "listening on 127.0.0.1:%d" % (server.port,) in log
    [bound] = [
        int(line.rsplit(":", 1)[1])
        for line in log.splitlines()
        if "listening on 127.0.0.1:" in line and not line.endswith(":%d" % (server.port,))
    ]
    assert bound != 0
    socket.create_connection(("127.0.0.1", bound), timeout=TIMEOUT).close()
    assert "listening on [::1]:" in log
    assert "listening on [::1]:0" not in log


def test_empty_database_file_is_refused(tmp_path):
    """
    An existing empty database file stops the start with one line and status 1, and stays empty.
    """
    (tmp_path / "wazzap.sqlite3").write_bytes(b"")
    result = run_wazzap(tmp_path, "--port=tcp:0:interface=127.0.0.1")
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert lines == [
        "wazzap: database %s is an empty file: restore it from a backup, "
        "or delete it to start a new database" % (tmp_path / "wazzap.sqlite3",)
    ]
    assert (tmp_path / "wazzap.sqlite3").stat().st_size == 0


# Shutting down


def test_sigterm_during_registrations_loses_none_and_logs_no_traceback(start_server, open_client):
    """
    SIGTERM while registrations are being hashed lets them be written, without a traceback or a
    "database is closed" in the log.
    """
    server = start_server()
    nicknames = ["user%d" % (i,) for i in range(8)]
    users = [open_client(server, nickname) for nickname in nicknames]
    for user in users:
        user.send("/register correct-horse-battery")
    # The hashing threads are busy with them; some are still queued.
    server.signal(signal.SIGTERM)
    assert server.process.wait(TIMEOUT * 2) is not None
    log = server.log()
    assert "Traceback" not in log and "is closed" not in log and "failed" not in log, log
    registered = {line.split()[-2] for line in log.splitlines() if line.endswith(" registered")}
    with sqlite3.connect(str(server.db_path)) as database:
        accounts = {row[0] for row in database.execute("SELECT nickname FROM accounts")}
    assert registered <= accounts


# The client from a script


def test_piped_line_is_delivered_before_the_client_leaves(start_server, open_client, tmp_path):
    """
    echo hello | wazzap-client --nick bot HOST PORT delivers hello after the password check,
    then leaves, with no colours in its piped output.
    """
    with Database.open(tmp_path / "wazzap.sqlite3") as database:
        database.create_account("bot", argon2_hasher().hash("bot-password"))
    server = start_server()
    alice = open_client(server, "alice")
    result = subprocess.run(
        [sys.executable, "-m", "wazzap.client", "--nick", "bot", "127.0.0.1", str(server.port)],
        env=dict(child_environment(), WAZZAP_PASSWORD="bot-password"),
        input=b"hello\n",
        capture_output=True,
        timeout=DEFAULT_TIMEOUT,
    )
    assert alice.read_until("bot: hello") == "bot: hello"
    alice.read_until("bot left")
    assert result.returncode == 0, result
    assert b"Welcome, bot!" in result.stdout
    assert b"\x1b" not in result.stdout
