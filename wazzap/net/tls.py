"""
TLS for the line listener: the server's certificate (its whole chain, reread
on demand), the TLS port that answers a plain-text client in plain text, and
what a connection without TLS says of passwords.

A TLS port (C{--tls-port}) puts L{TLSOrPlainFactory} in front of Twisted's
L{TLSMemoryBIOFactory}: a TLS server cannot speak first, so the first bytes
a client sends decide.  A ClientHello (a handshake record, C{0x16 0x03})
goes on to TLS and the chat; anything else is a plain client typing a
nickname, which is told in plain text where to go and closed.  The plain
port's side of this (a ClientHello read as a nickname) is in
L{wazzap.listeners.line.dialog}.
"""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.ssl import CertificateOptions, TLSVersion
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from zope.interface import implementer

from wazzap.flow import cancel
from wazzap.net.counts import REFUSED

#: How a TLS record of the handshake begins (content type 22, version 3.x):
#: the first bytes of every ClientHello, SSL 3.0 to TLS 1.3.
TLS_HANDSHAKE = b"\x16\x03"

#: Older versions are refused: TLS 1.0 and 1.1 are deprecated (RFC 8996).
MINIMUM_TLS_VERSION = TLSVersion.TLSv1_2


class TLSError(Exception):
    """
    A certificate or key that cannot serve: the message is one line that
    names the file and the problem.
    """


@implementer(IOpenSSLServerConnectionCreator)
class ServerCertificate:
    """
    The server's certificate, its chain and its private key, read from PEM
    files, making the TLS side of each new connection.

    The certificate file may hold the whole chain, leaf first (Let's
    Encrypt's C{fullchain.pem}); every certificate in it is sent.
    L{reload} rereads both files for the connections that follow; those
    already open keep what they have.
    """

    def __init__(self, certificate_path, key_path):
        self.certificate_path = certificate_path
        self.key_path = key_path
        self._context, self.description = _load(certificate_path, key_path)

    def reload(self, certificate_path=None, key_path=None):
        """
        Reread the certificate and key files (these, if given: a changed
        configuration) and serve them to new connections; return the new
        certificate's L{description}.  Raise L{TLSError} and keep the old
        files and certificate if the new ones cannot serve.
        """
        certificate_path = certificate_path or self.certificate_path
        key_path = key_path or self.key_path
        self._context, self.description = _load(certificate_path, key_path)
        self.certificate_path, self.key_path = certificate_path, key_path
        return self.description

    # IOpenSSLServerConnectionCreator

    def serverConnectionForTLS(self, tlsProtocol):
        return SSL.Connection(self._context, None)


def _load(certificate_path, key_path):
    """
    The TLS context of a certificate file and a key file, and a
    description of the certificate.
    """
    chain = _read_certificates(certificate_path)
    key = _read_key(key_path)
    options = CertificateOptions(
        privateKey=key,
        certificate=chain[0],
        extraCertChain=chain[1:],
        raiseMinimumTo=MINIMUM_TLS_VERSION,
    )
    try:
        context = options.getContext()
    except SSL.Error:
        raise TLSError(
            "--tls-key %s does not match the certificate in --tls-cert %s"
            % (key_path, certificate_path)
        )
    return context, _describe(chain)


def _read(path, option):
    try:
        with open(path, "rb") as pem:
            return pem.read()
    except OSError as e:
        raise TLSError("%s %s: %s" % (option, path, (e.strerror or str(e)).lower()))


def _read_certificates(path):
    data = _read(path, "--tls-cert")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        chain = []
    if not chain:
        raise TLSError("--tls-cert %s: no PEM certificate in it" % (path,))
    return chain


def _read_key(path):
    data = _read(path, "--tls-key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TLSError("--tls-key %s: the key is encrypted; give it without a passphrase" % (path,))
    except ValueError:
        raise TLSError("--tls-key %s: no PEM private key in it" % (path,))


def _describe(chain):
    """
    One line for the log: whose certificate, until when, how long a chain.
    """
    leaf = chain[0]
    until = leaf.not_valid_after_utc
    expired = until < datetime.datetime.now(datetime.timezone.utc)
    return "%s, %s %s, %d certificate%s in the chain" % (
        leaf.subject.rfc4514_string() or "no subject",
        "EXPIRED on" if expired else "valid until",
        until.strftime("%Y-%m-%d %H:%M UTC"),
        len(chain),
        "" if len(chain) == 1 else "s",
    )


class TLSOrPlainFactory(ServerFactory):
    """
    The factory of a TLS port: L{TLSMemoryBIOFactory} over C{chat_factory},
    behind a look at the first bytes of each connection.

    @ivar plain_ports: where the chat speaks plain text, for the answer to a
        plain client (set once the server listens), or L{None}.
    """

    def __init__(self, certificate, chat_factory, clock):
        self.tls = TLSMemoryBIOFactory(certificate, False, chat_factory, clock)
        self.clock = clock
        self._limits = chat_factory.limits
        self.plain_ports = None

    @property
    def timeout_seconds(self):
        """
        How long a connection has to send its ClientHello and finish the
        handshake: the login timeout, read at each connection, so that a
        reload changes it.
        """
        return self._limits.login_timeout_seconds

    def buildProtocol(self, addr):
        return TLSOrPlain(self, addr)

    def plain_answer(self):
        """
        What a client that does not speak TLS is told.
        """
        elsewhere = (
            " or connect without TLS to port %s" % (self.plain_ports,) if self.plain_ports else ""
        )
        return (
            "[Server] This port of the wazzap chat server speaks TLS only: connect with "
            "a TLS client (wazzap-client --tls, openssl s_client)%s.\r\n" % (elsewhere,)
        )


class TLSOrPlain(Protocol):
    """
    One connection to a TLS port: its first bytes hand it to TLS or get it
    a plain-text answer.  Once handed over, this only passes bytes on.
    """

    log = Logger()

    def __init__(self, factory, address):
        self._factory = factory
        self._address = address
        self._first = b""
        self._tls = None
        self._timer = None

    def connectionMade(self):
        factory = self._factory
        self._timer = factory.clock.callLater(factory.timeout_seconds, self._timed_out)

    def dataReceived(self, data):
        tls = self._tls
        if tls is not None:
            tls.dataReceived(data)
            return
        if self.transport.disconnecting:
            return  # answered: the rest means nothing
        data = self._first + data
        if len(data) < len(TLS_HANDSHAKE) and TLS_HANDSHAKE.startswith(data):
            self._first = data  # a ClientHello may yet begin here
            return
        self._first = b""
        if data.startswith(TLS_HANDSHAKE):
            self._tls = tls = self._factory.tls.buildProtocol(self._address)
            tls.makeConnection(self.transport)
            tls.dataReceived(data)
        else:
            self._timer = cancel(self._timer)
            self.log.info(
                "{peer} spoke plain text to a TLS port",
                peer=getattr(self._address, "host", "local"),
            )
            # Never a chat connection, but one the metrics count as refused.
            counts = self._factory.tls.wrappedFactory.counts
            counts.connections += 1
            counts.disconnected(REFUSED)
            self.transport.write(self._factory.plain_answer().encode("utf-8"))
            self.transport.loseConnection()

    def connectionLost(self, reason):
        self._timer = cancel(self._timer)
        if self._tls is not None:
            self._tls.connectionLost(reason)

    def _timed_out(self):
        """
        Close a connection that sent nothing in time, or whose handshake did
        not finish: Twisted's TLS would wait for the handshake for ever
        before it closed the chat's connection.
        """
        self._timer = None
        tls = self._tls
        if tls is None:
            self.transport.abortConnection()
        elif not _handshake_done(tls):
            tls.abortConnection()


def _handshake_done(tls):
    """
    Whether the peer of C{tls} finished its handshake (sent its Finished).
    """
    return tls.getHandle().get_peer_finished() is not None


def is_private(transport):
    """
    Whether what a connection over C{transport} carries is safe from the
    network: TLS, or a Unix socket (which never leaves this machine).
    """
    if isinstance(transport, TLSMemoryBIOProtocol):
        return True
    return getattr(transport.getHost(), "name", None) is not None


class ClearText:
    """
    What a connection without TLS says of passwords, and whether it takes them.

    @ivar tls_ports: the ports that speak TLS, as the notices name them, or
        L{None} if none does.
    @ivar refuse_passwords: whether passwords are refused without TLS
        (C{--require-tls-for-passwords}).
    """

    def __init__(self, tls_ports=None, refuse_passwords=False):
        self.tls_ports = tls_ports
        self.refuse_passwords = refuse_passwords

    def allows_password(self, user, refusing):
        """
        Tell C{user} that what they type next is not encrypted, or that it
        is refused (C{refusing} begins that notice); return whether they may
        give a password here.
        """
        if self.refuse_passwords:
            user.notice(
                refusing + "passwords are not accepted over a connection without "
                "encryption: connect with TLS to port %s" % (self.tls_ports,)
            )
            return False
        where = " (port %s has TLS)" % (self.tls_ports,) if self.tls_ports else ""
        user.notice(
            "Warning: this connection is not encrypted%s: a password typed here "
            "can be read on the network." % (where,)
        )
        return True

    def not_tls_answer(self):
        """
        What a TLS client on a plain port is told, or L{None} where no port has TLS.
        """
        if self.tls_ports is None:
            return None
        return (
            "This port of the wazzap chat server speaks plain text, not TLS: "
            "connect with TLS to port %s.\r\n" % (self.tls_ports,)
        )
