"""
Certificates made at test time: a root CA, an intermediate CA it signed,
and a server certificate for localhost the intermediate signed, written as
a server would find them (Let's Encrypt's C{fullchain.pem}, C{cert.pem},
C{chain.pem} and C{privkey.pem}) and as a client would trust them (C{ca.pem}).  A client that
trusts only the root verifies the server only if the server sends the
intermediate too.
"""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class CertificateFiles:
    """
    Where one test's certificates are.
    """

    ca: Path  # the root CA alone, for clients
    fullchain: Path  # the server's certificate, then the intermediate
    leaf: Path  # the server's certificate alone
    chain: Path  # the intermediate alone (Let's Encrypt's chain.pem)
    key: Path  # the server's private key
    other_key: Path  # a key that matches none of them


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(subject, subject_key, issuer, issuer_key, ca, days=1):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certificates(directory):
    """
    Write a root CA, an intermediate and a server certificate for localhost
    into C{directory}; return their L{CertificateFiles}.
    """
    directory = Path(directory)
    root_key, intermediate_key, server_key = _key(), _key(), _key()
    root = _certificate("wazzap test root", root_key, "wazzap test root", root_key, ca=True)
    intermediate = _certificate(
        "wazzap test intermediate", intermediate_key, "wazzap test root", root_key, ca=True
    )
    server = _certificate(
        "localhost", server_key, "wazzap test intermediate", intermediate_key, ca=False
    )
    files = CertificateFiles(
        ca=directory / "ca.pem",
        fullchain=directory / "fullchain.pem",
        leaf=directory / "cert.pem",
        chain=directory / "chain.pem",
        key=directory / "privkey.pem",
        other_key=directory / "other-key.pem",
    )
    files.ca.write_bytes(_pem(root))
    files.fullchain.write_bytes(_pem(server) + _pem(intermediate))
    files.leaf.write_bytes(_pem(server))
    files.chain.write_bytes(_pem(intermediate))
    files.key.write_bytes(_key_pem(server_key))
    files.other_key.write_bytes(_key_pem(_key()))
    return files
