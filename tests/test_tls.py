"""
TLS without a reactor: the server's certificate and its reload, the TLS
port's look at the first bytes, a whole handshake in memory (Python's ssl
module against the server over a StringTransport), and what connections
without TLS say of passwords.
"""

import ssl
import warnings

import pytest
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.testing import StringTransport

from tests.certificates import make_certificates
from tests.doubles import CLEAR_TEXT_WARNING, Connection, add_account, make_factory
from wazzap.app import service, tap
from wazzap.net.counts import REFUSED
from wazzap.net.tls import ClearText, ServerCertificate, TLSError, TLSOrPlainFactory

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


@pytest.fixture
def files(tmp_path):
    return make_certificates(tmp_path)


def tls_port(files, factory=None, timeout=30):
    """
    A TLS port's factory over a chat factory on a Clock (its login timeout
    C{timeout}), as the server listens.
    """
    factory = factory or make_factory(login_timeout_seconds=timeout)
    certificate = ServerCertificate(str(files.fullchain), str(files.key))
    return TLSOrPlainFactory(certificate, factory, factory.clock)


def connect_to(port_factory):
    protocol = port_factory.buildProtocol(PEER)
    transport = StringTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    return protocol, transport


class MemoryTLSClient:
    """
    Python's TLS client, its bytes carried by hand to and from the server
    over a StringTransport.
    """

    def __init__(self, port_factory, context):
        self.clock = port_factory.clock
        self.protocol, self.transport = connect_to(port_factory)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")

    def exchange(self):
        """
        Carry what each side has written to the other, once.
        """
        data = self.outgoing.read()
        if data:
            self.protocol.dataReceived(data)
        self.clock.advance(0)
        self.incoming.write(self.transport.value())
        self.transport.clear()

    def handshake(self):
        for _ in range(10):
            try:
                self.tls.do_handshake()
                self.exchange()
                return
            except ssl.SSLWantReadError:
                self.exchange()
        raise AssertionError("no handshake after 10 exchanges")

    def read(self):
        self.exchange()
        text = b""
        while True:
            try:
                text += self.tls.read()
            except ssl.SSLWantReadError:
                return text.decode("utf-8")


def client_context(files, **versions):
    context = ssl.create_default_context(cafile=str(files.ca))
    for name, value in versions.items():
        setattr(context, name, value)
    return context


def test_the_whole_chain_is_served_and_verifies(files):
    """A client that trusts only the root CA verifies the server: the intermediate is sent too."""
    port_factory = tls_port(files)
    client = MemoryTLSClient(port_factory, client_context(files))
    client.handshake()
    chain = client.tls.getpeercert()
    assert dict(x[0] for x in chain["subject"])["commonName"] == "localhost"
    assert client.tls.version() in ("TLSv1.2", "TLSv1.3")
    assert "Choose a nickname" in client.read()
    assert len(port_factory.tls.wrappedFactory.connections) == 1


def test_tls_1_1_is_refused(files):
    """A client that offers at most TLS 1.1 gets no handshake."""
    context = client_context(files)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that this client offers TLS 1.1 at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    client = MemoryTLSClient(tls_port(files), context)
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL"):
        client.handshake()


def test_a_plain_client_on_the_tls_port_is_answered_in_plain_text(files):
    """A nickname typed at the TLS port gets a plain answer naming the plain port, and is closed."""
    port_factory = tls_port(files)
    port_factory.plain_ports = "5555"
    protocol, transport = connect_to(port_factory)
    assert transport.value() == b""  # a TLS server does not speak first
    protocol.dataReceived(b"alice\n")
    answer = transport.value().decode("utf-8")
    assert answer.startswith("[Server] This port of the wazzap chat server speaks TLS only")
    assert "port 5555" in answer and answer.endswith("\r\n")
    assert transport.disconnecting
    transport.clear()
    protocol.dataReceived(b"/quit\n")
    assert transport.value() == b""  # answered once
    assert not port_factory.tls.wrappedFactory.connections


def test_a_plain_client_on_the_tls_port_is_counted_as_refused(files):
    """The metrics count a plain client turned away by a TLS port, as they do the reverse."""
    port_factory = tls_port(files)
    protocol, _ = connect_to(port_factory)
    protocol.dataReceived(b"alice\n")
    counts = port_factory.tls.wrappedFactory.counts
    assert counts.connections == 1
    assert counts.disconnections[REFUSED] == 1


def test_a_client_hello_split_after_its_first_byte_still_goes_to_tls(files):
    """The first byte alone decides nothing: 0x16 then 0x03 is still a handshake."""
    port_factory = tls_port(files)
    client = MemoryTLSClient(port_factory, client_context(files))
    with pytest.raises(ssl.SSLWantReadError):
        client.tls.do_handshake()
    hello = client.outgoing.read()
    client.protocol.dataReceived(hello[:1])
    assert client.transport.value() == b"" and not client.transport.disconnecting
    client.protocol.dataReceived(hello[1:])
    assert client.transport.value().startswith(b"\x16\x03")  # the ServerHello


def test_silence_on_the_tls_port_is_closed_at_the_timeout(files):
    """A connection that sends nothing, or stops in its handshake, is aborted after the timeout."""
    port_factory = tls_port(files, timeout=30)
    _, silent = connect_to(port_factory)
    stalled = MemoryTLSClient(port_factory, client_context(files))
    with pytest.raises(ssl.SSLWantReadError):
        stalled.tls.do_handshake()
    stalled.exchange()  # the ClientHello, and nothing after it
    port_factory.clock.advance(29)
    assert not silent.disconnecting and not stalled.transport.disconnecting
    port_factory.clock.advance(1)
    assert silent.disconnected and stalled.transport.disconnected


def test_a_finished_handshake_outlives_the_timeout(files):
    """Once the handshake is done, the TLS port's timeout leaves the connection alone."""
    port_factory = tls_port(files, timeout=30)
    client = MemoryTLSClient(port_factory, client_context(files))
    client.handshake()
    port_factory.clock.advance(30)
    assert not client.transport.disconnecting


@pytest.mark.parametrize(
    "cert, key, problem",
    [
        ("missing.pem", "key", "--tls-cert {dir}/missing.pem: no such file or directory"),
        ("dir", "key", "--tls-cert {dir}: is a directory"),
        ("key", "key", "--tls-cert {dir}/privkey.pem: no PEM certificate in it"),
        ("fullchain", "fullchain", "--tls-key {dir}/fullchain.pem: no PEM private key in it"),
        ("fullchain", "other_key",
         "--tls-key {dir}/other-key.pem does not match the certificate in --tls-cert "
         "{dir}/fullchain.pem"),
    ],
)
def test_a_certificate_or_key_that_cannot_serve_is_one_line(files, tmp_path, cert, key, problem):
    """A missing, unreadable, wrong or mismatched file is refused in one line naming it."""

    def path(name):
        if name == "dir":
            return str(tmp_path)
        if name.endswith(".pem"):
            return str(tmp_path / name)
        return str(getattr(files, name))

    with pytest.raises(TLSError) as raised:
        ServerCertificate(path(cert), path(key))
    assert str(raised.value) == problem.format(dir=tmp_path)


def test_reload_serves_new_files_and_keeps_the_old_if_they_are_bad(files, tmp_path):
    """reload() swaps in the new certificate for new connections, or raises and keeps the old."""
    certificate = ServerCertificate(str(files.fullchain), str(files.key))
    assert "CN=localhost" in certificate.description and "2 certificates" in certificate.description
    good = certificate._context
    files.key.write_bytes(files.other_key.read_bytes())
    with pytest.raises(TLSError, match="does not match"):
        certificate.reload()
    assert certificate._context is good
    (tmp_path / "renewed").mkdir()
    renewed = make_certificates(tmp_path / "renewed")
    files.fullchain.write_bytes(renewed.fullchain.read_bytes())
    files.key.write_bytes(renewed.key.read_bytes())
    assert "CN=localhost" in certificate.reload()
    chat = make_factory()
    port_factory = TLSOrPlainFactory(certificate, chat, chat.clock)
    MemoryTLSClient(port_factory, client_context(renewed)).handshake()
    with pytest.raises(ssl.SSLCertVerificationError):
        MemoryTLSClient(port_factory, client_context(files)).handshake()


def test_reload_takes_new_paths_only_if_they_serve(files, tmp_path):
    """reload() with new paths adopts them when they serve, and keeps the old ones when not."""
    certificate = ServerCertificate(str(files.fullchain), str(files.key))
    with pytest.raises(TLSError, match="missing.pem: no such file"):
        certificate.reload(str(tmp_path / "missing.pem"))
    assert certificate.certificate_path == str(files.fullchain)
    assert "1 certificate in the chain" in certificate.reload(str(files.leaf), str(files.key))
    assert certificate.certificate_path == str(files.leaf)


def test_password_prompts_without_tls_are_warned_and_name_the_tls_port():
    """Over TCP without TLS, the login password prompt follows a warning naming the TLS port."""
    factory = make_factory()
    factory.clear_text = ClearText("5556")
    add_account(factory, "alice", "correct horse")
    alice = Connection(factory, private=False)
    alice.lines()
    alice.send("alice")
    assert alice.lines() == [
        "[Server] Warning: this connection is not encrypted (port 5556 has TLS): "
        "a password typed here can be read on the network.",
        "[Server] alice is registered. Password:",
    ]


def test_account_commands_without_tls_warn_before_their_prompts():
    """/register, /password and /unregister warn once before they ask for a password."""
    factory = make_factory()
    alice = Connection(factory, private=False).join("alice")
    alice.lines()
    alice.send("/register")
    assert alice.lines() == [CLEAR_TEXT_WARNING, "[Server] Choose a password for alice. Password:"]
    alice.send("correct horse")
    alice.send("correct horse")
    assert alice.lines()[-1] == "[Server] registered: from now on alice needs this password"
    alice.send("/password")
    assert alice.lines() == [CLEAR_TEXT_WARNING, "[Server] Current password:"]
    alice.send("correct horse")
    assert alice.lines() == ["[Server] New password:"]
    alice.send("/quit")
    bob = Connection(factory, private=False, port=40001).join("bob")
    bob.send("/register correct horse")
    bob.lines()
    bob.send("/unregister")
    assert bob.lines() == [
        CLEAR_TEXT_WARNING,
        "[Server] To give up the account bob, type its password:",
    ]


def test_passwords_are_refused_without_tls_when_required():
    """With passwords refused, login and /register say which port to use and change nothing."""
    factory = make_factory()
    factory.clear_text = ClearText("5556", refuse_passwords=True)
    add_account(factory, "alice", "correct horse")
    guest = Connection(factory, private=False)
    guest.lines()
    guest.send("alice")
    assert guest.lines() == [
        "[Server] alice is registered: passwords are not accepted over a connection without "
        "encryption: connect with TLS to port 5556",
        "[Server] Choose a nickname (1 to 16 letters, digits, _ or -):",
    ]
    guest.join("bob")
    guest.send("/register correct horse")
    assert guest.lines() == [
        "[Server] cannot register: passwords are not accepted over a connection without "
        "encryption: connect with TLS to port 5556"
    ]
    assert factory.accounts.store.database.get_account("bob") is None


def test_a_unix_socket_takes_passwords_without_a_warning():
    """A connection over a Unix socket never crosses a network: no warning, no refusal."""
    factory = make_factory()
    factory.clear_text = ClearText("5556", refuse_passwords=True)
    alice = Connection(factory, private=True).join("alice")
    alice.lines()
    alice.send("/register")
    assert alice.lines() == ["[Server] Choose a password for alice. Password:"]


def test_a_tls_client_on_the_plain_port_is_told_the_tls_port():
    """A ClientHello on a plain port is answered with the port that speaks TLS, and closed."""
    factory = make_factory()
    factory.clear_text = ClearText("5556")
    guest = Connection(factory, private=False)
    guest.raw()
    guest.protocol.dataReceived(b"\x16\x03\x01\x02\x00\x01\x00")
    assert guest.raw() == (
        b"This port of the wazzap chat server speaks plain text, not TLS: "
        b"connect with TLS to port 5556.\r\n"
    )
    assert guest.transport.disconnecting


def test_tls_port_options():
    """--tls-port takes a number or a plain endpoint, beside the default plain port."""
    options = tap.Options()
    options.parseOptions(
        ["--tls-port", "5556", "--tls-port", "tcp:5557:interface=127.0.0.1",
         "--tls-cert", "fullchain.pem", "--tls-key", "privkey.pem", "--require-tls-for-passwords"]
    )
    assert options["tls-port"] == ["tcp:5556", "tcp:5557:interface=127.0.0.1"]
    assert options["port"] == ["tcp:5555"]
    assert options["require-tls-for-passwords"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--tls-port", "5556"], "--tls-port needs --tls-cert and --tls-key"),
        (["--tls-port", "5556", "--tls-cert", "c.pem"], "--tls-port needs --tls-cert and --tls-key"),
        (["--tls-key", "k.pem"], "--tls-key is for --tls-port, which is not given"),
        (["--tls-port", "ssl:5556", "--tls-cert", "c", "--tls-key", "k"],
         "--tls-port 'ssl:5556': give a port or a tcp: endpoint; wazzap adds the TLS"),
        (["--tls-port", "tcp:nope"], "--tls-port 'tcp:nope' is not a port or endpoint"),
        (["--require-tls-for-passwords"],
         "--require-tls-for-passwords needs a TLS port (--tls-port, or an ssl: --port)"),
    ],
)
def test_bad_tls_options_are_one_line(arguments, message):
    """Each inconsistent TLS option ends in one line naming the problem."""
    with pytest.raises(SystemExit) as exit:
        tap.Options().parseOptions(arguments)
    text = str(exit.value.code)
    assert message in text and "\n" not in text


def test_ports_are_named_for_notices():
    """Notices name TCP ports by number ("5556 or 5557") and leave Unix sockets out."""

    class Listening:
        def __init__(self, address):
            self.address = address

        def getHost(self):
            return self.address

    ports = [Listening(IPv4Address("TCP", "0.0.0.0", 5557)), Listening(IPv4Address("TCP", "::", 5556)),
             Listening(UNIXAddress(b"/run/wazzap.sock"))]
    assert service._port_names(ports) == "5556 or 5557"
    assert service._port_names(ports[2:]) is None


def test_a_reload_changes_the_handshake_timeout_of_tls_ports(files):
    """The TLS port's handshake deadline is the login timeout in force, so a reload changes it."""
    from dataclasses import replace

    factory = make_factory(login_timeout_seconds=30)
    port_factory = tls_port(files, factory)
    factory.change_limits(replace(factory.limits, login_timeout_seconds=5))
    assert port_factory.timeout_seconds == 5
