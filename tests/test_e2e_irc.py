"""
End-to-end: the real C{twistd -n wazzap --irc-port} against the C{irc}
package from PyPI as the IRC client (a library nobody here wrote) and a raw
line client: they see each other's messages, in order, with nicknames;
IRC over TLS; and a port in use stops the start with one line.
"""

import ssl
import time

import irc.client
import irc.connection
import pytest

from tests.certificates import make_certificates
from tests.support import DEFAULT_TIMEOUT, free_port, run_wazzap

pytestmark = pytest.mark.timeout(60)


class IrcPerson:
    """
    One user of the C{irc} library's client, its events kept in order as
    C{(type, source nick, target, text)}.
    """

    def __init__(self, host, port, nickname, connect_factory=None, password=None):
        self.reactor = irc.client.Reactor()
        self.events = []
        self.reactor.add_global_handler("all_events", self._event, -10)
        options = {"connect_factory": connect_factory} if connect_factory else {}
        self.connection = self.reactor.server().connect(
            host, port, nickname, password=password, **options
        )

    def _event(self, connection, event):
        text = event.arguments[0] if event.arguments else ""
        source = event.source.nick if event.source and "!" in event.source else event.source
        self.events.append((event.type, source, event.target, text))

    def wait_for(self, predicate, timeout=DEFAULT_TIMEOUT):
        """
        Process events until one satisfies C{predicate}; return it.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            self.reactor.process_once(0.05)
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
        raise AssertionError("no such event in %r" % (self.events,))

    def wait_for_type(self, kind):
        return self.wait_for(lambda event: event[0] == kind)

    def close(self):
        self.connection.close()


@pytest.fixture
def irc_server(start_server):
    """
    A real server with an IRC port beside its line port, C{irc_port} set.
    """
    irc_port = free_port()
    server = start_server("--irc-port=tcp:%d:interface=127.0.0.1" % (irc_port,),
                          "--server-name=irc.e2e.test")
    server.wait_for_log("listening on 127.0.0.1:%d" % (irc_port,))
    server.irc_port = irc_port
    return server


@pytest.fixture
def people():
    opened = []

    def open_one(*arguments, **options):
        person = IrcPerson(*arguments, **options)
        opened.append(person)
        return person

    yield open_one
    for person in opened:
        person.close()


def test_irc_and_nc_users_see_each_other_in_order(irc_server, open_client, people):
    """An IRC user and an nc user in #lobby see each other's lines, actions and private messages."""
    alice = people("127.0.0.1", irc_server.irc_port, "alice")
    welcome = alice.wait_for_type("welcome")
    assert welcome[1] == "irc.e2e.test"
    alice.wait_for(lambda event: event[0] == "join" and event[2] == "#lobby")
    bob = open_client(irc_server, "bob")
    alice.wait_for(lambda event: event[0] == "join" and event[1] == "bob")
    for i in range(5):
        bob.send("line %d from nc" % (i,))
    for i in range(5):
        event = alice.wait_for(lambda event: event[0] == "pubmsg")
        assert event == ("pubmsg", "bob", "#lobby", "line %d from nc" % (i,))
        alice.events.remove(event)
    for i in range(5):
        alice.connection.privmsg("#lobby", "line %d from irc" % (i,))
    for i in range(5):
        assert "alice: line %d from irc" % (i,) in bob.read_until("from irc")
    alice.connection.action("#lobby", "waves")
    assert "* alice waves" in bob.read_until("waves")
    alice.connection.privmsg("bob", "psst")
    assert "[PM from alice] psst" in bob.read_until("psst")
    bob.send("@alice hush")
    assert alice.wait_for(lambda event: event[0] == "privmsg")[1:] == ("bob", "alice", "hush")
    bob.send("/me nods")
    assert alice.wait_for(lambda event: event[0] == "action")[1:] == ("bob", "#lobby", "nods")


def test_irc_user_joins_a_room_an_nc_user_is_in(irc_server, open_client, people):
    """JOIN takes an IRC user into a line user's room, where both talk; PART leaves it."""
    bob = open_client(irc_server, "bob")
    bob.send("/join #maths")
    bob.read_until("you joined #maths")
    alice = people("127.0.0.1", irc_server.irc_port, "alice")
    alice.wait_for_type("welcome")
    alice.connection.join("#maths")
    names = alice.wait_for(lambda event: event[0] == "namreply")
    assert names[0] == "namreply"
    bob.read_until("alice joined #maths")
    alice.connection.privmsg("#maths", "hello maths")
    assert bob.read_until("hello maths").endswith("alice: hello maths")
    bob.send("sums!")
    assert alice.wait_for(lambda event: event[0] == "pubmsg")[1:] == ("bob", "#maths", "sums!")
    alice.connection.part("#maths")
    bob.read_until("alice left #maths")


def test_irc_over_tls(start_server, tmp_path, open_client, people):
    """--irc-tls-port serves IRC over TLS with the certificate of --tls-cert."""
    certificates = make_certificates(tmp_path)
    tls_port = free_port()
    server = start_server(
        "--irc-tls-port=tcp:%d:interface=127.0.0.1" % (tls_port,),
        "--tls-cert=%s" % (certificates.fullchain,),
        "--tls-key=%s" % (certificates.key,),
    )
    server.wait_for_log("listening on 127.0.0.1:%d with TLS" % (tls_port,))
    context = ssl.create_default_context(cafile=str(certificates.ca))
    factory = irc.connection.Factory(
        wrapper=lambda sock: context.wrap_socket(sock, server_hostname="localhost")
    )
    alice = people("localhost", tls_port, "alice", connect_factory=factory)
    alice.wait_for_type("welcome")
    bob = open_client(server, "bob")
    alice.connection.privmsg("#lobby", "secret hello")
    assert "alice: secret hello" in bob.read_until("secret hello")


def test_irc_port_in_use_stops_the_start_with_one_line(tmp_path):
    """An --irc-port already in use stops the server with one line and status 1."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = run_wazzap(tmp_path, "--irc-port=tcp:%d:interface=127.0.0.1" % (port,))
    finally:
        taken.close()
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and "cannot listen on tcp:%d" % (port,) in errors[0], result.stderr
