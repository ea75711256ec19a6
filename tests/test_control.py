"""
The operator's commands (L{wazzap.app.control}): the control socket's line
protocol and the console over L{StringTransport}, on the in-memory doubles
and a Clock; the checks made before the socket and the console are opened.
"""

import os
import socket
import struct

import pytest
from twisted.internet import defer
from twisted.internet.testing import StringTransport

from tests.doubles import Connection, admin_logged_in, joined, make_factory
from wazzap import text
from wazzap.app import tap
from wazzap.app.control import (
    MAX_REQUEST_BYTES,
    Answer,
    ConsoleProtocol,
    ControlCommands,
    ControlProtocol,
    ControlService,
    NoAnswer,
    _remove_stale,
    ask,
    console_problem,
    control_socket_for,
)
from wazzap.persist.store import default_db_path


class Control:
    """
    A L{ControlProtocol} (or, with C{console}, a L{ConsoleProtocol}) of
    C{factory}'s chat over a L{StringTransport}.
    """

    def __init__(self, factory, console=False, transport=None):
        self.factory = factory
        commands = ControlCommands(factory.chat, factory.commands.registry)
        if console:
            self.protocol = ConsoleProtocol(commands, factory.chat.approval_listeners)
        else:
            self.protocol = ControlProtocol(commands)
        self.transport = transport or StringTransport()
        self.protocol.makeConnection(self.transport)

    def send(self, data):
        self.protocol.dataReceived(data if isinstance(data, bytes) else data.encode("utf-8") + b"\n")
        self.factory.clock.advance(0)

    def lines(self):
        value = self.transport.value().decode("utf-8")
        self.transport.clear()
        return value.splitlines()

    def ask(self, request):
        self.send(request)
        return self.lines()


def waiting(factory, nickname, port):
    """
    A newcomer that asked to join as C{nickname} and waits, its lines read.
    """
    newcomer = Connection(factory, port=port)
    newcomer.send(nickname)
    newcomer.lines()
    return newcomer


@pytest.fixture
def factory():
    """
    A chat on a Clock whose newcomers wait for approval.
    """
    return make_factory(approve_joins=True)


@pytest.fixture
def open_factory():
    """
    A chat on a Clock that anyone joins at once.
    """
    return make_factory()


def test_pending_lists_who_waits(factory):
    """pending answers with the chat's /pending lines, each prefixed, then ok."""
    control = Control(factory)
    assert control.ask("pending") == ["- nobody is waiting to join", "ok"]
    waiting(factory, "bob", 41001)
    assert control.ask("pending") == ["-   bob (127.0.0.1): /approve bob or /deny bob", "ok"]


def test_approve_lets_a_newcomer_in_as_the_operator(factory):
    """approve NICK admits the newcomer, and admins in the chat hear the operator did it."""
    admin = admin_logged_in(factory, "root1", port=41000)
    bob = waiting(factory, "bob", 41001)
    admin.lines()
    control = Control(factory)
    assert control.ask("approve bob") == ["- bob was approved by the operator", "ok"]
    assert any(line.startswith("[Server] Welcome, bob!") for line in bob.lines())
    assert admin.lines() == ["[Server] bob was approved by the operator", "[Server] bob joined the chat"]
    assert control.ask("approve bob") == ["- bob is not waiting to join: see /pending", "error"]
    waiting(factory, "carol", 41002)
    assert control.ask("approve carol now") == ["- carol was approved by the operator", "ok"]


def test_deny_turns_a_newcomer_away_with_the_reason(factory):
    """deny NICK REASON closes the newcomer's connection, telling them who and why."""
    bob = waiting(factory, "bob", 41001)
    control = Control(factory)
    assert control.ask("deny bob not today") == ["- bob was denied by the operator", "ok"]
    assert bob.lines() == ["[Server] disconnected: denied by the operator: not today"]
    assert bob.transport.disconnecting


def test_chat_admins_deny_with_a_reason_too(factory):
    """The chat's /deny NICK REASON, which the operator's deny runs, tells the newcomer the reason."""
    admin = admin_logged_in(factory, "root1", port=41000)
    bob = waiting(factory, "bob", 41001)
    admin.send("/deny bob spam")
    assert bob.lines() == ["[Server] disconnected: denied by root1: spam"]


def test_kick_disconnects_and_the_room_hears_the_operator(open_factory):
    """kick NICK REASON disconnects NICK, and the room is told the operator kicked them."""
    alice, bob = joined(open_factory, "alice", "bob")
    control = Control(open_factory)
    assert control.ask("kick bob flooding") == ["- bob was kicked", "ok"]
    assert bob.lines() == ["[Server] disconnected: kicked by the operator: flooding"]
    bob.close()
    assert alice.lines() == ["[Server] bob left the chat (kicked by the operator: flooding)"]
    assert control.ask("kick bob") == ["- nobody called bob is online", "error"]


def test_the_log_keeps_no_words_of_the_operators_reasons():
    """A leave reason with the operator's words is logged with their length only."""
    assert text.reason_for_log("kicked by the operator: flooding") == (
        "kicked by the operator: [8 characters]"
    )
    assert text.reason_for_log("denied by bob: spam") == "denied by bob: [4 characters]"


def test_announce_reaches_everyone_online(open_factory):
    """announce TEXT is a server notice to everyone, sanitised; the answer says how many heard it."""
    alice, bob = joined(open_factory, "alice", "bob")
    control = Control(open_factory)
    assert control.ask("announce restart at \x1b[31m5") == ["- announced to 2 people online", "ok"]
    assert alice.lines() == bob.lines() == ["[Server] restart at 5"]
    assert control.ask("announce \u200b") == ["- usage: announce TEXT", "error"]


def test_who_lists_everyone_online(open_factory):
    """who answers with the chat's /who line."""
    joined(open_factory, "alice", "bob")
    assert Control(open_factory).ask("who") == ["- 2 online: alice, bob", "ok"]


def test_bad_requests_get_an_error_and_change_nothing(factory):
    """An unknown command, a missing argument or an over-long line is an error, and the next request works."""
    bob = waiting(factory, "bob", 41001)
    control = Control(factory)
    assert control.ask("ban bob") == ["- unknown command ban: help lists them", "error"]
    assert control.ask("approve") == ["- usage: approve NICK", "error"]
    control.send(b"announce " + b"x" * MAX_REQUEST_BYTES + b"\nwho\n")
    assert control.lines() == [
        "- a request is at most %d bytes" % (MAX_REQUEST_BYTES,),
        "error",
        "- nobody is online",
        "ok",
    ]
    control.send(b"\r\n   \n")
    assert control.lines() == []
    assert not bob.transport.disconnecting


def test_requests_in_one_read_are_answered_in_order_as_the_chat_writes_them(factory):
    """Pipelined requests, a slash before the command and CR LF endings are all taken."""
    waiting(factory, "bob", 41001)
    control = Control(factory)
    control.send(b"/approve bob\r\nwho\r\nhelp\n")
    lines = control.lines()
    assert lines[:4] == ["- bob was approved by the operator", "ok", "- 1 online: bob", "ok"]
    assert lines[4].startswith("- pending [PAGE]") and lines[-1] == "ok"


def test_a_request_that_waits_holds_the_next_one():
    """While an answer waits on a Deferred, the next request is neither read nor answered."""

    class Slow:
        def __init__(self):
            self.asked = []

        def run(self, request):
            self.asked.append((request, defer.Deferred()))
            return self.asked[-1][1]

    commands = Slow()
    protocol = ControlProtocol(commands)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(b"first\nsecond\n")
    assert [request for request, _ in commands.asked] == ["first"]
    assert transport.producerState == "paused"
    commands.asked[0][1].callback(Answer(("one",)))
    assert [request for request, _ in commands.asked] == ["first", "second"]
    commands.asked[1][1].callback(Answer(("two",), False))
    assert transport.value() == b"- one\nok\n- two\nerror\n"
    assert transport.producerState == "producing"


class PeerTransport(StringTransport):
    """
    A transport whose socket says the peer is C{uid}, as SO_PEERCRED does.
    """

    def __init__(self, uid):
        StringTransport.__init__(self)
        self.uid = uid

    def getHandle(self):
        transport = self

        class Handle:
            def getsockopt(self, level, option, size):
                return struct.pack("3i", 1234, transport.uid, transport.uid)

        return Handle()


@pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="no SO_PEERCRED here")
def test_only_the_servers_user_may_connect(factory):
    """A peer of another user id is told so and closed; the server's own user is answered."""
    stranger = Control(factory, transport=PeerTransport(os.getuid() + 1))
    assert stranger.lines() == ["- only the user the server runs as may use its control socket", "error"]
    assert stranger.transport.disconnecting
    stranger.send("who")
    assert stranger.lines() == []
    assert Control(factory, transport=PeerTransport(os.getuid())).ask("who") == ["- nobody is online", "ok"]


def test_console_prints_requests_to_join_and_answers_plainly(factory):
    """The console shows each request to join as it comes, and answers without the socket's marks."""
    console = Control(factory, console=True)
    assert console.lines() == ["wazzap console: type help for the commands"]
    bob = Connection(factory, port=41001)
    bob.send("bob")
    assert console.lines() == ["bob (127.0.0.1) asks to join: /approve bob or /deny bob"]
    assert "No admin is online" not in "\n".join(bob.lines())
    assert console.ask("approve bob") == ["bob was approved by the operator"]
    assert console.ask("nonsense") == ["unknown command nonsense: help lists them"]


def test_console_output_goes_on_after_its_input_ends(factory):
    """Once standard input ends requests to join still print; once the console is gone they do not."""
    console = Control(factory, console=True)
    console.lines()
    console.protocol.readConnectionLost()
    waiting_bob = Connection(factory, port=41001)
    waiting_bob.send("bob")
    assert console.lines() == ["bob (127.0.0.1) asks to join: /approve bob or /deny bob"]
    console.protocol.connectionLost(None)
    assert factory.chat.approval_listeners == []


def test_console_needs_twistd_n_and_a_readable_standard_input(tmp_path):
    """--console is refused without -n, and on a closed, write-only or /dev/null standard input."""
    read_end, write_end = os.pipe()
    try:
        assert console_problem(True, read_end) is None
        assert "needs twistd -n" in console_problem(False, read_end)
        assert "not open for reading" in console_problem(True, write_end)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert "closed" in console_problem(True, read_end)
    with open(os.devnull) as devnull:
        assert os.devnull in console_problem(True, devnull.fileno())


def test_console_option_without_twistd_n_is_one_line():
    """twistd wazzap --console without -n ends with one line saying why."""
    with pytest.raises(SystemExit, match="--console needs twistd -n"):
        tap.Options().parseOptions(["--console"])


def test_the_control_socket_is_beside_the_database(tmp_path, monkeypatch):
    """The socket is the database's absolute path with .control; :memory: has none."""
    assert control_socket_for(None) == os.path.abspath(default_db_path()) + ".control"
    monkeypatch.chdir(tmp_path)
    assert control_socket_for("chat.db") == str(tmp_path / "chat.db.control")
    assert control_socket_for(":memory:") is None


def test_a_stale_socket_is_removed_and_a_live_one_refused(tmp_path):
    """At start, a socket nobody answers on is removed; one a server answers on, or a file, stops the start."""
    path = str(tmp_path / "db.control")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(1)
    try:
        with pytest.raises(SystemExit, match="another server runs on this database"):
            _remove_stale(path)
    finally:
        live.close()
    _remove_stale(path)  # bound, closed and never unlinked: what a killed server leaves
    assert not os.path.exists(path)
    _remove_stale(path)
    with open(path, "w"):
        pass
    with pytest.raises(SystemExit, match="not a socket"):
        _remove_stale(path)


def test_ask_says_when_no_server_runs(tmp_path):
    """wazzap-admin's ask tells a missing socket and one left by a stopped server apart."""
    path = str(tmp_path / "db.control")
    with pytest.raises(NoAnswer, match="no server is running .there is no control socket"):
        ask(path, "who")
    left = socket.socket(socket.AF_UNIX)
    left.bind(path)
    left.close()
    with pytest.raises(NoAnswer, match="left from one that stopped"):
        ask(path, "who")


def test_a_control_socket_path_too_long_stops_the_start_in_one_line(factory, tmp_path):
    """A socket path past the kernel's limit is one line naming the option that moves it."""
    from twisted.internet import reactor

    path = str(tmp_path / ("x" * 120) / "db.control")
    commands = ControlCommands(factory.chat, factory.commands.registry)
    service = ControlService(commands, factory.chat.approval_listeners, path, reactor=reactor)
    with pytest.raises(SystemExit, match=r"cannot make the control socket .*--control-socket"):
        service.listen()
