"""TOTP (RFC 6238) and HOTP (RFC 4226) as pure functions, plus secrets and provisioning URIs.

Warden's users get SHA-1, 6 digits, 30-second steps (what every authenticator app supports);
the digest and digit count are parameters so the RFC 6238 Appendix B vectors can be checked.
:func:`match_step` accepts the current step and ``window`` steps either side and returns the
step that matched, so the caller can refuse a step it has already accepted (replay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from typing import Final
from urllib.parse import quote, urlencode

__all__ = [
    "DIGITS",
    "SECRET_BYTES",
    "STEP_SECONDS",
    "hotp",
    "match_step",
    "new_secret",
    "provisioning_uri",
    "secret_from_base32",
    "secret_to_base32",
    "time_step",
    "totp",
]

STEP_SECONDS: Final = 30
"""The time step (RFC 6238's default X)."""
DIGITS: Final = 6
"""Code length."""
SECRET_BYTES: Final = 20
"""Shared-secret length: 160 bits, the HMAC-SHA-1 output size (RFC 4226 §4 recommends it)."""

_DIGESTS: Final = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def hotp(key: bytes, counter: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 HOTP: HMAC of the 8-byte big-endian counter, dynamic truncation, ``digits``."""
    mac = hmac.new(key, struct.pack(">Q", counter), _DIGESTS[digest]).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def time_step(unix_time: float, *, step: int = STEP_SECONDS, t0: int = 0) -> int:
    """RFC 6238's T: whole steps since ``t0``."""
    return int((unix_time - t0) // step)


def totp(
    key: bytes,
    unix_time: float,
    *,
    step: int = STEP_SECONDS,
    digits: int = DIGITS,
    digest: str = "sha1",
) -> str:
    """RFC 6238 TOTP at ``unix_time``."""
    return hotp(key, time_step(unix_time, step=step), digits=digits, digest=digest)


def match_step(
    key: bytes,
    code: str,
    unix_time: float,
    *,
    window: int = 1,
    step: int = STEP_SECONDS,
    digits: int = DIGITS,
) -> int | None:
    """The time step whose code is ``code`` within ``window`` steps of now, else ``None``.

    Every candidate is computed and compared in constant time (no early exit), so the time
    taken does not depend on which step, if any, matched.
    """
    cleaned = "".join(code.split()) if isinstance(code, str) else ""
    if len(cleaned) != digits or not cleaned.isascii() or not cleaned.isdigit():
        return None
    now = time_step(unix_time, step=step)
    found: int | None = None
    for candidate in range(now - window, now + window + 1):
        expected = hotp(key, candidate, digits=digits)
        if hmac.compare_digest(expected.encode(), cleaned.encode()) and found is None:
            found = candidate
    return found


def new_secret() -> bytes:
    """A fresh random shared secret of :data:`SECRET_BYTES` bytes."""
    return secrets.token_bytes(SECRET_BYTES)


def secret_to_base32(key: bytes) -> str:
    """The secret as authenticator apps want it: base32, no padding."""
    return base64.b32encode(key).decode("ascii").rstrip("=")


def secret_from_base32(text: str) -> bytes:
    """The secret from base32 text (spaces and padding optional, any case)."""
    cleaned = "".join(text.split()).upper().rstrip("=")
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def provisioning_uri(key: bytes, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI (Key Uri Format) an authenticator app scans as a QR code."""
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode(
        {
            "secret": secret_to_base32(key),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"
