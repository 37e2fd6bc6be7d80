"""A throwaway self-signed TLS certificate for the simulator's ``wss://`` endpoint.

The Gemini SDK only dials ``wss://`` (docs/protocols.md#gemini-sdk-types-and-local-testing),
so the Gemini dialect of the simulator serves TLS with a certificate made here: an ECDSA
P-256 key, valid for one day, for ``127.0.0.1``, ``::1`` and ``localhost``. A client
trusts it by loading :attr:`SelfSignedCert.cert_path` as its CA file (the certificate is
its own issuer, marked as a CA so that OpenSSL accepts it as a trust anchor).

Files live in a fresh private temporary folder; :meth:`SelfSignedCert.cleanup` removes it.
Synchronous; key generation takes about a millisecond.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: How long a generated certificate is valid.
VALIDITY = datetime.timedelta(days=1)
#: Names the certificate covers.
HOSTS = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class SelfSignedCert:
    """A generated certificate and its key on disk, and a server context that uses them.

    Attributes:
        folder: the private temporary folder holding both files.
        cert_path: the PEM certificate (give it to a client as its CA file).
        key_path: the PEM private key (readable by the owner only).
        context: a server-side ``ssl.SSLContext`` loaded with the pair.
    """

    folder: Path
    cert_path: Path
    key_path: Path
    context: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this certificate (for tests)."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def cleanup(self) -> None:
        """Delete the folder and both files (idempotent)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def make_self_signed(common_name: str = "voiceprobe simulator") -> SelfSignedCert:
    """Generate a certificate for loopback, write it to a new temp folder, load it.

    Args:
        common_name: the subject's CN (the SAN carries the names that are checked).

    Returns:
        The files and a server context (TLS 1.2 or newer).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    san = [x509.DNSName(h) for h in HOSTS] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES
    ]
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="voiceprobe-sim-tls-"))
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_path), str(key_path))
    return SelfSignedCert(folder, cert_path, key_path, ctx)
