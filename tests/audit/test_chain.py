"""The pure chain step against reference values computed independently here."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from warden.audit.chain import (
    GENESIS,
    canonical_text,
    hmac_sha256,
    link,
    parse_canonical,
)
from warden.audit.events import AuditEvent, model_resource
from warden.errors import ConfigError

KEY = bytes(range(32))


def _reference_canonical(time_us: int, seq: int, event: dict[str, object]) -> str:
    """The documented encoding, written out by hand."""
    verdicts = json.dumps(event["verdicts"], sort_keys=True, separators=(",", ":"))
    details = json.dumps(event["details"], sort_keys=True, separators=(",", ":"))
    latency = "" if event["latency_ms"] is None else repr(float(event["latency_ms"]))  # type: ignore[arg-type]
    fields = [
        f"{time_us:016d}",
        str(seq),
        event["actor"],
        event["action"],
        event["resource"],
        event["outcome"],
        event["source"],
        event["input_digest"],
        latency,
        verdicts,
        details,
    ]
    return "\x1f".join(str(f) for f in fields)


def test_hmac_matches_the_standard_library_for_short_long_and_empty_messages() -> None:
    mac = hmac_sha256(KEY)
    for message in (b"", b"a", b"x" * 63, b"y" * 64, b"z" * 1000):
        assert mac(message) == hmac.new(KEY, message, hashlib.sha256).digest()
    long_key = b"k" * 100  # longer than a block: hashed first, as RFC 2104 says
    assert hmac_sha256(long_key)(b"m") == hmac.new(long_key, b"m", hashlib.sha256).digest()


def test_rfc4231_test_case_2() -> None:
    digest = hmac_sha256(b"Jefe")(b"what do ya want for nothing?")
    assert digest.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_canonical_text_and_chain_match_an_independent_computation() -> None:
    raw = {
        "actor": "alice",
        "action": "registry.approve",
        "resource": model_resource("iris", 3),
        "outcome": "ok",
        "source": "10.0.0.7",
        "input_digest": "sha256:" + "ab" * 32,
        "latency_ms": 12,
        "verdicts": {"size": "allow", "evasion": "flag"},
        "details": {"reason": "gates passed", "n": 2, "ünï": "cödé"},
    }
    event = AuditEvent(**raw)  # type: ignore[arg-type]
    assert event.latency_ms == 12.0
    prev = GENESIS
    texts = []
    for seq, time_us in ((1, 1_700_000_000_000_000), (2, 1_700_000_000_000_001), (3, 5)):
        text = canonical_text(time_us, seq, event.tail)
        assert text == _reference_canonical(time_us, seq, raw)
        expected = hmac.new(KEY, prev + text.encode("utf-8"), hashlib.sha256).digest()
        assert link(hmac_sha256(KEY), prev, text) == expected
        prev = expected
        texts.append(text)
    # fixed known answer for the third link (computed once with hmac/hashlib above)
    assert texts[2].startswith("0000000000000005\x1f3\x1falice\x1fregistry.approve\x1f")
    assert len(prev.hex()) == 64


def test_known_answer_vector() -> None:
    event = AuditEvent("a.b", "u", details={"k": 1})
    text = canonical_text(1, 1, event.tail)
    assert text == '0000000000000001\x1f1\x1fu\x1fa.b\x1f\x1fok\x1f\x1f\x1f\x1f{}\x1f{"k":1}'
    digest = hmac.new(bytes(32), bytes(32) + text.encode(), hashlib.sha256).hexdigest()
    assert link(hmac_sha256(bytes(32)), GENESIS, text).hex() == digest


def test_parse_round_trips_every_field() -> None:
    event = AuditEvent(
        "gateway.predict",
        "key-1",
        resource="model:m@v1",
        outcome="blocked",
        source="::1",
        input_digest="sha256:00",
        latency_ms=0.25,
        verdicts={"g": "block"},
        details={"status": 403, "nested": {"a": [1, 2]}},
    )
    fields = parse_canonical(canonical_text(42, 7, event.tail))
    assert fields.time_us == 42 and fields.seq == 7
    assert (fields.actor, fields.action, fields.resource, fields.outcome) == (
        "key-1",
        "gateway.predict",
        "model:m@v1",
        "blocked",
    )
    assert fields.latency_ms == 0.25 and fields.verdicts == {"g": "block"}
    assert fields.details == {"status": 403, "nested": {"a": [1, 2]}}
    with pytest.raises(ValueError, match="expected 11 fields"):
        parse_canonical("1\x1f2")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"actor": "a\x1fb"}, "control character"),
        ({"resource": "x\ny"}, "control character"),
        ({"actor": ""}, "needs an actor"),
        ({"action": ""}, "needs an action"),
        ({"latency_ms": float("nan")}, "finite"),
        ({"latency_ms": -1}, "finite"),
        ({"details": {"x": object()}}, "plain JSON"),
        ({"details": {"x": float("inf")}}, "plain JSON"),
        ({"source": "\ud800"}, "not valid Unicode"),
    ],
)
def test_invalid_events_are_refused(kwargs: dict[str, object], needle: str) -> None:
    base: dict[str, object] = {"action": "a", "actor": "u"}
    with pytest.raises(ConfigError, match=needle):
        AuditEvent(**{**base, **kwargs})  # type: ignore[arg-type]


def test_control_characters_inside_json_are_escaped_not_refused() -> None:
    event = AuditEvent("a", "u", details={"text": "line\nbreak\x1f"})
    assert "\n" not in event.tail and event.tail.count("\x1f") == 8
    assert parse_canonical(canonical_text(0, 1, event.tail)).details == {"text": "line\nbreak\x1f"}
