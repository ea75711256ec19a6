"""
End-to-end: the real client on a pseudo-terminal (pexpect) against the real
C{twistd -n wazzap}, its screen read through a terminal emulator (pyte) that
also answers the cursor-position queries a real terminal answers; and the
client over TLS, with certificates made at test time.
"""

import datetime
import subprocess
import sys
import time

import pexpect
import pyte
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import DEFAULT_TIMEOUT, child_environment, free_port

COLUMNS, ROWS = 80, 24


class EmulatedScreen(pyte.Screen):
    """
    A pyte screen that counts bells and sends its answers (to cursor
    position requests) back to the program, as a terminal does.
    """

    def __init__(self, columns, rows, child):
        super().__init__(columns, rows)
        self.bells = 0
        self._child = child

    def bell(self, *args):
        self.bells += 1

    def write_process_input(self, data):
        self._child.send(data.encode("ascii"))


class TerminalClient:
    """
    C{python -m wazzap.client} on a pseudo-terminal of L{COLUMNS} by L{ROWS},
    everything it writes fed to an L{EmulatedScreen}; every wait has a deadline.
    """

    def __init__(self, *arguments):
        env = child_environment()
        env.pop("NO_COLOR", None)
        env["TERM"] = "xterm"
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "wazzap.client", *arguments],
            env=env,
            dimensions=(ROWS, COLUMNS),
        )
        self.screen = EmulatedScreen(COLUMNS, ROWS, self.child)
        self.stream = pyte.ByteStream(self.screen)
        self.ended = False

    def _pump(self, timeout):
        try:
            self.stream.feed(self.child.read_nonblocking(65536, timeout))
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            self.ended = True

    @property
    def rows(self):
        return [row.rstrip() for row in self.screen.display]

    def wait_for(self, needle, timeout=DEFAULT_TIMEOUT):
        """
        Read the program's output until a row of the screen contains
        C{needle}; return that row's index.
        """
        deadline = time.monotonic() + timeout
        while True:
            for index, row in enumerate(self.rows):
                if needle in row:
                    return index
            if self.ended or time.monotonic() >= deadline:
                raise AssertionError("no %r on the screen:\n%s" % (needle, "\n".join(self.rows)))
            self._pump(min(0.1, max(deadline - time.monotonic(), 0.01)))

    def settle(self, seconds=0.3):
        """
        Take in whatever the program writes for C{seconds}.
        """
        deadline = time.monotonic() + seconds
        while not self.ended and time.monotonic() < deadline:
            self._pump(max(deadline - time.monotonic(), 0.01))

    def type(self, keys):
        self.child.send(keys.encode("utf-8"))

    def input_row(self):
        """
        The row the cursor is on: the input line.
        """
        return self.rows[self.screen.cursor.y]

    def finish(self, timeout=DEFAULT_TIMEOUT):
        """
        Read until the program exits; return its exit status.
        """
        deadline = time.monotonic() + timeout
        while not self.ended:
            if time.monotonic() >= deadline:
                raise AssertionError("the client did not exit:\n%s" % ("\n".join(self.rows),))
            self._pump(0.1)
        self.child.close()
        return self.child.exitstatus

    def kill(self):
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close()


@pytest.fixture
def terminal_client():
    """
    Start clients on pseudo-terminals; any still running at the end is killed.
    """
    started = []

    def start(*arguments):
        client = TerminalClient(*arguments)
        started.append(client)
        return client

    yield start
    for client in started:
        client.kill()


def joined(terminal_client, server, nickname="carol", *options):
    """
    A client on a terminal, joined as C{nickname} and showing its prompt.
    """
    client = terminal_client("127.0.0.1", str(server.port), "--nick", nickname, *options)
    client.wait_for("[#lobby] %s>" % (nickname,))
    return client


def test_incoming_lines_scroll_above_a_half_typed_line(server, connect, terminal_client):
    """
    Three lines arriving while a line is half typed show above it, whole, and
    the half-typed line stays intact below them and is sent once finished.
    """
    alice = connect("alice")
    carol = joined(terminal_client, server)
    alice.read_until("carol joined the chat")
    carol.type("hello wor")
    carol.wait_for("carol> hello wor")
    for word in ("one", "two", "three"):
        alice.send("message " + word)
    last = carol.wait_for("alice: message three")
    carol.settle()
    rows = carol.rows
    assert rows[last - 2 : last + 1] == [
        "alice: message one",
        "alice: message two",
        "alice: message three",
    ]
    assert carol.input_row() == "[#lobby] carol> hello wor"
    assert carol.screen.cursor.y > last
    carol.type("ld\r")
    assert alice.read_until("hello world") == "carol: hello world"


def test_tab_completes_commands_rooms_and_nicknames(server, connect, terminal_client):
    """
    Tab completes a command after /, a room after #, a nickname after @, from
    what the client learnt at joining, whose answers it never shows.
    """
    alice = connect("alice")
    alice.ask("/join #maths", "you joined #maths")
    carol = joined(terminal_client, server)
    carol.settle(0.5)
    carol.type("/jo\t")
    carol.wait_for("carol> /join")
    carol.type("#ma\t")
    carol.wait_for("carol> /join #maths")
    carol.type("\r")
    carol.wait_for("you joined #maths")
    carol.wait_for("[#maths] carol>")
    carol.type("@al\t")
    carol.wait_for("carol> @alice")
    carol.type("psst")
    carol.wait_for("carol> @alice psst")
    carol.type("\r")
    assert alice.read_until("psst") == "[PM from carol] psst"
    screen = "\n".join(carol.rows)
    assert "online:" not in screen
    assert "Commands (type" not in screen
    assert "rooms:" not in screen


def test_up_recalls_what_was_sent(server, connect, terminal_client):
    """
    Up brings back the lines sent in this session, latest first, to send again.
    """
    alice = connect("alice")
    carol = joined(terminal_client, server)
    carol.type("first\r")
    alice.read_until("carol: first")
    carol.type("second\r")
    alice.read_until("carol: second")
    carol.type("\x1b[A\x1b[A")
    carol.settle()
    assert carol.input_row() == "[#lobby] carol> first"
    carol.type("\r")
    assert alice.read_until("carol:") == "carol: first"


def test_a_mention_and_a_private_message_ring_and_stand_out(server, connect, terminal_client):
    """
    A line naming the user and a private message ring the bell and show in
    reverse video; other lines do neither.
    """
    alice = connect("alice")
    carol = joined(terminal_client, server)
    alice.read_until("carol joined the chat")
    alice.send("nothing for anyone")
    plain = carol.wait_for("alice: nothing for anyone")
    carol.settle()
    assert carol.screen.bells == 0
    assert not carol.screen.buffer[plain][0].reverse
    alice.send("hey Carol, look")
    mention = carol.wait_for("alice: hey Carol, look")
    carol.settle()
    assert carol.screen.bells == 1
    assert carol.screen.buffer[mention][0].reverse
    alice.send("@carol just you")
    private = carol.wait_for("[PM from alice] just you")
    carol.settle()
    assert carol.screen.bells == 2
    assert carol.screen.buffer[private][0].reverse


def test_ctrl_d_says_goodbye(server, connect, terminal_client):
    """
    Ctrl+D on an empty line leaves through /quit, shows the goodbye and exits 0.
    """
    alice = connect("alice")
    carol = joined(terminal_client, server)
    carol.type("\x04")
    carol.wait_for("[Server] Goodbye!")
    assert carol.finish() == 0
    assert alice.read_until("carol left").endswith("(quit)")


def test_ctrl_c_closes(server, connect, terminal_client):
    """
    Ctrl+C, even with a line half typed, shows "Closing connection" and exits 0.
    """
    alice = connect("alice")
    carol = joined(terminal_client, server)
    carol.type("never sent")
    carol.wait_for("carol> never sent")
    carol.type("\x03")
    carol.wait_for("Closing connection")
    assert carol.finish() == 0
    alice.read_until("carol left")
    assert "never sent" not in "\n".join(alice.lines)


def test_server_going_away_while_typing(server, terminal_client):
    """
    A server that stops while a line is half typed leaves the client saying
    "Disconnected from server", with status 1.
    """
    carol = joined(terminal_client, server)
    carol.type("half a li")
    carol.wait_for("carol> half a li")
    server.stop()
    carol.wait_for("Disconnected from server")
    assert carol.finish() == 1
    assert "Traceback" not in "\n".join(carol.rows)


def test_a_password_is_hidden_and_never_recalled(server, terminal_client):
    """
    At a password prompt what is typed does not show, and Up never brings it back.
    """
    carol = joined(terminal_client, server)
    carol.type("/register\r")
    carol.wait_for("Password:")
    carol.type("hunter2-secret\r")
    carol.wait_for("Repeat the password:")
    carol.type("hunter2-secret\r")
    carol.wait_for("registered")
    carol.wait_for("[#lobby] carol>")
    carol.type("\x1b[A")
    carol.settle()
    assert carol.input_row() == "[#lobby] carol> /register"
    assert "hunter2" not in "\n".join(carol.rows)


# TLS


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def self_signed_certificate(directory):
    """
    Write a key and a self-signed certificate for localhost (no CA of its
    own, as a quick server set-up makes); return their paths.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    paths = directory / "self-key.pem", directory / "self-cert.pem"
    paths[0].write_bytes(_key_pem(key))
    paths[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return paths


def private_ca_and_server_certificate(directory):
    """
    Write a CA certificate, and a key and certificate for localhost that it
    signed; return the paths of the CA's certificate, the key and the
    server's certificate.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wazzap test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "key.pem", directory / "cert.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(_key_pem(key))
    paths[2].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return paths


@pytest.fixture
def tls_server(start_server, tmp_path):
    """
    A server with a TLS listener on a free loopback port besides its plain
    one; returns the server, the TLS port and the CA's certificate path.
    """
    ca, key, certificate = private_ca_and_server_certificate(tmp_path)
    tls_port = free_port()
    server = start_server(
        "--port=ssl:%d:privateKey=%s:certKey=%s:interface=127.0.0.1" % (tls_port, key, certificate)
    )
    server.wait_for_log("listening on 127.0.0.1:%d with TLS" % (tls_port,))
    return server, tls_port, ca


def run_piped_client(*arguments, typed=""):
    """
    C{python -m wazzap.client ARGUMENTS} on pipes, given C{typed} as its
    input; the completed process.
    """
    return subprocess.run(
        [sys.executable, "-m", "wazzap.client", *arguments],
        env=child_environment(),
        input=typed,
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
    )


def test_tls_with_a_private_ca_chats(tls_server, open_client, terminal_client):
    """
    --tls with --cafile verifies the server by the CA and host name, and chats.
    """
    server, tls_port, ca = tls_server
    alice = open_client(server, "alice")
    carol = terminal_client("--tls", "--cafile", str(ca), "localhost", str(tls_port), "--nick", "carol")
    carol.wait_for("[#lobby] carol>")
    alice.read_until("carol joined the chat")
    carol.type("over tls\r")
    assert alice.read_until("over tls") == "carol: over tls"


def test_tls_with_a_self_signed_certificate_as_cafile(start_server, tmp_path):
    """
    --cafile naming the server's own self-signed certificate trusts that server.
    """
    key, certificate = self_signed_certificate(tmp_path)
    tls_port = free_port()
    start_server(
        "--port=ssl:%d:privateKey=%s:certKey=%s:interface=127.0.0.1" % (tls_port, key, certificate)
    )
    result = run_piped_client(
        "--tls", "--cafile", str(certificate), "localhost", str(tls_port), "--nick", "carol",
        typed="/who\n",
    )
    assert result.returncode == 0, result.stderr
    assert "1 online: carol" in result.stdout
    assert result.stderr == ""


def test_an_untrusted_certificate_is_one_line_and_status_1(tls_server):
    """
    Without --cafile the test CA is not in the system's trust store: one line
    on stderr, nothing else, status 1.
    """
    _, tls_port, _ = tls_server
    result = run_piped_client("--tls", "localhost", str(tls_port), "--nick", "carol")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "wazzap: cannot connect to localhost:%d: the server's certificate is not trusted "
        "(--cafile FILE trusts a private CA or a self-signed certificate)" % (tls_port,)
    ]
    assert result.stdout == ""


def test_a_certificate_for_another_name_is_refused(tls_server):
    """
    A trusted certificate that does not name the host connected to is refused in one line.
    """
    _, tls_port, ca = tls_server
    result = run_piped_client("--tls", "--cafile", str(ca), "127.0.0.1", str(tls_port))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "wazzap: cannot connect to 127.0.0.1:%d: the server's certificate is not for 127.0.0.1"
        % (tls_port,)
    ]


def test_insecure_warns_and_connects(tls_server):
    """
    --insecure connects to a server it cannot verify, after a warning on stderr.
    """
    _, tls_port, _ = tls_server
    result = run_piped_client(
        "--tls", "--insecure", "127.0.0.1", str(tls_port), "--nick", "carol", typed="/who\n"
    )
    assert result.returncode == 0, result.stderr
    assert "1 online: carol" in result.stdout
    assert result.stderr.splitlines()[0].startswith("wazzap: warning: --insecure")


def test_tls_to_a_plain_port_is_one_line(server):
    """
    --tls against the plain port says the server speaks no TLS there, with status 1.
    """
    result = run_piped_client("--tls", "--insecure", "127.0.0.1", str(server.port))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "wazzap: cannot connect to 127.0.0.1:%d: the server does not speak TLS on this port"
        % (server.port,)
    )
