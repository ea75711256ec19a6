"""
End-to-end: the real C{twistd -n wazzap --config FILE}, reloaded with
C{kill -HUP} while people are connected, and its log rotated with
C{kill -USR1}; a bad config file at start or at a reload.

Every wait is bounded; every server started is stopped when the test ends.
"""

import os
import signal
import subprocess

import pytest

from tests.support import (
    TIMEOUT,
    child_environment,
    free_port,
    LoginClient,
    run_wazzap,
    seed_accounts,
    twistd_path,
    until,
)
from wazzap.app.reload import NOW_ADMIN

pytestmark = pytest.mark.timeout(60)


def write_config(path, motd, **options):
    """
    A config file with a MOTD and C{options} (underscores written as dashes).
    """
    lines = ['motd = "%s"' % (motd,)]
    for name, value in options.items():
        lines.append("%s = %s" % (name.replace("_", "-"), value))
    path.write_text("\n".join(lines) + "\n")


def test_hangup_reloads_with_nobody_dropped(start_server, open_client, tmp_path):
    """
    After kill -HUP, everyone is still connected, and the new line limit,
    MOTD and admin are in force for those online and those who come.
    """
    motd, config = tmp_path / "motd.txt", tmp_path / "wazzap.toml"
    motd.write_text("Old news.\n")
    write_config(config, motd, max_line_bytes=4096)
    db = seed_accounts(tmp_path / "wazzap.sqlite3", ["alice"])
    server = start_server(db, "--config=%s" % (config,))
    alice = open_client(server, client_class=LoginClient)
    alice.log_in("alice")
    assert alice.read_until("[Server]") == "[Server] Old news."
    bob = open_client(server, "bob")
    assert bob.read_until("[Server]") == "[Server] Old news."
    alice.read_until("bob joined the chat")

    motd.write_text("New news.\n")
    write_config(config, motd, max_line_bytes=100, admin='["alice"]')
    server.signal(signal.SIGHUP)
    server.wait_for_log("reload: max-line-bytes changed from 4096 to 100")
    assert alice.read_until("admin") == "[Server] " + NOW_ADMIN

    bob.send("x" * 150)
    assert bob.read_until("longer") == "[Server] that line was longer than 100 bytes and was not sent"
    bob.send("still here")
    assert alice.read_until("still here") == "bob: still here"
    assert alice.ask("/pending", "waiting") == "[Server] nobody is waiting to join"
    carol = open_client(server, "carol")
    assert carol.read_until("[Server]") == "[Server] New news."
    assert server.process.poll() is None
    log = server.log()
    assert "reload: admin changed from [] to [alice]" in log
    assert "its contents changed" in log
    assert "bob left" not in log and "alice left" not in log


def test_bad_config_at_reload_is_refused_and_the_old_one_stays(start_server, open_client, tmp_path):
    """
    A reload of a bad file is one log line; the old limits stay, and a good
    file afterwards is taken; an option no reload applies is logged as
    needing a restart.
    """
    motd, config = tmp_path / "motd.txt", tmp_path / "wazzap.toml"
    motd.write_text("Hello.\n")
    write_config(config, motd, max_line_bytes=100)
    server = start_server("--config=%s" % (config,))
    bob = open_client(server, "bob")

    write_config(config, motd, max_line_bytes=10)
    server.signal(signal.SIGHUP)
    server.wait_for_log("reload refused, the running configuration stays")
    assert "max-line-bytes must be at least 64, not 10" in server.log()
    bob.send("x" * 150)
    assert "longer than 100 bytes" in bob.read_until("longer")

    write_config(config, motd, max_line_bytes=1000, session_history_days=30)
    server.signal(signal.SIGHUP)
    server.wait_for_log("reload: max-line-bytes changed from 100 to 1000")
    server.wait_for_log(
        "reload: session-history-days changed from 90 to 30: restart the server to put it in force"
    )
    bob.send("x" * 150)
    assert bob.ask("/me waves", "waves") == "* bob waves"
    assert server.process.poll() is None


def test_sigusr1_still_rotates_the_log(start_server, tmp_path):
    """kill -USR1 rotates twistd's log file, and the server goes on logging to the new one."""
    motd, config = tmp_path / "motd.txt", tmp_path / "wazzap.toml"
    motd.write_text("Hello.\n")
    write_config(config, motd)
    server = start_server("--config=%s" % (config,))
    rotated = server.log_path.with_name(server.log_path.name + ".1")
    server.signal(signal.SIGUSR1)
    assert until(rotated.exists, TIMEOUT)
    assert "listening on" in rotated.read_text()
    server.signal(signal.SIGHUP)
    server.wait_for_log("reload: no option changed")
    assert "reload" not in rotated.read_text()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("max-line-bytes = 1\n", "wazzap.toml: max-line-bytes must be at least 64, not 1"),
        ("colour = true\n", "wazzap.toml: unknown key 'colour'"),
        ('motd = "nowhere.txt"\n', "wazzap.toml: motd nowhere.txt: cannot read it: no such file"),
    ],
)
def test_bad_config_at_start_is_one_line_and_status_1(tmp_path, text, expected):
    """A bad key or value, or a missing MOTD, stops the start in one line with status 1."""
    config = tmp_path / "wazzap.toml"
    config.write_text(text)
    result = run_wazzap(tmp_path, "--config=%s" % (config,))
    assert result.returncode == 1, result
    output = (result.stdout + result.stderr).strip()
    assert "\n" not in output and expected in output, output


def test_daemon_reloads_on_hangup(tmp_path):
    """A daemonised server (no -n) reloads on kill -HUP too, and SIGTERM still stops it."""
    motd, config = tmp_path / "motd.txt", tmp_path / "wazzap.toml"
    motd.write_text("Hello.\n")
    write_config(config, motd, max_line_bytes=100)
    pid_file, log_file = tmp_path / "twistd.pid", tmp_path / "twistd.log"
    result = subprocess.run(
        [
            twistd_path(),
            "--pidfile=" + str(pid_file),
            "--logfile=" + str(log_file),
            "wazzap",
            "--db=" + str(tmp_path / "wazzap.sqlite3"),
            "--port=tcp:%d:interface=127.0.0.1" % (free_port(),),
            "--config=%s" % (config,),
        ],
        cwd=str(tmp_path),
        env=child_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )
    assert result.returncode == 0, result
    assert until(pid_file.exists, TIMEOUT)
    pid = int(pid_file.read_text())
    try:
        write_config(config, motd, max_line_bytes=200)
        os.kill(pid, signal.SIGHUP)
        assert until(lambda: "max-line-bytes changed from 100 to 200" in log_file.read_text(), TIMEOUT)
        os.kill(pid, signal.SIGTERM)
        assert until(lambda: not pid_file.exists(), TIMEOUT)
    finally:
        if pid_file.exists():
            os.kill(pid, signal.SIGKILL)
