"""TLS for the gateway's listeners: a server context (TLS 1.2 or later) and development certs.

:func:`server_context` loads a certificate chain and its key into an
:class:`ssl.SSLContext` that refuses anything older than TLS 1.2 (and compression and
renegotiation, as Python's defaults do). A plain-HTTP request to such a port fails the
handshake: the connection is closed, nothing is served in clear text.

:func:`write_self_signed` makes a self-signed certificate for development and tests
(``warden certs self-signed``): an ECDSA P-256 key (written 0600) and a certificate valid for
the given IP addresses and host names. Never use it in production: clients cannot tell it
from an attacker's.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from warden.errors import ConfigError

__all__ = ["MINIMUM_TLS", "SelfSigned", "server_context", "write_self_signed"]

MINIMUM_TLS = ssl.TLSVersion.TLSv1_2
"""The oldest protocol version the gateway accepts."""


def server_context(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    """A server-side context for ``cert`` (PEM chain) and ``key`` (PEM), TLS >= 1.2."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_TLS
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(os.fspath(cert), os.fspath(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"TLS: cannot load certificate {cert} with key {key} ({exc}); give a PEM "
            "certificate chain and its unencrypted PEM private key"
        ) from exc
    return context


@dataclass(frozen=True)
class SelfSigned:
    """Where :func:`write_self_signed` wrote its files."""

    cert: Path
    """The PEM certificate (public; clients pin or trust it)."""
    key: Path
    """The PEM private key (mode 0600)."""
    fingerprint: str
    """SHA-256 fingerprint of the certificate (hex, colon-separated)."""


def _names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not host or any(c.isspace() for c in host):
                raise ConfigError(
                    f"TLS: {host!r} is neither an IP address nor a host name"
                ) from None
            names.append(x509.DNSName(host))
    return names


def write_self_signed(
    out: str | os.PathLike[str],
    *,
    hosts: Sequence[str] = ("127.0.0.1",),
    days: int = 30,
    force: bool = False,
) -> SelfSigned:
    """Write ``cert.pem`` and ``key.pem`` (0600) into ``out`` for ``hosts``, valid ``days``."""
    if not hosts:
        raise ConfigError("TLS: name at least one host (IP address or DNS name)")
    if not 1 <= days <= 825:
        raise ConfigError(f"TLS: days must be 1..825, found {days}")
    directory = Path(out)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    existing = [p for p in (cert_path, key_path) if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"TLS: {existing[0]} exists; pass --force to replace it or choose another --out"
        )
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    digest = cert.fingerprint(hashes.SHA256()).hex()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()
    return SelfSigned(cert=cert_path, key=key_path, fingerprint=fingerprint)
