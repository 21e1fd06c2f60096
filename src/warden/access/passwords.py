"""Passwords: the policy a new password must meet, and argon2id hashing.

Policy (:func:`check_password`): the password is NFKC-normalised (so the same characters typed
on another keyboard or composed differently hash the same), then it must be 12 to 256
characters long, have at least 5 distinct characters, not equal or contain the user name
(case-insensitively), and not be one of a small built-in list of common passwords.

Hashing (:class:`PasswordHasher`): argon2id with explicit :class:`PasswordParams`. The defaults
are RFC 9106's second recommended setting (64 MiB, 3 passes, 4 lanes), above OWASP's minimum
(19 MiB, 2 passes); weaker settings are refused unless ``unsafe_allow_weak`` (tests only; logs
a warning). A stored hash made with other parameters verifies and is reported as needing a
rehash, which :class:`~warden.access.Access` does on the next successful login.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from warden.access.errors import AccessError
from warden.errors import ConfigError

__all__ = [
    "COMMON_PASSWORDS",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "OWASP_MIN_MEMORY_KIB",
    "OWASP_MIN_TIME_COST",
    "PasswordHasher",
    "PasswordParams",
    "check_password",
    "normalize_password",
]

log = logging.getLogger(__name__)

MIN_PASSWORD = 12
"""The shortest password accepted (characters, after NFKC normalisation)."""
MAX_PASSWORD = 256
"""The longest password accepted (bounds the hashing work an attacker can ask for)."""
MIN_DISTINCT = 5
"""The fewest distinct characters a password may have (refuses ``aaaaaaaaaaaa``)."""
OWASP_MIN_MEMORY_KIB = 19 * 1024
"""OWASP's minimum argon2id memory cost: 19 MiB."""
OWASP_MIN_TIME_COST = 2
"""OWASP's minimum argon2id time cost (passes) at that memory."""

COMMON_PASSWORDS = frozenset(
    """
    123456789012 1234567890123 12345678901234 123456789123 111111111111 000000000000
    123123123123 123412341234 112233445566 987654321098 098765432109 147258369147
    password1234 password12345 password123456 passwordpassword password1password
    p@ssw0rd1234 passw0rd1234 p@ssword1234 password!234 password1234! mypassword123
    qwerty123456 qwertyuiop12 qwertyuiopas qwertyuiop123 1q2w3e4r5t6y 1qaz2wsx3edc
    qazwsxedcrfv zaq12wsxcde3 asdfghjkl123 asdfasdfasdf qwertyqwerty abcdefghijkl
    abcdef123456 abc123abc123 abcd1234abcd a1b2c3d4e5f6 iloveyou1234 iloveyouiloveyou
    letmein12345 letmeinletmein welcome12345 welcome123456 welcometowarden administrator
    administrator1 admin1234567 adminadmin123 admin@123456 changeme1234 changemenow!
    changeme12345 trustno1trustno1 monkey123456 dragon123456 football1234 baseball1234
    superman1234 starwars1234 sunshine1234 princess1234 shadow123456 master123456
    whatever1234 computer1234 internet1234 secret123456 secretsecret 1234qwerasdf
    qwer1234asdf q1w2e3r4t5y6 summer202020 winter202020 spring202020 autumn202020
    summer2024!! winter2024!! password2024 password2025 password2026 default12345
    guest1234567 test12345678 testtesttest testing12345 warden123456 wardenwarden
    """.split()  # noqa: SIM905 - a word list reads better as text
)
"""A small list of common passwords of at least 12 characters (compared case-insensitively).
Not a breach corpus: it catches the obvious, the length rule does the rest."""


def normalize_password(password: str) -> str:
    """The password as hashed: NFKC-normalised (no other change)."""
    if not isinstance(password, str):
        raise AccessError(f"a password must be text, found {type(password).__name__}")
    return unicodedata.normalize("NFKC", password)


def check_password(password: str, user_name: str = "") -> str:
    """The normalised password if the policy accepts it; AccessError saying what to change."""
    text = normalize_password(password)
    if len(text) < MIN_PASSWORD:
        raise AccessError(
            f"the password is {len(text)} characters; use at least {MIN_PASSWORD} "
            "(a few unrelated words make a good one)"
        )
    if len(text) > MAX_PASSWORD:
        raise AccessError(f"the password is {len(text)} characters; use at most {MAX_PASSWORD}")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise AccessError("the password contains control characters; use printable ones only")
    if len(set(text)) < MIN_DISTINCT:
        raise AccessError(
            f"the password has {len(set(text))} distinct characters; use at least {MIN_DISTINCT}"
        )
    folded = text.casefold()
    name = unicodedata.normalize("NFKC", user_name).casefold()
    if name and (folded == name or (len(name) >= 3 and name in folded)):
        raise AccessError("the password contains the user name; choose one that does not")
    if folded in COMMON_PASSWORDS:
        raise AccessError("the password is a commonly used one; choose another")
    return text


@dataclass(frozen=True)
class PasswordParams:
    """argon2id parameters (RFC 9106); the defaults are its second recommended setting."""

    time_cost: int = 3
    """Passes over memory (OWASP: at least 2 at 19 MiB)."""
    memory_kib: int = 64 * 1024
    """Memory per hash in KiB (OWASP: at least 19 MiB)."""
    parallelism: int = 4
    """Lanes."""
    hash_len: int = 32
    """Tag length in bytes."""
    salt_len: int = 16
    """Random salt length in bytes."""
    unsafe_allow_weak: bool = field(default=False, repr=False)
    """Accept parameters below OWASP's minimum (tests only; logs a warning)."""

    def __post_init__(self) -> None:
        for name in ("time_cost", "memory_kib", "parallelism", "hash_len", "salt_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"PasswordParams.{name}: expected a positive integer, {value!r}")
        if self.memory_kib < 8 * self.parallelism:
            raise ConfigError("PasswordParams.memory_kib: argon2 needs at least 8 KiB per lane")
        if self.hash_len < 16 or self.salt_len < 16:
            raise ConfigError("PasswordParams: hash_len and salt_len must be at least 16 bytes")
        weak = self.memory_kib < OWASP_MIN_MEMORY_KIB or self.time_cost < OWASP_MIN_TIME_COST
        if weak and not self.unsafe_allow_weak:
            raise ConfigError(
                f"argon2id with {self.memory_kib} KiB and {self.time_cost} pass(es) is below "
                f"OWASP's minimum ({OWASP_MIN_MEMORY_KIB} KiB, {OWASP_MIN_TIME_COST} passes); "
                "raise them (unsafe_allow_weak is for tests only)"
            )
        if weak:
            log.warning(
                "unsafe_allow_weak: argon2id parameters below OWASP's minimum (%d KiB, %d "
                "passes); never use them for real passwords",
                self.memory_kib,
                self.time_cost,
            )

    @property
    def weak(self) -> bool:
        """Below OWASP's minimum (only possible with ``unsafe_allow_weak``)."""
        return self.memory_kib < OWASP_MIN_MEMORY_KIB or self.time_cost < OWASP_MIN_TIME_COST


class PasswordHasher:
    """argon2id hashing and verification with fixed :class:`PasswordParams`."""

    def __init__(self, params: PasswordParams | None = None) -> None:
        self.params = params or PasswordParams()
        p = self.params
        self._hasher = argon2.PasswordHasher(
            time_cost=p.time_cost,
            memory_cost=p.memory_kib,
            parallelism=p.parallelism,
            hash_len=p.hash_len,
            salt_len=p.salt_len,
            type=argon2.Type.ID,
        )
        self.verifications = 0
        """How many hashes :meth:`verify` has checked (lets tests see the dummy hash used)."""

    def hash(self, password: str) -> str:
        """The PHC-format argon2id hash of the (normalised) password."""
        return self._hasher.hash(normalize_password(password))

    def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (False for a malformed hash, never raises
        for a mismatch)."""
        self.verifications += 1
        try:
            return self._hasher.verify(stored, normalize_password(password))
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            log.warning("a stored password hash is malformed or not argon2; treating as wrong")
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than these."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True
