"""
End-to-end: what travels on the wire, against the real C{twistd -n wazzap}:
TLS that stays encrypted, the bytes a real telnet client sends, and the
refusal of an address that connects too often.
"""

import datetime
import re
import socket
import ssl
import struct
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import TIMEOUT, free_port, strip_colors

#: TLS record content types: change_cipher_spec, alert, handshake, application_data.
TLS_RECORD_TYPES = {20, 21, 22, 23}


def self_signed_certificate(directory):
    """
    Write a fresh key and a self-signed certificate for localhost; return their paths.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, certificate_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, certificate_path


def tls_records(wire):
    """
    Split C{wire} into TLS records (content type, payload); fail on any byte
    that is not part of a well-formed record.
    """
    records = []
    while wire:
        assert len(wire) >= 5, "a stray %r after the last record" % (wire,)
        kind, major, minor, length = struct.unpack("!BBBH", wire[:5])
        assert kind in TLS_RECORD_TYPES and major == 3, "not a TLS record: %r" % (wire[:40],)
        assert len(wire) >= 5 + length, "a record cut short: %r" % (wire[:40],)
        records.append((kind, wire[5 : 5 + length]))
        wire = wire[5 + length :]
    return records


class TlsClient:
    """
    A TLS client over a raw socket (through memory BIOs), so that every byte
    the server puts on the wire is kept in C{wire}.
    """

    def __init__(self, host, port, timeout=TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._incoming, self._outgoing)
        self.wire = b""
        self.text = ""
        self.deadline = time.monotonic() + timeout
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._send_pending()
                self._receive()
        self._send_pending()

    def _send_pending(self):
        data = self._outgoing.read()
        if data:
            self.sock.sendall(data)

    def _receive(self):
        self.sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
        data = self.sock.recv(65536)
        if not data:
            self._incoming.write_eof()
        self.wire += data
        self._incoming.write(data)

    def send(self, line):
        self.tls.write(line.encode("utf-8") + b"\r\n")
        self._send_pending()

    def read_until(self, needle, timeout=TIMEOUT):
        """
        Decrypt what arrives until C{needle} is in it; return the text so far.
        """
        self.deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert time.monotonic() < self.deadline, "no %r in %r" % (needle, self.text)
            try:
                self.text += strip_colors(self.tls.read(65536).decode("utf-8"))
            except ssl.SSLWantReadError:
                self._send_pending()
                self._receive()
        return self.text

    def close(self):
        self.sock.close()


def test_tls_output_is_encrypted_and_tls_clients_chat(start_server, open_client, tmp_path):
    """
    Over an ssl: endpoint every byte the server sends is part of a TLS record, and
    a TLS client chats with a plain one.
    """
    key, certificate = self_signed_certificate(tmp_path)
    tls_port = free_port()
    server = start_server(
        "--port=ssl:%d:privateKey=%s:certKey=%s:interface=127.0.0.1" % (tls_port, key, certificate)
    )
    server.wait_for_log("listening on 127.0.0.1:%d with TLS" % (tls_port,))
    alice = TlsClient("127.0.0.1", tls_port)
    try:
        alice.read_until("Choose a nickname")
        alice.send("alice")
        alice.read_until("Welcome, alice!")
        bob = open_client(server, "bob")
        alice.read_until("bob joined the chat")
        alice.send("hello over TLS")
        assert bob.read_until("alice:") == "alice: hello over TLS"
        bob.send("hello in clear")
        alice.read_until("bob: hello in clear")
        records = tls_records(alice.wire)
    finally:
        alice.close()
    assert records and {kind for kind, _ in records} <= {20, 22, 23}  # no alert
    for fragment in (b"Welcome", b"[Server]", b"hello", b"alice"):
        assert fragment not in alice.wire
    assert "Traceback" not in server.log()


def test_ctrl_c_from_telnet_gets_the_timing_mark_and_goodbye(start_server, open_client):
    """
    Debian telnet's Ctrl+C (IAC IP IAC DO TIMING-MARK, no newline) is answered with
    WILL TIMING-MARK, then Goodbye, and the room hears that the user quit.
    """
    server = start_server()
    alice = open_client(server, "alice")
    bob = open_client(server, "bob")
    alice.read_until("bob joined the chat")
    alice.raw = b""
    alice.send_raw(b"\xff\xf4\xff\xfd\x06")
    alice.wait_closed(TIMEOUT)
    assert alice.raw.startswith(b"\xff\xfb\x06") and b"Goodbye!" in alice.raw
    assert bob.read_until("alice left") == "[Server] alice left the chat (quit)"


def test_an_address_that_connects_too_often_is_refused(start_server, open_client):
    """
    Past --max-connections-per-minute, a new connection gets one clear line and is closed.
    """
    server = start_server("--max-connections-per-minute=2")
    for _ in range(2):
        open_client(server).read_until("Choose a nickname")
    refused = open_client(server)
    (line,) = refused.wait_closed(TIMEOUT)
    assert re.fullmatch(
        r"\[Server\] Too many new connections from your address \(limit 2 a minute\):"
        r" try again in (29|30) seconds\.",
        line,
    ), line
    assert open_client(server, source="127.0.0.2").read_until("Choose a nickname")
    server.wait_for_log("refusing 127.0.0.1: over 2 new connections a minute")
