"""
The client over TLS (C{--tls}): how the server's certificate is checked, and
why a handshake failed, in words.

By default the certificate must chain to the system's trust store and name the
host as given on the command line (a DNS name or an IP address); C{--cafile}
trusts the certificates of one PEM file instead (a self-signed certificate,
or a private CA); C{--insecure} checks nothing, and says so.  TLS 1.2 or newer.
"""

from OpenSSL import SSL, crypto
from service_identity import VerificationError
from twisted.internet import ssl
from twisted.internet.ssl import TLSVersion

from wazzap.client.connection import KIB

#: A trust file bigger than this is not a list of certificates.
MAX_CAFILE_BYTES = 4 * KIB * KIB
INSECURE_WARNING = (
    "wazzap: warning: --insecure: the server's certificate is not checked, so anyone "
    "on the way can read and change the chat"
)
_PEM_END = b"-----END CERTIFICATE-----"


class TrustProblem(Exception):
    """
    The C{--cafile} cannot be read or holds no certificate.
    """


def client_options(host, cafile=None, insecure=False):
    """
    The TLS options for connecting to C{host}.

    @raise TrustProblem: if C{cafile} is unusable.
    """
    if insecure:
        return ssl.CertificateOptions(raiseMinimumTo=TLSVersion.TLSv1_2)
    trust = ssl.platformTrust() if cafile is None else _trust_in(cafile)
    return ssl.optionsForClientTLS(
        host,
        trustRoot=trust,
        extraCertificateOptions={"raiseMinimumTo": TLSVersion.TLSv1_2},
    )


def _trust_in(cafile):
    try:
        with open(cafile, "rb") as pem:
            data = pem.read(MAX_CAFILE_BYTES + 1)
    except OSError as problem:
        raise TrustProblem("cannot read %s: %s" % (cafile, problem.strerror or problem))
    if len(data) > MAX_CAFILE_BYTES:
        raise TrustProblem("%s is too big for a certificate file" % (cafile,))
    certificates = []
    for block in data.split(_PEM_END)[:-1]:
        try:
            certificates.append(ssl.Certificate.loadPEM(block + _PEM_END))
        except (crypto.Error, ValueError):
            raise TrustProblem("%s holds something that is not a PEM certificate" % (cafile,))
    if not certificates:
        raise TrustProblem("%s holds no PEM certificate" % (cafile,))
    return ssl.trustRootFromCertificates(certificates)


def describe_tls_failure(problem, host):
    """
    A short, human reason why the TLS handshake with C{host} failed, from
    the exception the connection was lost with.
    """
    if isinstance(problem, VerificationError):
        return "the server's certificate is not for %s" % (host,)
    if isinstance(problem, SSL.Error):
        words = " ".join(str(part[-1]) for part in _reasons(problem))
        if "certificate verify failed" in words:
            return (
                "the server's certificate is not trusted (--cafile FILE trusts a "
                "private CA or a self-signed certificate)"
            )
        if "wrong version number" in words or "packet length too long" in words:
            return "the server does not speak TLS on this port"
        return "TLS handshake failed: %s" % (words or "unknown reason",)
    return "the connection closed during the TLS handshake"


def _reasons(problem):
    """
    The (library, function, reason) tuples pyOpenSSL puts in an L{SSL.Error}.
    """
    details = problem.args[0] if problem.args else []
    return [part for part in details if isinstance(part, tuple)] if isinstance(details, list) else []
