"""What is audited: events in, records and receipts out, and the sink protocol.

Other packages accept an optional :class:`AuditSink` (``record(event)``) so that they can be
audited without importing the writer; :class:`NullSink` records nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from warden.audit.chain import SEP, canonical_json, check_text_field, parse_canonical
from warden.errors import ConfigError

__all__ = [
    "AuditEvent",
    "AuditReceipt",
    "AuditRecord",
    "AuditSink",
    "NullSink",
    "model_resource",
]


def model_resource(name: str, version: int | None = None) -> str:
    """The ``resource`` of a model (``model:NAME``) or one of its versions
    (``model:NAME@v3``): what ``warden audit search --model NAME`` matches."""
    return f"model:{name}" if version is None else f"model:{name}@v{version}"


_TEXT_FIELDS = ("actor", "action", "resource", "outcome", "source", "input_digest")
"""The text fields of an event, in canonical order."""


def _as_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return value if type(value) is dict else dict(value)


@dataclass(frozen=True)
class AuditEvent:
    """Something security-relevant that happened, as the caller describes it.

    The log adds the sequence number, the time and the chain fields (:class:`AuditRecord`).
    Text fields may not contain control characters; ``verdicts`` and ``details`` must be JSON
    objects (finite numbers, string keys).
    """

    action: str
    """What was done, dotted: ``gateway.predict``, ``registry.approve``, ``key.revoke``."""
    actor: str
    """Who did it: a user name or an API key id (``anonymous`` when unauthenticated)."""
    resource: str = ""
    """What it was done to: ``model:NAME@v3`` (see :func:`model_resource`), ``user:NAME``."""
    outcome: str = "ok"
    """How it ended: ``ok``, ``denied``, ``blocked``, ``error``, ..."""
    source: str = ""
    """Where it came from: a client address, ``cli``, ``api``."""
    input_digest: str = ""
    """A digest of the request input, where relevant (``sha256:...``)."""
    latency_ms: float | None = None
    """How long it took, in milliseconds, where relevant."""
    verdicts: Mapping[str, Any] = field(default_factory=dict)
    """Guard verdicts by guard name (``{"input-size": "allow"}``)."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Anything else, as a JSON object."""
    tail: str = field(init=False, repr=False, compare=False)
    """The event's part of the canonical text (every field after the sequence number)."""

    def __post_init__(self) -> None:
        if not self.action:
            raise ConfigError("an audit event needs an action (e.g. registry.approve)")
        if not self.actor:
            raise ConfigError("an audit event needs an actor (use 'anonymous' for none)")
        texts = [
            self.actor,
            self.action,
            self.resource,
            self.outcome,
            self.source,
            self.input_digest,
        ]
        try:
            plain = "".join(texts)
        except TypeError:
            plain = "\x00"  # not all strings: the field checks below say which one
        if not (plain.isascii() and plain.isprintable()):  # else no field needs checking
            for name, value in zip(_TEXT_FIELDS, texts, strict=True):
                check_text_field(name, value)
        latency = self.latency_ms
        if latency is not None:
            if isinstance(latency, bool) or not isinstance(latency, int | float):
                raise ConfigError(f"latency_ms: expected a number, found {type(latency).__name__}")
            latency = float(latency)
            if not math.isfinite(latency) or latency < 0:
                raise ConfigError(f"latency_ms: expected a finite number >= 0, found {latency}")
            object.__setattr__(self, "latency_ms", latency)
        try:
            verdicts = canonical_json(_as_dict(self.verdicts))
            details = canonical_json(_as_dict(self.details))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"verdicts and details: expected plain JSON objects ({exc})") from exc
        latency_text = "" if latency is None else repr(latency)
        object.__setattr__(self, "tail", SEP.join([*texts, latency_text, verdicts, details]))


@dataclass(frozen=True)
class AuditReceipt:
    """Proof that a record was appended: its place in the chain."""

    seq: int
    """The record's sequence number (1, 2, ...; no gaps)."""
    hash: str
    """The record's chain hash (hex)."""


@dataclass(frozen=True)
class AuditRecord:
    """A stored record: the event's fields plus its place and link in the chain."""

    seq: int
    """Sequence number."""
    time: datetime
    """When it was written (UTC, never earlier than its predecessor)."""
    actor: str
    """Who (see :class:`AuditEvent`)."""
    action: str
    """What."""
    resource: str
    """To what."""
    outcome: str
    """With what result."""
    source: str
    """From where."""
    input_digest: str
    """Digest of the input, or empty."""
    latency_ms: float | None
    """Latency in milliseconds, or ``None``."""
    verdicts: dict[str, Any]
    """Guard verdicts."""
    details: dict[str, Any]
    """Free-form details."""
    canonical: str
    """The authenticated canonical text the fields above were read from."""
    prev_hash: str
    """The previous record's hash (hex)."""
    hash: str
    """This record's hash: HMAC-SHA256(key, prev_hash ‖ canonical) (hex)."""

    @property
    def time_us(self) -> int:
        """The time as integer microseconds since the epoch (as stored)."""
        return int(self.canonical[:16])

    @classmethod
    def from_row(cls, canonical: str, prev_hash: bytes, hash: bytes) -> AuditRecord:
        """The record stored as ``canonical`` with its chain fields."""
        f = parse_canonical(canonical)
        return cls(
            seq=f.seq,
            time=datetime.fromtimestamp(f.time_us // 1_000_000, UTC).replace(
                microsecond=f.time_us % 1_000_000
            ),
            actor=f.actor,
            action=f.action,
            resource=f.resource,
            outcome=f.outcome,
            source=f.source,
            input_digest=f.input_digest,
            latency_ms=f.latency_ms,
            verdicts=f.verdicts,
            details=f.details,
            canonical=canonical,
            prev_hash=prev_hash.hex(),
            hash=hash.hex(),
        )

    def to_json(self) -> dict[str, Any]:
        """The record as one JSON object (an export line): every field, the canonical text and
        the chain fields, so a reader holding the audit key can check it on its own."""
        return {
            "seq": self.seq,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "outcome": self.outcome,
            "source": self.source,
            "input_digest": self.input_digest,
            "latency_ms": self.latency_ms,
            "verdicts": self.verdicts,
            "details": self.details,
            "canonical": self.canonical,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@runtime_checkable
class AuditSink(Protocol):
    """Where audited code sends its events; :class:`~warden.audit.writer.AuditLog` is one."""

    def record(self, event: AuditEvent) -> None:
        """Record ``event`` durably (return only once it is stored)."""
        ...


class NullSink:
    """An :class:`AuditSink` that records nothing (the default where auditing is optional)."""

    def record(self, event: AuditEvent) -> None:
        """Discard ``event``."""
