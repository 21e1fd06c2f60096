"""The hash chain, as pure functions: a record's canonical text and its HMAC link.

A record's *canonical text* holds every field, in a fixed order, joined by the ASCII unit
separator ``U+001F``::

    time_us(16 digits) ␟ seq ␟ actor ␟ action ␟ resource ␟ outcome ␟ source ␟ input_digest
        ␟ latency_ms ␟ verdicts(JSON) ␟ details(JSON)

``time_us`` is UTC microseconds since the Unix epoch, zero-padded to 16 digits so that texts
compare in time order; ``latency_ms`` is Python's shortest ``repr`` of the float, or empty; the
JSON parts are compact, key-sorted and ASCII-only. Text fields may not contain control
characters, so the encoding is unambiguous.

The chain: ``hash[n] = HMAC-SHA256(audit_key, hash[n-1] ‖ UTF-8(canonical[n]))`` with
``hash[0]`` = 32 zero bytes (:data:`GENESIS`). Each record stores its ``prev_hash`` too, so
each record's MAC can be checked on its own (in parallel) and the links checked separately.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from warden.errors import ConfigError

__all__ = [
    "FIELDS",
    "GENESIS",
    "SEP",
    "TIME_DIGITS",
    "CanonicalFields",
    "canonical_json",
    "canonical_text",
    "check_text_field",
    "hmac_pads",
    "hmac_sha256",
    "link",
    "parse_canonical",
]

SEP: Final = "\x1f"
"""The field separator of the canonical text (ASCII unit separator)."""
GENESIS: Final = bytes(32)
"""The ``prev_hash`` of the first record ever written."""
TIME_DIGITS: Final = 16
"""Width of the zero-padded microsecond time at the start of the canonical text."""
MAX_TIME_US: Final = 10**TIME_DIGITS - 1
"""The latest representable time (year 2286)."""
FIELDS: Final = (
    "time_us",
    "seq",
    "actor",
    "action",
    "resource",
    "outcome",
    "source",
    "input_digest",
    "latency_ms",
    "verdicts",
    "details",
)
"""The canonical text's fields, in order."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CanonicalFields(NamedTuple):
    """A canonical text split back into its fields (JSON parts decoded)."""

    time_us: int
    seq: int
    actor: str
    action: str
    resource: str
    outcome: str
    source: str
    input_digest: str
    latency_ms: float | None
    verdicts: dict[str, Any]
    details: dict[str, Any]


def check_text_field(name: str, value: str) -> str:
    """``value`` if it can stand in a canonical text (no control characters, valid UTF-8)."""
    if type(value) is str and value.isascii() and value.isprintable():
        return value  # the common case: printable ASCII has no control character and encodes
    if not isinstance(value, str):
        raise ConfigError(f"audit field {name}: expected a string, found {type(value).__name__}")
    if _CONTROL.search(value):
        raise ConfigError(f"audit field {name} contains a control character: {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(f"audit field {name} is not valid Unicode: {value!r}") from exc
    return value


_ENCODE: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
).encode
"""``json.dumps`` with the canonical options, without building an encoder per call."""


def canonical_json(value: Mapping[str, Any]) -> str:
    """Compact, key-sorted, ASCII-only JSON: one text for one value."""
    if type(value) is dict and not value:
        return "{}"
    text: str = _ENCODE(value)
    return text


def canonical_text(time_us: int, seq: int, tail: str) -> str:
    """The canonical text of record ``seq`` written at ``time_us``; ``tail`` is the rest of
    the fields as :func:`event_tail <warden.audit.events.AuditEvent.tail>` encodes them."""
    if not 0 <= time_us <= MAX_TIME_US:
        raise ValueError(f"time {time_us} µs is outside 0..{MAX_TIME_US}")
    return f"{time_us:016d}{SEP}{seq}{SEP}{tail}"


def parse_canonical(text: str) -> CanonicalFields:
    """The fields of a canonical text (``ValueError`` when it is not one)."""
    parts = text.split(SEP)
    if len(parts) != len(FIELDS):
        raise ValueError(f"expected {len(FIELDS)} fields, found {len(parts)}")
    time_s, seq_s, actor, action, resource, outcome, source, digest, latency, verdicts, details = (
        parts
    )
    if len(time_s) != TIME_DIGITS or not time_s.isdigit() or not seq_s.isdigit():
        raise ValueError(f"malformed time or sequence number: {time_s!r}, {seq_s!r}")
    verdict_doc = json.loads(verdicts)
    detail_doc = json.loads(details)
    if not isinstance(verdict_doc, dict) or not isinstance(detail_doc, dict):
        raise ValueError("verdicts and details must be JSON objects")
    return CanonicalFields(
        time_us=int(time_s),
        seq=int(seq_s),
        actor=actor,
        action=action,
        resource=resource,
        outcome=outcome,
        source=source,
        input_digest=digest,
        latency_ms=float(latency) if latency else None,
        verdicts=verdict_doc,
        details=detail_doc,
    )


def hmac_pads(key: bytes) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The SHA-256 states after the inner and outer HMAC pads of ``key`` (RFC 2104), as
    ``copy`` methods: ``HMAC(m) = outer().update(inner().update(m).digest()).digest()``.
    Hot loops inline this; :func:`hmac_sha256` wraps it."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner.copy, outer.copy


def hmac_sha256(key: bytes) -> Callable[[bytes], bytes]:
    """``HMAC-SHA256(key, ·)`` with the key's pads hashed once.

    Equal to ``hmac.new(key, msg, "sha256").digest()``; about twice as fast per short message
    as OpenSSL 3's HMAC objects, which is what verification spends its time on.
    """
    inner, outer = hmac_pads(key)

    def mac(message: bytes) -> bytes:
        i = inner()
        i.update(message)
        o = outer()
        o.update(i.digest())
        digest: bytes = o.digest()
        return digest

    return mac


def link(mac: Callable[[bytes], bytes], prev_hash: bytes, canonical: str) -> bytes:
    """One chain step: ``HMAC(prev_hash ‖ UTF-8(canonical))``."""
    return mac(prev_hash + canonical.encode("utf-8"))
