"""
End-to-end: the real C{twistd -n wazzap --tls-port}, with certificates made
at test time (a root CA, an intermediate, a server certificate for
localhost), against Python's own TLS client verifying the chain as
C{openssl s_client} would: the chain served whole, TLS 1.1 refused,
certificates that cannot serve, the plain-text answers of each port to the
other's clients, and passwords over connections without TLS.
"""

import socket
import ssl
import subprocess
import warnings

import pytest

from tests.certificates import make_certificates
from tests.support import (
    PASSWORD,
    TIMEOUT,
    LineClient,
    LoginClient,
    child_environment,
    free_port,
    seed_accounts,
    twistd_path,
)

pytestmark = pytest.mark.timeout(60)


class TLSLineClient(LoginClient):
    """
    A L{LoginClient} over TLS that trusts only the test root CA and checks
    the host name, as a careful client does.
    """

    def __init__(self, host, port, ca, context=None, **options):
        LineClient.__init__(self, host, port, **options)
        context = context or ssl.create_default_context(cafile=str(ca))
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")


@pytest.fixture
def certificates(tmp_path):
    return make_certificates(tmp_path)


@pytest.fixture
def tls_server(start_server, certificates):
    """
    Start a server with a TLS port beside its plain one; return it, its TLS
    port set as C{tls_port}.
    """

    def start(*options, certificate=None):
        tls_port = free_port()
        server = start_server(
            "--tls-port=tcp:%d:interface=127.0.0.1" % (tls_port,),
            "--tls-cert=%s" % (certificate or certificates.fullchain,),
            "--tls-key=%s" % (certificates.key,),
            *options,
        )
        server.wait_for_log("listening on 127.0.0.1:%d with TLS" % (tls_port,))
        server.tls_port = tls_port
        return server

    return start


@pytest.fixture
def clients():
    """
    Open clients of any kind (C{clients(kind, host, port, ...)}); all are closed at the end.
    """
    opened = []

    def open_one(kind, *arguments, **options):
        client = kind(*arguments, **options)
        opened.append(client)
        return client

    yield open_one
    for client in opened:
        client.close()


def test_tls_clients_verify_the_whole_chain_and_chat_with_plain_ones(tls_server, certificates, clients):
    """A client trusting only the root CA verifies the server and chats with a plain client."""
    server = tls_server()
    alice = clients(TLSLineClient, server.host, server.tls_port, certificates.ca)
    assert alice.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert alice.join("alice").startswith("[Server] Welcome, alice!")
    bob = clients(LineClient, server.host, server.port)
    bob.join("bob")
    alice.read_until("bob joined the chat")
    alice.send("hello over TLS")
    assert bob.read_until("alice:") == "alice: hello over TLS"
    bob.send("hello in clear")
    assert alice.read_until("bob:") == "bob: hello in clear"
    assert "TLS certificate: CN=localhost" in server.log()
    assert "2 certificates in the chain" in server.log()


def test_a_certificate_without_its_chain_does_not_verify(tls_server, certificates):
    """The same server certificate without the intermediate fails verification: the chain matters."""
    server = tls_server(certificate=certificates.leaf)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        TLSLineClient(server.host, server.tls_port, certificates.ca)


def test_the_documented_ssl_endpoint_serves_the_chain_too(start_server, certificates, clients):
    """--port ssl:...:certKey=cert.pem:extraCertChain=chain.pem, as documented, verifies too."""
    port = free_port()
    server = start_server(
        "--port=ssl:%d:interface=127.0.0.1:privateKey=%s:certKey=%s:extraCertChain=%s"
        % (port, certificates.key, certificates.leaf, certificates.chain)
    )
    server.wait_for_log("listening on 127.0.0.1:%d with TLS" % (port,))
    alice = clients(TLSLineClient, server.host, port, certificates.ca)
    assert alice.join("alice").startswith("[Server] Welcome, alice!")


def test_tls_1_1_is_refused(tls_server, certificates):
    """A client that speaks at most TLS 1.1 is refused with a protocol-version alert."""
    server = tls_server()
    context = ssl.create_default_context(cafile=str(certificates.ca))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that this client offers TLS 1.1 at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL"):
        TLSLineClient(server.host, server.tls_port, certificates.ca, context=context)
    good = TLSLineClient(server.host, server.tls_port, certificates.ca)
    good.read_until("Choose a nickname")
    good.close()


@pytest.mark.parametrize(
    "certificate, key, message",
    [
        ("missing.pem", "privkey.pem", "wazzap: --tls-cert {dir}/missing.pem: no such file or directory"),
        ("fullchain.pem", "missing.pem", "wazzap: --tls-key {dir}/missing.pem: no such file or directory"),
        ("privkey.pem", "privkey.pem", "wazzap: --tls-cert {dir}/privkey.pem: no PEM certificate in it"),
        ("fullchain.pem", "other-key.pem",
         "wazzap: --tls-key {dir}/other-key.pem does not match the certificate in "
         "--tls-cert {dir}/fullchain.pem"),
    ],
)
def test_a_certificate_that_cannot_serve_stops_the_start(certificates, tmp_path, certificate, key, message):
    """A missing, wrong or mismatched certificate or key is one line and exit status 1."""
    finished = subprocess.run(
        [twistd_path(), "-n", "--pidfile=", "--logfile=%s" % (tmp_path / "twistd.log",), "wazzap",
         "--port=tcp:%d:interface=127.0.0.1" % (free_port(),),
         "--db=%s" % (tmp_path / "wazzap.sqlite3",),
         "--tls-port=tcp:%d:interface=127.0.0.1" % (free_port(),),
         "--tls-cert=%s" % (tmp_path / certificate,), "--tls-key=%s" % (tmp_path / key,)],
        cwd=str(tmp_path),
        env=child_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode == 1
    assert (finished.stdout + finished.stderr).splitlines() == [message.format(dir=tmp_path)]
    assert not (tmp_path / "wazzap.sqlite3").exists()


def test_a_plain_client_on_the_tls_port_is_told_where_to_go(tls_server, clients):
    """A nickname typed at the TLS port gets one plain line naming the plain port, then the end."""
    server = tls_server()
    guest = clients(LineClient, server.host, server.tls_port)
    guest.send("alice")
    assert guest.wait_closed(TIMEOUT) == [
        "[Server] This port of the wazzap chat server speaks TLS only: connect with a TLS "
        "client (wazzap-client --tls, openssl s_client) or connect without TLS to port %d."
        % (server.port,)
    ]


def test_a_tls_client_on_the_plain_port_is_told_the_tls_port(tls_server, certificates):
    """A TLS handshake on the plain port gets plain text naming the TLS port, and is closed."""
    server = tls_server()
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
        with pytest.raises(ssl.SSLError, match="WRONG_VERSION_NUMBER|record layer failure"):
            ssl.create_default_context(cafile=str(certificates.ca)).wrap_socket(
                sock, server_hostname="localhost"
            )
    raw = LineClient(server.host, server.port)
    try:
        raw.send_raw(b"\x16\x03\x01\x00\x05hello")
        assert raw.wait_closed(TIMEOUT)[-1] == (
            "This port of the wazzap chat server speaks plain text, not TLS: "
            "connect with TLS to port %d." % (server.tls_port,)
        )
    finally:
        raw.close()


def test_password_prompts_in_clear_text_are_warned_and_not_over_tls(
    tls_server, certificates, clients, tmp_path
):
    """The login prompt of the plain port follows a warning naming the TLS port; over TLS, none."""
    server = tls_server(seed_accounts(tmp_path / "accounts.sqlite3", ["alice", "bob"]))
    plain = clients(LoginClient, server.host, server.port)
    plain.read_until("Choose a nickname")
    plain.send("alice")
    assert plain.read_through("Password:") == [
        "[Server] Warning: this connection is not encrypted (port %d has TLS): "
        "a password typed here can be read on the network." % (server.tls_port,),
        "[Server] alice is registered. Password:",
    ]
    plain.send(PASSWORD)
    plain.read_until("Welcome, alice!")
    secure = clients(TLSLineClient, server.host, server.tls_port, certificates.ca)
    secure.read_until("Choose a nickname")
    secure.send("bob")
    assert secure.read_through("Password:") == ["[Server] bob is registered. Password:"]
    secure.send(PASSWORD)
    secure.read_until("Welcome, bob!")
    secure.send("/password")
    assert secure.read_through("password:") == ["[Server] Current password:"]


def test_passwords_need_tls_when_required(tls_server, certificates, clients, tmp_path):
    """With --require-tls-for-passwords, the plain port refuses login and /register and names the TLS port."""
    server = tls_server(
        seed_accounts(tmp_path / "accounts.sqlite3", ["alice"]), "--require-tls-for-passwords"
    )
    refusal = (
        "passwords are not accepted over a connection without encryption: "
        "connect with TLS to port %d" % (server.tls_port,)
    )
    plain = clients(LoginClient, server.host, server.port)
    plain.read_until("Choose a nickname")
    plain.send("alice")
    assert plain.read_through("Choose a nickname") == [
        "[Server] alice is registered: " + refusal,
        "[Server] Choose a nickname (1 to 16 letters, digits, _ or -):",
    ]
    plain.send("carol")
    plain.read_until("Welcome, carol!")
    assert plain.ask("/register " + PASSWORD, "cannot register") == "[Server] cannot register: " + refusal
    secure = clients(TLSLineClient, server.host, server.tls_port, certificates.ca)
    assert secure.log_in("alice").startswith("[Server] Welcome, alice!")
