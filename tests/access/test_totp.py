"""TOTP/HOTP against the RFCs' published test vectors, the window, and provisioning URIs."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

from warden.access.totp import (
    hotp,
    match_step,
    new_secret,
    provisioning_uri,
    secret_from_base32,
    secret_to_base32,
    time_step,
    totp,
)

SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}

# RFC 6238 Appendix B: (time, TOTP for SHA1, SHA256, SHA512), 8 digits, X = 30, T0 = 0.
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]

# RFC 4226 Appendix D: HOTP values for counts 0..9 with the 20-byte ASCII secret.
RFC4226 = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]


@pytest.mark.parametrize(("t", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_appendix_b_vectors(t: int, sha1: str, sha256: str, sha512: str) -> None:
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        assert totp(SEEDS[digest], t, digits=8, digest=digest) == expected


def test_rfc4226_hotp_vectors() -> None:
    assert [hotp(SEEDS["sha1"], c) for c in range(10)] == RFC4226


def test_time_step_boundaries() -> None:
    assert time_step(0) == 0
    assert time_step(29.999) == 0
    assert time_step(30) == 1
    assert time_step(59) == 1


def test_six_digit_codes_agree_with_pyotp() -> None:
    key = new_secret()
    assert len(key) == 20
    reference = pyotp.TOTP(secret_to_base32(key))
    for t in (0, 59, 1_700_000_000, 1_700_000_029, 1_700_000_030):
        assert totp(key, t) == reference.at(t)


def test_match_step_accepts_one_step_either_side_and_no_more() -> None:
    key = SEEDS["sha1"]  # fixed, so no two of the codes below collide by chance
    now = 1_700_000_015.0
    step = time_step(now)
    assert len({hotp(key, step + d) for d in range(-2, 3)}) == 5
    for offset in (-1, 0, 1):
        assert match_step(key, hotp(key, step + offset), now, window=1) == step + offset
    for offset in (-2, 2):
        assert match_step(key, hotp(key, step + offset), now, window=1) is None
    assert match_step(key, hotp(key, step - 1), now, window=0) is None
    assert match_step(key, hotp(key, step + 2), now, window=2) == step + 2


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "      "])
def test_match_step_refuses_malformed_codes(bad: str) -> None:
    assert match_step(new_secret(), bad, 1_700_000_000.0) is None


def test_match_step_tolerates_spaces_inside_the_code() -> None:
    key = new_secret()
    code = totp(key, 1_700_000_000)
    assert match_step(key, f"{code[:3]} {code[3:]}", 1_700_000_000.0) == time_step(1_700_000_000)


def test_base32_round_trip_and_uri() -> None:
    key = new_secret()
    text = secret_to_base32(key)
    assert "=" not in text
    assert secret_from_base32(text.lower()) == key
    uri = provisioning_uri(key, "alice@example", "Warden")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert unquote(parsed.path) == "/Warden:alice@example"
    query = parse_qs(parsed.query)
    assert query == {
        "secret": [text],
        "issuer": ["Warden"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }
    parsed_by_pyotp = pyotp.parse_uri(uri)
    assert isinstance(parsed_by_pyotp, pyotp.TOTP)
    assert parsed_by_pyotp.at(1_700_000_000) == totp(key, 1_700_000_000)
