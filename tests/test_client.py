"""
Tests for wazzap.client: the protocols over StringTransport with a Clock, and
the real client as a subprocess against the real server (or, for password
prompts the server does not send yet, a tiny scripted one).
"""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from prompt_toolkit.document import Document
from twisted.internet import defer, error
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.support import (
    DEFAULT_TIMEOUT,
    REPO,
    child_environment,
    free_port,
    interruptible,
    strip_colors,
)
from wazzap.client import attention, cli, interactive, pipe, tls
from wazzap.client.cli import describe_connect_error, parse_arguments
from wazzap.client.connection import (
    CLOSE_GRACE_SECONDS,
    QUIT_GRACE_SECONDS,
    ChatClient,
    is_password_prompt,
)
from wazzap.client.pipe import HiddenInput, Terminal
from wazzap.client.roster import ASK_AGAIN_SECONDS, QUESTIONS, Roster
from wazzap.text import strip_styles

YELLOW = "\x1b[1m\x1b[33m"
RESET = "\x1b[0m"
NICKNAME_PROMPT = (
    YELLOW + "[Server]" + RESET + " Choose a nickname (1 to 16 letters, digits, _ or -):"
)
PASSWORD_PROMPT = YELLOW + "[Server]" + RESET + " Password:"
WELCOME = YELLOW + "[Server]" + RESET + " Welcome, carol! You are the first one here."


class Screen:
    """
    Collects what the client shows, instead of a terminal.
    """

    def __init__(self):
        self.lines = []

    def show(self, text):
        self.lines.append(text)


class FakeHiddenInput:
    """
    Records whether echo is currently hidden.
    """

    def __init__(self):
        self.hidden = False
        self.hides = 0

    def hide(self):
        self.hidden = True
        self.hides += 1

    def restore(self):
        self.hidden = False


def connected_client(clock=None, **options):
    """
    A L{ChatClient} connected to a L{StringTransport}, with its screen,
    hidden input and clock (a new L{Clock} unless given) at hand.
    """
    screen, hidden, clock = Screen(), FakeHiddenInput(), clock or Clock()
    client = ChatClient(screen, hidden, clock, **options)
    transport = StringTransport()
    client.makeConnection(transport)
    return client, transport, screen, hidden, clock


def receive(client, *lines):
    client.dataReceived(b"".join(line.encode("utf-8") + b"\r\n" for line in lines))


def sent(transport):
    """
    The lines written to the server so far, consumed.
    """
    data = transport.value().decode("utf-8")
    transport.clear()
    return data.split("\n")[:-1]


def lose(client, transport, reason=error.ConnectionDone):
    transport.loseConnection()
    client.connectionLost(Failure(reason()))


def exit_status(client):
    results = []
    client.finished.addCallback(results.append)
    return results[0] if results else None


# Prompts and answers


def test_nick_answers_the_nickname_prompt_once():
    """
    With a nickname, the first nickname prompt is answered with it and a second one is left to
    the user.
    """
    client, transport, screen, _, _ = connected_client(nickname="carol")
    receive(client, NICKNAME_PROMPT)
    assert sent(transport) == ["carol"]
    receive(client, "[Server] Sorry, carol is taken.", NICKNAME_PROMPT)
    assert sent(transport) == []
    assert screen.lines[0] == NICKNAME_PROMPT


def test_without_nick_the_prompt_is_only_shown():
    """
    Without a nickname the prompt is shown, colours and all, and nothing is sent.
    """
    client, transport, screen, _, _ = connected_client()
    receive(client, NICKNAME_PROMPT)
    assert sent(transport) == []
    assert screen.lines == [NICKNAME_PROMPT]


def test_password_prompt_detection():
    """
    A server line ending in "password:" is a prompt whatever its case and colours; a user's
    line is not.
    """
    assert is_password_prompt(strip_styles(PASSWORD_PROMPT))
    assert is_password_prompt("[Server] Choose a PASSWORD: ")
    assert is_password_prompt("[Server] Password for carol (new account) password:")
    assert not is_password_prompt("bob: my password:")
    assert not is_password_prompt("[Server] password: wrong, try again")
    assert not is_password_prompt("[Server] eve set the topic of #lobby: your password:")
    assert not is_password_prompt("[Server]   1. to bob, 11:43 UTC: my password:")


def test_password_prompt_hides_the_next_typed_line_only():
    """
    After a password prompt echo is off for one typed line, which is sent, and back on after it.
    """
    client, transport, _, hidden, _ = connected_client()
    receive(client, PASSWORD_PROMPT)
    assert hidden.hidden
    client.send_typed("s3cret")
    assert not hidden.hidden
    client.send_typed("hello")
    assert sent(transport) == ["s3cret", "hello"]
    assert hidden.hides == 1


def test_environment_password_answers_the_first_prompt():
    """
    A given password answers the first password prompt without hiding or showing it, and a
    second prompt is the user's.
    """
    client, transport, screen, hidden, _ = connected_client(nickname="carol", password="s3cret")
    receive(client, NICKNAME_PROMPT, PASSWORD_PROMPT)
    assert sent(transport) == ["carol", "s3cret"]
    assert not hidden.hidden
    receive(client, "[Server] Wrong password.", PASSWORD_PROMPT)
    assert sent(transport) == []
    assert hidden.hidden
    assert not any("s3cret" in line for line in screen.lines)


def test_environment_password_is_never_sent_once_joined():
    """
    A password prompt after joining (or a notice that looks like one) gets nothing from the
    environment: the password is for logging in, never a line in the chat.
    """
    client, transport, _, _, _ = connected_client(nickname="carol", password="s3cret")
    receive(client, NICKNAME_PROMPT, WELCOME, PASSWORD_PROMPT)
    assert "s3cret" not in sent(transport)


def test_echo_is_restored_when_the_connection_ends_at_a_password_prompt():
    """
    Losing the connection while a password is being typed turns echo back on.
    """
    client, transport, _, hidden, _ = connected_client()
    receive(client, PASSWORD_PROMPT)
    lose(client, transport, error.ConnectionLost)
    assert not hidden.hidden


# Colours


def test_colors_are_shown_as_they_come():
    """
    By default the server's lines are shown unchanged, ANSI colours included.
    """
    client, transport, screen, _, _ = connected_client(nickname="carol")
    receive(client, NICKNAME_PROMPT, WELCOME)
    assert screen.lines == [NICKNAME_PROMPT, WELCOME]
    assert sent(transport) == ["carol"]


def test_no_color_strips_and_asks_for_plain_text_after_joining():
    """
    Without colours the lines are shown stripped, and "/colors off" is sent once joined.
    """
    client, transport, screen, _, _ = connected_client(nickname="carol", colors=False)
    receive(client, NICKNAME_PROMPT)
    assert sent(transport) == ["carol"]
    receive(client, WELCOME, "\x1b[31mbob\x1b[0m: hi")
    assert sent(transport) == ["/colors off"]
    assert screen.lines == [strip_styles(NICKNAME_PROMPT), strip_styles(WELCOME), "bob: hi"]
    assert not any("\x1b" in line for line in screen.lines)


def test_welcome_to_the_server_is_not_joining():
    """
    The greeting before the nickname prompt does not count as having joined.
    """
    client, transport, _, _, _ = connected_client(colors=False)
    receive(client, "[Server] Welcome to wazzap, the terminal chat.")
    assert not client.joined
    assert sent(transport) == []


# Leaving


def test_server_going_away_is_a_disconnection():
    """
    A connection the server closed shows "Disconnected from server" and ends with status 1.
    """
    client, transport, screen, _, _ = connected_client()
    lose(client, transport)
    assert screen.lines == ["Disconnected from server"]
    assert exit_status(client) == 1


def test_typed_quit_when_joined_goes_through_the_server():
    """
    A typed /quit reason is sent as typed, and the server closing then is a clean exit.
    """
    client, transport, screen, _, _ = connected_client(nickname="carol")
    receive(client, NICKNAME_PROMPT, WELCOME)
    sent(transport)
    client.send_typed("/QUIT off to lunch")
    assert sent(transport) == ["/QUIT off to lunch"]
    receive(client, "[Server] Goodbye!")
    lose(client, transport)
    assert "Disconnected from server" not in screen.lines
    assert exit_status(client) == 0


def test_end_of_input_when_joined_sends_quit_and_closes_if_the_server_does_not():
    """
    Ctrl+D once joined sends /quit, and closes the connection itself if the server has not
    after a grace period.
    """
    client, transport, _, _, clock = connected_client(nickname="carol")
    receive(client, NICKNAME_PROMPT, WELCOME)
    sent(transport)
    client.leave()
    assert sent(transport) == ["/quit"]
    assert not transport.disconnecting
    clock.advance(QUIT_GRACE_SECONDS)
    assert transport.disconnecting
    lose(client, transport)
    assert exit_status(client) == 0
    assert not clock.getDelayedCalls()


def test_end_of_input_before_joining_closes_with_goodbye():
    """
    Ctrl+D at the nickname prompt (where /quit would be taken for a nickname) just closes,
    saying goodbye.
    """
    client, transport, screen, _, _ = connected_client()
    receive(client, NICKNAME_PROMPT)
    client.leave()
    assert sent(transport) == []
    assert transport.disconnecting
    assert screen.lines[-1] == "Goodbye!"
    lose(client, transport)
    assert exit_status(client) == 0


def test_interrupt_closes_at_once():
    """
    Ctrl+C shows "Closing connection", closes without waiting for the server, and ends with
    status 0.
    """
    client, transport, screen, _, clock = connected_client(nickname="carol")
    receive(client, NICKNAME_PROMPT, WELCOME)
    client.interrupt()
    assert transport.disconnecting
    assert screen.lines[-1] == "Closing connection"
    lose(client, transport)
    assert exit_status(client) == 0
    assert not clock.getDelayedCalls()


def test_a_close_that_hangs_is_cut_off():
    """
    A connection that has not closed within the grace period is aborted.
    """
    client, transport, _, _, clock = connected_client()
    client.interrupt()
    clock.advance(CLOSE_GRACE_SECONDS)
    assert transport.disconnected


def test_nothing_is_sent_after_the_connection_is_lost():
    """
    Lines typed after the server went away are dropped rather than written to a closed transport.
    """
    client, transport, _, _, _ = connected_client()
    lose(client, transport)
    transport.clear()
    client.send_typed("anyone?")
    assert transport.value() == b""


# Fed by a script


def test_script_lines_wait_until_joined():
    """
    A script's lines read before the welcome are sent after it, in order, not taken as a nickname.
    """
    client, transport, _, _, _ = connected_client(nickname="bot", script=True)
    client.send_typed("hello")
    client.send_typed("world")
    assert sent(transport) == []
    receive(client, NICKNAME_PROMPT)
    assert sent(transport) == ["bot"]
    receive(client, WELCOME.replace("carol", "bot"))
    assert sent(transport) == ["hello", "world"]


def test_script_end_of_input_before_joining_waits_for_its_lines_to_be_sent():
    """
    The end of a script's input before joining leaves only after its lines went out, then /quit.
    """
    client, transport, screen, _, _ = connected_client(nickname="bot", script=True)
    client.send_typed("hello")
    client.leave()
    assert not transport.disconnecting
    receive(client, NICKNAME_PROMPT, WELCOME.replace("carol", "bot"))
    assert sent(transport) == ["bot", "hello", "/quit"]
    assert "Goodbye!" not in screen.lines


def test_script_answers_prompts_with_its_lines():
    """
    Without --nick or a password, a script's first lines answer the prompts and the rest wait.
    """
    client, transport, _, hidden, _ = connected_client(script=True)
    client.send_typed("carol")
    client.send_typed("s3cret")
    client.send_typed("hello")
    receive(client, NICKNAME_PROMPT)
    assert sent(transport) == ["carol"]
    receive(client, PASSWORD_PROMPT)
    assert sent(transport) == ["s3cret"]
    assert not hidden.hidden
    receive(client, WELCOME)
    assert sent(transport) == ["hello"]


def test_script_with_a_refused_nick_gives_up():
    """
    A script whose --nick is refused disconnects (status 1) rather than send its lines as names.
    """
    client, transport, _, _, _ = connected_client(nickname="bot", script=True)
    client.send_typed("hello")
    receive(client, NICKNAME_PROMPT)
    sent(transport)
    receive(client, "[Server] Sorry, bot is taken.", NICKNAME_PROMPT)
    assert sent(transport) == []
    assert transport.disconnecting
    lose(client, transport)
    assert exit_status(client) == 1


def test_script_end_of_input_with_a_prompt_left_unanswered_closes():
    """
    A script whose input ends before it can answer a prompt says goodbye and closes.
    """
    client, transport, screen, _, _ = connected_client(script=True)
    client.send_typed("carol")
    client.leave()
    receive(client, NICKNAME_PROMPT)
    assert sent(transport) == ["carol"]
    assert not transport.disconnecting
    receive(client, PASSWORD_PROMPT)
    assert sent(transport) == []
    assert transport.disconnecting
    assert screen.lines[-1] == "Goodbye!"


def test_a_last_line_without_a_line_ending_is_sent():
    """
    At the end of input, a last line without a newline is sent like any other.
    """
    terminal, _, client, client_transport = connected_terminal()
    receive(client, NICKNAME_PROMPT, WELCOME)
    terminal.dataReceived(b"carol\nbye")
    terminal.readConnectionLost()
    assert sent(client_transport) == ["carol", "bye", "/quit"]


@pytest.mark.parametrize(
    "is_terminal, environ, expected",
    [(True, {}, True), (False, {}, False), (True, {"NO_COLOR": "1"}, False)],
)
def test_colours_only_on_a_terminal_without_no_color(is_terminal, environ, expected):
    """
    Colours are on for a terminal and off for a pipe or a file, or when NO_COLOR is set.
    """

    class Output:
        def isatty(self):
            return is_terminal

    assert cli.wants_colors(Output(), environ) is expected


# The terminal side


def connected_terminal():
    screen, hidden, clock = Screen(), FakeHiddenInput(), Clock()
    client = ChatClient(screen, hidden, clock)
    client_transport = StringTransport()
    client.makeConnection(client_transport)
    terminal = Terminal(encoding="utf-8")
    terminal.client = client
    terminal_transport = StringTransport()
    terminal.makeConnection(terminal_transport)
    return terminal, terminal_transport, client, client_transport


def test_typed_lines_reach_the_server_without_carriage_returns():
    """
    Lines typed on a terminal that ends them with CR LF are sent with a bare LF.
    """
    terminal, _, _, client_transport = connected_terminal()
    terminal.dataReceived("héllo\r\nbye\n".encode("utf-8"))
    assert sent(client_transport) == ["héllo", "bye"]


def test_end_of_input_leaves():
    """
    The end of standard input asks the connection to leave.
    """
    terminal, _, client, client_transport = connected_terminal()
    terminal.readConnectionLost()
    assert client_transport.disconnecting


def test_an_overlong_typed_line_is_refused_not_fatal():
    """
    A typed line beyond the limit is reported and not sent, and the terminal stays open.
    """
    terminal, terminal_transport, _, client_transport = connected_terminal()
    terminal.dataReceived(b"x" * (Terminal.MAX_LENGTH + 1))
    assert b"too long" in terminal_transport.value()
    assert not terminal_transport.disconnecting
    assert client_transport.value() == b""


def test_terminal_shows_lines_and_closes():
    """
    Shown lines are written with a newline, and close fires once the output is closed.
    """
    terminal, terminal_transport, _, _ = connected_terminal()
    terminal.show("hi")
    assert terminal_transport.value() == b"hi\n"
    closed = terminal.close()
    assert terminal_transport.disconnecting
    terminal.connectionLost(Failure(error.ConnectionDone()))
    assert closed.called


@pytest.mark.skipif(pipe.termios is None, reason="no termios here")
def test_hidden_input_turns_echo_off_and_back_on():
    """
    On a real pseudo-terminal, echo goes off for hiding and comes back on restoring.
    """
    import termios

    controller, terminal = os.openpty()
    try:
        hidden = HiddenInput(terminal)
        hidden.hide()
        assert not termios.tcgetattr(terminal)[3] & termios.ECHO
        hidden.restore()
        hidden.restore()
        assert termios.tcgetattr(terminal)[3] & termios.ECHO
    finally:
        os.close(controller)
        os.close(terminal)


def test_hidden_input_leaves_a_pipe_alone():
    """
    Hiding input that is not a terminal does nothing, and restoring it does not fail.
    """
    read_end, write_end = os.pipe()
    try:
        hidden = HiddenInput(read_end)
        hidden.hide()
        hidden.restore()
    finally:
        os.close(read_end)
        os.close(write_end)


# The command line


def test_arguments_default_to_localhost_5555():
    """
    Without arguments the client goes to localhost:5555 with colours and no nickname.
    """
    options = parse_arguments([])
    assert (options.host, options.port, options.nick, options.colors) == (
        "localhost", 5555, None, True,
    )


def test_arguments_given():
    """
    Host, port, --nick and --no-color are all understood.
    """
    options = parse_arguments(["chat.example", "6000", "--nick", "carol", "--no-color"])
    assert (options.host, options.port, options.nick, options.colors) == (
        "chat.example", 6000, "carol", False,
    )


@pytest.mark.parametrize("argv", [["localhost", "abc"], ["localhost", "0"], ["--password", "x"]])
def test_bad_arguments_exit_2(argv, capsys):
    """
    A bad port or an unknown option prints the usage and exits with status 2.
    """
    with pytest.raises(SystemExit) as exited:
        parse_arguments(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_connect_errors_are_described_in_words():
    """
    The usual reasons for not connecting become a few plain words.
    """
    assert describe_connect_error(error.ConnectionRefusedError()) == "connection refused"
    assert describe_connect_error(error.DNSLookupError("x")) == "unknown host"
    assert describe_connect_error(error.TimeoutError()) == "timed out"


def test_console_scripts_resolve_to_the_mains():
    """
    setup.cfg's console scripts wazzap-client and wazzap-admin name callables that exist.
    """
    import configparser
    import importlib

    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    scripts = dict(
        (part.strip() for part in line.split("=", 1))
        for line in config["options.entry_points"]["console_scripts"].strip().splitlines()
    )
    assert sorted(scripts) == ["wazzap-admin", "wazzap-client"]
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


@pytest.mark.parametrize(
    "argv0, expected",
    [
        ("/home/u/.local/bin/wazzap-client", "wazzap-client"),
        ("/x/wazzap/client.py", "python -m wazzap.client"),
    ],
)
def test_program_name_is_how_the_user_ran_it(monkeypatch, argv0, expected):
    """
    Usage and errors name the console script when that ran, else python -m.
    """
    monkeypatch.setattr(sys, "argv", [argv0])
    assert cli.program_name("wazzap-client", "wazzap.client") == expected


def test_module_help_runs():
    """
    python -m wazzap.client --help prints the usage and exits 0.
    """
    result = subprocess.run(
        [sys.executable, "-m", "wazzap.client", "--help"],
        env=child_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m wazzap.client")


# End to end: the real client as a subprocess


class ClientProcess:
    """
    C{python -m wazzap.client} with pipes; a thread reads its output into a
    queue so every wait has a deadline.
    """

    def __init__(self, *arguments, env=None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wazzap.client", *arguments],
            env=env or child_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=interruptible,
        )
        self.lines = queue.Queue()
        self.seen = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.process.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.lines.put(None)

    def type(self, line):
        self.process.stdin.write(line.encode("utf-8") + b"\n")
        self.process.stdin.flush()

    def read_until(self, needle, timeout=DEFAULT_TIMEOUT):
        """
        The first unread output line containing C{needle}, colours stripped.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise AssertionError("no %r in the client's output: %r" % (needle, self.seen))
            if line is None:
                self.lines.put(None)
                raise AssertionError("the client ended before %r: %r" % (needle, self.seen))
            self.seen.append(line)
            if needle in strip_colors(line):
                return strip_colors(line)

    def finish(self, timeout=DEFAULT_TIMEOUT):
        """
        Wait for the client to exit; return its status, every output line and its stderr.
        """
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the client did not exit: %r" % (self.seen,))
        self._reader.join(timeout)
        while True:
            line = self.lines.get_nowait() if not self.lines.empty() else None
            if line is None:
                break
            self.seen.append(line)
        stderr = self.process.stderr.read().decode("utf-8", "replace")
        return status, self.seen, stderr

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(DEFAULT_TIMEOUT)


@pytest.fixture
def run_client():
    """
    Start real clients; any still running when the test ends is killed.
    """
    clients = []

    def start(*arguments, env=None):
        started = ClientProcess(*arguments, env=env)
        clients.append(started)
        return started

    yield start
    for started in clients:
        started.kill()
        for stream in (started.process.stdin, started.process.stdout, started.process.stderr):
            stream.close()


def joined_client(run_client, server, nickname="carol", *options, env=None):
    carol = run_client("127.0.0.1", str(server.port), "--nick", nickname, *options, env=env)
    carol.read_until("Welcome, %s!" % (nickname,))
    return carol


def test_chatting_both_ways(server, connect, run_client):
    """
    A user of the client and a raw nc-style user hear each other.
    """
    alice = connect("alice")
    carol = joined_client(run_client, server)
    alice.read_until("carol joined the chat")
    carol.type("hello alice")
    assert alice.read_until("hello alice") == "carol: hello alice"
    alice.send("hi carol")
    assert carol.read_until("hi carol") == "alice: hi carol"


def test_nickname_typed_at_the_prompt(server, run_client):
    """
    Without --nick the user joins by typing a nickname at the server's prompt.
    """
    carol = run_client("127.0.0.1", str(server.port))
    carol.read_until("Choose a nickname")
    carol.type("carol")
    assert carol.read_until("Welcome, carol!").startswith("[Server] Welcome, carol!")


def test_no_color_gets_plain_text(server, connect, run_client):
    """
    With --no-color the server is asked for plain text and no escape sequence is printed.
    """
    alice = connect("alice")
    carol = joined_client(run_client, server, "carol", "--no-color")
    carol.read_until("colours are off")
    alice.send("plain please")
    carol.read_until("plain please")
    carol.process.stdin.close()
    status, lines, _ = carol.finish()
    assert status == 0
    assert not any("\x1b" in line for line in lines)


def test_refused_connection(run_client):
    """
    Nothing listening gives one clear line on stderr, no traceback, and status 1.
    """
    port = free_port()
    status, lines, stderr = run_client("127.0.0.1", str(port), "--nick", "carol").finish()
    assert status == 1
    assert stderr.splitlines() == [
        "wazzap: cannot connect to 127.0.0.1:%d: connection refused" % (port,)
    ]
    assert lines == []


def test_usage_error(run_client):
    """
    A port that is not a number prints the usage and exits with status 2, without a traceback.
    """
    status, _, stderr = run_client("127.0.0.1", "fifty").finish()
    assert status == 2
    assert "usage:" in stderr
    assert "Traceback" not in stderr


def test_end_of_input_quits(server, connect, run_client):
    """
    Ctrl+D (stdin closed) leaves through /quit, shows the goodbye, and exits 0.
    """
    alice = connect("alice")
    carol = joined_client(run_client, server)
    carol.process.stdin.close()
    status, lines, stderr = carol.finish()
    assert status == 0
    assert "[Server] Goodbye!" in [strip_colors(line) for line in lines]
    assert "Traceback" not in stderr
    assert alice.read_until("carol left").endswith("(quit)")


def test_interrupt_closes(server, connect, run_client):
    """
    Ctrl+C (SIGINT) prints "Closing connection", closes the connection and exits 0.
    """
    alice = connect("alice")
    carol = joined_client(run_client, server)
    carol.process.send_signal(signal.SIGINT)
    status, lines, stderr = carol.finish()
    assert status == 0
    assert "Closing connection" in lines
    assert "Traceback" not in stderr
    alice.read_until("carol left")


def test_server_going_away(server, run_client):
    """
    A server stopped with SIGTERM leaves the client saying "Disconnected from server", with
    status 1.
    """
    carol = joined_client(run_client, server)
    server.stop()
    status, lines, stderr = carol.finish()
    assert status == 1
    assert lines[-1] == "Disconnected from server"
    assert "Traceback" not in stderr


def test_environment_password_is_not_shown_by_the_real_server(server, run_client):
    """
    WAZZAP_PASSWORD never appears in the client's output when joining the real server.
    """
    env = dict(child_environment(), WAZZAP_PASSWORD="hunter2-secret")
    carol = joined_client(run_client, server, env=env)
    carol.type("/who")
    carol.read_until("carol")
    carol.process.stdin.close()
    status, lines, stderr = carol.finish()
    assert status == 0
    assert "hunter2-secret" not in "\n".join(lines) + stderr


class PasswordServer:
    """
    A scripted server for one connection that asks for a nickname and a
    password, as servers with accounts do, and records the answers.
    """

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(DEFAULT_TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.answers = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection, _ = self.listener.accept()
        with connection, connection.makefile("rwb") as peer:
            connection.settimeout(DEFAULT_TIMEOUT)
            for prompt in (NICKNAME_PROMPT, PASSWORD_PROMPT):
                peer.write(prompt.encode("utf-8") + b"\r\n")
                peer.flush()
                self.answers.append(peer.readline().decode("utf-8").rstrip("\n"))
            peer.write(WELCOME.encode("utf-8") + b"\r\n")
            peer.flush()
            while not self.answers or self.answers[-1] not in ("/quit", ""):
                self.answers.append(peer.readline().decode("utf-8").rstrip("\n"))
            peer.write(b"[Server] Goodbye!\r\n")

    def close(self):
        self.thread.join(DEFAULT_TIMEOUT)
        self.listener.close()


def test_environment_password_answers_a_password_prompt_unseen(run_client):
    """
    With --nick, WAZZAP_PASSWORD answers the password prompt and is never printed.
    """
    fake = PasswordServer()
    try:
        env = dict(child_environment(), WAZZAP_PASSWORD="hunter2-secret")
        carol = run_client("127.0.0.1", str(fake.port), "--nick", "carol", env=env)
        carol.read_until("Welcome, carol!")
        carol.process.stdin.close()
        status, lines, stderr = carol.finish()
    finally:
        fake.close()
    # Its output is a pipe: the client asks for plain text once joined.
    assert fake.answers == ["carol", "hunter2-secret", "/colors off", "/quit"]
    assert status == 0
    assert "Password:" in strip_colors("\n".join(lines))
    assert "hunter2-secret" not in "\n".join(lines) + stderr


def test_registered_nickname_logs_in_with_the_environment_password(server, run_client):
    """
    A password typed after /register is sent, and WAZZAP_PASSWORD later logs in to that account
    unseen.
    """
    carol = joined_client(run_client, server)
    carol.type("/register")
    carol.read_until("Password:")
    carol.type("hunter2-secret")
    carol.read_until("Repeat the password:")
    carol.type("hunter2-secret")
    carol.read_until("registered: from now on carol needs this password")
    carol.process.stdin.close()
    assert carol.finish()[0] == 0

    env = dict(child_environment(), WAZZAP_PASSWORD="hunter2-secret")
    again = run_client("127.0.0.1", str(server.port), "--nick", "carol", env=env)
    again.read_until("carol is registered. Password:")
    again.read_until("Welcome, carol!")
    again.process.stdin.close()
    status, lines, stderr = again.finish()
    assert status == 0
    assert "hunter2-secret" not in "\n".join(lines) + stderr


# The interactive client's pieces, without a terminal

HELP_ANSWER = [
    "[Server] Commands (type /help COMMAND for more):",
    "[Server]   /join #ROOM -- join a room, creating it if there is none, and talk there.",
    "[Server]   /quit [REASON] -- leave the chat (also /leave, /exit).",
    "[Server]   @NICK TEXT -- a private message to NICK",
    "[Server] Anything else goes to everyone in the room.",
]
ROOMS_ANSWER = [
    "[Server] 3 rooms:",
    "[Server]   #lobby (3)",
    "[Server]   #art (1)",
    "[Server]   #maths (0) [locked]: sums",
]
WHO_ANSWER = "[Server] 3 online: alice (#lobby, #art), bob, carol"


def joined_roster():
    roster = Roster(Clock())
    assert not roster.hear("[Server] Welcome, carol! You are the first one here.")
    return roster


def test_roster_hides_only_the_answers_to_its_own_questions():
    """
    The first /who, /rooms and /help answers after asking are hidden and learnt; the same
    answers again (the user asked) are shown and learnt too.
    """
    roster = joined_roster()
    assert roster.ask() == list(QUESTIONS)
    answers = [WHO_ANSWER] + ROOMS_ANSWER + HELP_ANSWER
    assert [roster.hear(line) for line in answers] == [True] * len(answers)
    assert roster.nicknames == ["alice", "bob"]
    assert roster.rooms == ["#art", "#lobby", "#maths"]
    assert roster.commands == ["exit", "join", "leave", "quit"]
    assert [roster.hear(line) for line in answers] == [False] * len(answers)


def test_roster_shows_other_lines_read_amid_an_answer():
    """
    A line someone says in the middle of a hidden /rooms answer is shown, not swallowed.
    """
    roster = joined_roster()
    roster.ask()
    roster.hear(WHO_ANSWER)
    assert roster.hear(ROOMS_ANSWER[0])
    assert not roster.hear("dave: hi")
    assert [roster.hear(line) for line in ROOMS_ANSWER[1:]] == [True] * 3
    assert not roster.hear("[Server]   #more (9)")
    assert "dave" in roster.nicknames


def test_roster_follows_joins_leaves_renames_and_speakers():
    """
    Joins, leaves, renames and everyone who speaks keep the nicknames current.
    """
    roster = joined_roster()
    for line in (
        "[Server] alice joined the chat",
        "[Server] bob joined the chat",
        "[#art] [Server] dave joined #art",
        "erin: hello",
        "[#art] * frank waves",
        "[PM from gina] psst",
        "[Server] bob left the chat (quit)",
        "[Server] erin is now known as erin2",
        "[Server] alice left #art",
    ):
        assert not roster.hear(line)
    assert roster.nicknames == ["alice", "dave", "erin2", "frank", "gina"]
    assert "#art" in roster.rooms


def test_roster_follows_the_users_own_nickname_and_room():
    """
    The user's own rename and the room they talk in are followed, and each change is told.
    """
    changes = []
    roster = Roster(Clock(), on_change=lambda: changes.append((roster.me, roster.room)))
    roster.hear("[Server] Welcome, carol! You are the first one here.")
    roster.hear("[Server] you joined #maths. You are alone here.")
    roster.hear("[Server] carol is now known as Caz")
    roster.hear("[Server] you left #maths; you are talking in #lobby")
    roster.hear("[Server] you are talking in #art")
    assert changes == [
        ("carol", "#lobby"), ("carol", "#maths"), ("Caz", "#maths"), ("Caz", "#lobby"),
        ("Caz", "#art"),
    ]
    assert roster.nicknames == []


def test_roster_follows_the_rooms_a_returning_user_is_back_in():
    """
    A registered user's login puts them back in their rooms: the prompt shows the one they
    talk in, and completion knows them all.
    """
    changes = []
    roster = Roster(Clock(), on_change=lambda: changes.append(roster.room))
    roster.hear("[Server] Welcome, bob! Also here: alice.")
    roster.hear("[Server] you are back in #art, #maths; you talk in #art")
    assert changes == ["#lobby", "#art"]
    assert roster.rooms == ["#art", "#lobby", "#maths"]


def test_roster_is_not_fooled_by_what_users_type():
    """
    Words in someone's line that look like a notice teach nothing.
    """
    roster = joined_roster()
    roster.hear("[Server] alice joined the chat")
    roster.hear("mallory: [Server] 1 online: mallory")
    roster.hear("[Server] bob left the chat ([Server] alice left the chat)")
    assert roster.nicknames == ["alice", "mallory"]


def test_a_client_with_a_roster_asks_once_joined_and_hides_the_answers():
    """
    Once welcomed, an interactive client sends the roster's questions and does not show
    their answers.
    """
    roster = Roster(Clock())
    client, transport, screen, _, _ = connected_client(nickname="carol", roster=roster)
    receive(client, NICKNAME_PROMPT, WELCOME)
    assert sent(transport) == ["carol"] + list(QUESTIONS)
    receive(client, WHO_ANSWER, "bob: hi")
    assert [strip_styles(line) for line in screen.lines[-2:]] == [strip_styles(WELCOME), "bob: hi"]
    assert roster.me == "carol"


def test_the_roster_asks_again_only_after_public_lines_now_and_then():
    """
    /who and /rooms go again after a public line once a minute has passed since the last
    asking, never after a command, nor after the public line that follows a command.
    """
    clock = Clock()
    client, transport, _, _, _ = connected_client(clock, nickname="carol", roster=Roster(clock))
    receive(client, NICKNAME_PROMPT, WELCOME)
    sent(transport)
    client.send_typed("hello")
    assert sent(transport) == ["hello"]
    clock.advance(ASK_AGAIN_SECONDS)
    client.send_typed("/register")
    client.send_typed("//not a command, but after one")
    assert sent(transport) == ["/register", "//not a command, but after one"]
    client.send_typed("  \u200b@bob hi")
    assert sent(transport) == ["  \u200b@bob hi", "/who", "/rooms"]
    client.send_typed("again")
    assert sent(transport) == ["again"]


def test_ready_at_once_in_clear_and_after_the_handshake_over_tls():
    """
    A clear connection is ready when made; a TLS one only once its handshake completed.
    """
    clear, _, _, _, _ = connected_client()
    assert clear.ready.called
    secure, _, _, _, _ = connected_client(tls=True)
    assert not secure.ready.called
    secure.handshakeCompleted()
    assert secure.ready.called


def test_a_handshake_refused_is_no_disconnection():
    """
    A TLS connection lost before its handshake fails C{ready} with the reason, and shows nothing.
    """
    client, transport, screen, _, _ = connected_client(tls=True)
    failures = []
    client.ready.addErrback(failures.append)
    lose(client, transport, error.ConnectionLost)
    assert failures[0].check(error.ConnectionLost)
    assert screen.lines == []


def test_interrupting_a_handshake_is_giving_up():
    """
    Ctrl+C during a TLS handshake cancels C{ready} rather than report a TLS failure.
    """
    client, transport, _, _, _ = connected_client(tls=True)
    failures = []
    client.ready.addErrback(failures.append)
    client.interrupt()
    lose(client, transport)
    assert failures[0].check(defer.CancelledError)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hi carol", True), ("@Carol: look", True), ("carol-like", False), ("carolyn", False),
        ("xcarol", False), ("carol!", True),
    ],
)
def test_mentions_are_whole_words_ignoring_case(text, expected):
    """
    A nickname is mentioned when it stands as a word of its own, in any case.
    """
    assert attention.mentions(text, "carol") is expected


@pytest.mark.parametrize(
    "line, expected",
    [
        ("bob: hi carol", attention.MENTION),
        ("[#maths] bob: carol?", attention.MENTION),
        ("* bob pokes carol", attention.MENTION),
        ("bob: hi all", attention.MESSAGE),
        ("[PM from bob] hi", attention.PRIVATE),
        ("[PM to bob] hi", None),
        ("carol: talking about carol", None),
        ("[Server] carol is now known as caz", None),
    ],
)
def test_kinds_of_line(line, expected):
    """
    Lines from others are private, mentions or plain messages; the server's and the user's
    own are none of them.
    """
    assert attention.kind_of(line, "carol") == expected


def test_highlighting_keeps_the_colours():
    """
    A highlighted line is in reverse video throughout, put back after each colour reset.
    """
    line = "\x1b[31mbob\x1b[0m: hi carol"
    assert attention.highlighted(line) == (
        "\x1b[7m\x1b[31mbob\x1b[0m\x1b[7m: hi carol\x1b[27m"
    )


@pytest.mark.parametrize(
    "bell, rings",
    [("mentions", ["mention", "private"]), ("all", ["plain", "mention", "private"]), ("off", [])],
)
def test_bell_modes(bell, rings):
    """
    --bell mentions rings for mentions and private messages, all for every message, off never.
    """
    screen, rung = Screen(), []
    shown = attention.Attention(screen, lambda: rung.append(screen.lines[-1]), lambda: "carol", bell)
    lines = {"plain": "bob: hi", "mention": "bob: hi carol", "private": "[PM from bob] x"}
    for name in ("plain", "mention", "private"):
        shown.show(lines[name])
    shown.show("[Server] bob joined the chat")
    assert rung == [screen.lines[["plain", "mention", "private"].index(name)] for name in rings]
    assert screen.lines[0] == "bob: hi"
    assert screen.lines[1].startswith(attention.HIGHLIGHT)


def test_timestamps_come_first():
    """
    --timestamps puts the local hours and minutes before each line.
    """
    clock = Clock()
    clock.advance(13 * 3600 + 7 * 60 + 5)
    screen = Screen()
    attention.Timestamped(screen, clock).show("bob: hi")
    expected = time.strftime("%H:%M", time.localtime(clock.seconds()))
    assert screen.lines == [expected + " bob: hi"]


def complete(roster, text):
    completer = interactive.ChatCompleter(roster)
    return [c.text for c in completer.get_completions(Document(text), None)]


def learnt_roster():
    roster = joined_roster()
    roster.ask()
    for line in [WHO_ANSWER] + ROOMS_ANSWER + HELP_ANSWER:
        roster.hear(line)
    return roster


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/j", ["/join "]),
        ("/Q", ["/quit "]),
        ("@a", ["@alice "]),
        ("hi @b", ["@bob"]),
        ("#m", ["#maths"]),
        ("/join ", ["#art", "#lobby", "#maths"]),
        ("/msg ", ["alice", "bob"]),
        ("/msg A", ["alice"]),
        ("thanks b", ["bob"]),
        ("thanks ", []),
        ("@c", []),
        ("/join", []),
    ],
)
def test_completion(text, expected):
    """
    Tab completes commands after a leading /, nicknames after @ and in arguments, rooms after
    # and in /join's; never the user's own nickname, nor a word already whole.
    """
    assert complete(learnt_roster(), text) == expected


def test_displayable_keeps_colours_and_removes_other_controls():
    """
    Only colour sequences survive: a cursor move, a screen clear or a bell from the server goes.
    """
    line = "\x1b[31mbob\x1b[0m: \x1b[2J\x1b[1;1Hhi\x07 \x1b]0;title\x07there"
    assert interactive.displayable(line) == "\x1b[31mbob\x1b[0m: hi there"


def test_a_password_never_enters_the_history():
    """
    Lines typed at a password prompt are not kept for Up to bring back.
    """
    secret = [False]
    history = interactive.SentHistory(lambda: secret[0])
    history.append_string("hello")
    secret[0] = True
    history.append_string("hunter2")
    assert history.get_strings() == ["hello"]


def test_tls_arguments():
    """
    --tls defaults to port 5556; --cafile and --insecure are read with it.
    """
    options = parse_arguments(["--tls", "chat.example", "--cafile", "ca.pem"])
    assert (options.tls, options.host, options.port, options.cafile) == (
        True, "chat.example", 5556, "ca.pem",
    )
    assert parse_arguments(["--tls", "h", "7000", "--insecure"]).port == 7000
    assert parse_arguments([]).bell == "mentions"


@pytest.mark.parametrize(
    "argv",
    [["--cafile", "ca.pem"], ["--insecure"], ["--tls", "--insecure", "--cafile", "x"],
     ["--bell", "loud"]],
)
def test_bad_tls_and_bell_arguments_exit_2(argv, capsys):
    """
    --cafile or --insecure without --tls, both at once, or an unknown --bell is a usage error.
    """
    with pytest.raises(SystemExit) as exited:
        parse_arguments(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_an_unusable_cafile_says_why(tmp_path):
    """
    A missing --cafile, or one with no certificate in it, is refused with a reason.
    """
    with pytest.raises(tls.TrustProblem, match="cannot read"):
        tls.client_options("h", str(tmp_path / "missing.pem"))
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(tls.TrustProblem, match="holds no PEM certificate"):
        tls.client_options("h", str(empty))
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(tls.TrustProblem, match="not a PEM certificate"):
        tls.client_options("h", str(broken))


def test_tls_failures_in_words():
    """
    An untrusted certificate, a wrong name and a plain port each have their own words.
    """
    from OpenSSL import SSL
    from service_identity import VerificationError

    untrusted = SSL.Error([("SSL routines", "", "certificate verify failed")])
    assert "not trusted" in tls.describe_tls_failure(untrusted, "h")
    assert tls.describe_tls_failure(VerificationError([]), "h") == (
        "the server's certificate is not for h"
    )
    plain = SSL.Error([("SSL routines", "", "wrong version number")])
    assert tls.describe_tls_failure(plain, "h") == "the server does not speak TLS on this port"
    assert tls.describe_tls_failure(error.ConnectionDone(), "h") == (
        "the connection closed during the TLS handshake"
    )


def test_interactive_only_when_both_ends_are_terminals():
    """
    The input line is for a person on a terminal; a pipe at either end keeps line in, line out.
    """

    class End:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    assert cli.is_interactive(End(True), End(True))
    assert not cli.is_interactive(End(False), End(True))
    assert not cli.is_interactive(End(True), End(False))
