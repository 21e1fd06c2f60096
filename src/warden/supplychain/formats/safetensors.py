"""safetensors: validate the JSON header the way the reference (Rust) loader does, and stricter.

A safetensors file is ``u64 N`` (little endian), ``N`` bytes of UTF-8 JSON, then raw tensor
bytes. The format cannot run code, but a header that different loaders read differently is
an attack surface of its own: duplicate keys (Python's ``json`` keeps the last, others the
first or refuse), overlapping or gapped offsets (two tensors sharing bytes, or bytes no tensor
owns), trailing data after the last tensor (a polyglot payload), shapes whose byte size
overflows 64 bits (wraps in C/C++ readers). Each such header defect is a finding; the tensor
bytes are never read, so the time spent does not grow with the weights.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.scanner import FormatScanner, ScanContext

__all__ = ["DTYPE_BITS", "MAX_HEADER", "SCANNERS", "SafetensorsScanner", "check_header"]

MAX_HEADER = 100_000_000
"""Largest header the reference loader accepts (bytes)."""

DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
"""Every dtype of safetensors 0.8 (the 22 variants of its ``Dtype`` enum) and its bit width."""

_U64 = 1 << 64
_TENSOR_KEYS = frozenset({"dtype", "shape", "data_offsets"})
_MAX_EXAMPLES = 10

_REMEDIATION = (
    "Re-save the tensors with the reference safetensors library (which rejects this header) "
    "from a trusted copy, and do not load this file with permissive third-party readers."
)


@dataclass
class _Issues:
    """Header defects by rule, with a few examples each."""

    by_rule: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, rule: str, **example: Any) -> None:
        self.by_rule.setdefault(rule, []).append(example)


_RULES: dict[str, tuple[Severity, str]] = {
    "safetensors.truncated": (Severity.MEDIUM, "header length points past the end of the file"),
    "safetensors.invalid-header": (Severity.MEDIUM, "header is not a well-formed JSON object"),
    "safetensors.header-padding": (
        Severity.LOW,
        "header is padded with characters other than spaces",
    ),
    "safetensors.duplicate-key": (
        Severity.HIGH,
        "header repeats a key; loaders disagree on which entry wins",
    ),
    "safetensors.metadata": (Severity.MEDIUM, "__metadata__ is not a string-to-string map"),
    "safetensors.tensor-entry": (
        Severity.MEDIUM,
        "tensor entry lacks dtype/shape/data_offsets or has other keys or wrong types",
    ),
    "safetensors.dtype": (Severity.MEDIUM, "tensor has a dtype safetensors does not define"),
    "safetensors.shape-overflow": (
        Severity.HIGH,
        "tensor shape × item size overflows 64 bits (wraps in C/C++ readers)",
    ),
    "safetensors.size-mismatch": (
        Severity.HIGH,
        "tensor byte range does not match its shape and dtype",
    ),
    "safetensors.overlap": (Severity.HIGH, "tensor byte ranges overlap"),
    "safetensors.gap": (
        Severity.HIGH,
        "tensor byte ranges leave unowned bytes (do not start at 0 or are not contiguous)",
    ),
    "safetensors.trailing-bytes": (
        Severity.HIGH,
        "bytes after the last tensor; a second payload can hide there",
    ),
}
"""Rule id → (severity, title)."""


def check_header(
    header: bytes, data_len: int, check: Callable[[], None] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Validate a safetensors header (the ``N`` JSON bytes) against a data section of ``data_len``.

    Returns rule id → examples (empty when the header is sound). ``check`` is an optional
    zero-argument callable called periodically (time limits). Never raises for bad input.
    """
    issues = _Issues()
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.add("safetensors.invalid-header", error=f"not UTF-8 at byte {exc.start}")
        return issues.by_rule
    if not text.startswith("{"):
        issues.add("safetensors.invalid-header", error="header does not start with '{'")
        return issues.by_rule

    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    def reject_constant(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    decoder = json.JSONDecoder(object_pairs_hook=pairs, parse_constant=reject_constant)
    try:
        obj, end = decoder.raw_decode(text)
    except (ValueError, RecursionError) as exc:
        issues.add("safetensors.invalid-header", error=str(exc)[:200])
        return issues.by_rule
    rest = text[end:]
    if rest.strip(" \t\r\n"):
        issues.add("safetensors.invalid-header", error=f"data after the JSON object at {end}")
        return issues.by_rule
    if rest.strip(" "):
        issues.add("safetensors.header-padding", padding=repr(rest[:20]))
    for key in duplicates[:_MAX_EXAMPLES]:
        issues.add("safetensors.duplicate-key", key=key)
    if not isinstance(obj, dict):
        issues.add("safetensors.invalid-header", error="header is not a JSON object")
        return issues.by_rule

    spans: list[tuple[int, int, str]] = []
    for n, (name, entry) in enumerate(obj.items()):
        if check is not None and n % 1000 == 0:
            check()
        if not _encodable(name):
            issues.add("safetensors.invalid-header", error="key is not valid Unicode", key=name)
            continue
        if name == "__metadata__":
            _check_metadata(entry, issues)
            continue
        span = _check_tensor(name, entry, issues)
        if span is not None:
            spans.append((span[0], span[1], name))
    _check_layout(spans, data_len, issues)
    return issues.by_rule


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_metadata(entry: Any, issues: _Issues) -> None:
    if not isinstance(entry, dict):
        issues.add("safetensors.metadata", error=f"__metadata__ is a {type(entry).__name__}")
        return
    for key, value in entry.items():
        if not isinstance(value, str) or not _encodable(key) or not _encodable(value):
            issues.add("safetensors.metadata", key=key, value_type=type(value).__name__)


def _is_uint(value: Any) -> bool:
    return type(value) is int and value >= 0


def _check_tensor(name: str, entry: Any, issues: _Issues) -> tuple[int, int] | None:
    """Check one tensor entry; return its ``(begin, end)`` when the offsets are usable."""
    if not isinstance(entry, dict):
        issues.add("safetensors.tensor-entry", tensor=name, error="entry is not an object")
        return None
    keys = set(entry)
    if keys != _TENSOR_KEYS:
        issues.add(
            "safetensors.tensor-entry",
            tensor=name,
            missing=sorted(_TENSOR_KEYS - keys),
            extra=sorted(keys - _TENSOR_KEYS)[:10],
        )
    dtype = entry.get("dtype")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    bits: int | None = None
    if not isinstance(dtype, str):
        issues.add("safetensors.tensor-entry", tensor=name, error="dtype is not a string")
    elif dtype not in DTYPE_BITS:
        issues.add("safetensors.dtype", tensor=name, dtype=dtype[:50])
    else:
        bits = DTYPE_BITS[dtype]
    if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
        issues.add("safetensors.tensor-entry", tensor=name, error="shape is not a list of ints ≥ 0")
        shape = None
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_uint(o) for o in offsets):
        issues.add(
            "safetensors.tensor-entry", tensor=name, error="data_offsets is not [begin, end]"
        )
        return None
    begin, end = offsets
    if end < begin:
        issues.add("safetensors.overlap", tensor=name, begin=begin, end=end, error="end < begin")
        return None
    if shape is not None and bits is not None:
        nbits = _nbits(shape, bits)
        if nbits is None:
            issues.add("safetensors.shape-overflow", tensor=name, shape=shape[:8], dtype=dtype)
        elif nbits % 8 or nbits // 8 != end - begin:
            issues.add(
                "safetensors.size-mismatch",
                tensor=name,
                shape=shape[:8],
                dtype=dtype,
                expected_bytes=nbits / 8,
                actual_bytes=end - begin,
            )
    return begin, end


def _nbits(shape: list[int], bits: int) -> int | None:
    """Bits in a tensor, or ``None`` when a running product passes ``2**64 - 1``.

    Folds left like the reference loader's ``checked_mul``, so ``[2**40, 2**40, 0]`` overflows
    even though its true product is 0.
    """
    total = 1
    for dim in shape:
        total *= dim
        if total >= _U64:
            return None
    total *= bits
    return None if total >= _U64 else total


def _check_layout(spans: list[tuple[int, int, str]], data_len: int, issues: _Issues) -> None:
    """Offsets must tile ``[0, data_len)`` exactly: sorted, contiguous, from 0, no tail."""
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin < pos:
            issues.add("safetensors.overlap", tensor=name, begin=begin, end=end, previous_end=pos)
        elif begin > pos:
            issues.add("safetensors.gap", tensor=name, begin=begin, expected=pos)
        pos = max(pos, end)
    if pos > data_len:
        issues.add("safetensors.truncated", data_end=pos, data_len=data_len)
    elif pos < data_len:
        issues.add("safetensors.trailing-bytes", data_end=pos, data_len=data_len)


class SafetensorsScanner:
    """``safetensors``: ``u64`` header length, then ``{``; checks the header only."""

    name = "safetensors"

    def sniff(self, head: bytes) -> bool:
        if len(head) < 10 or head[8:9] != b"{":
            return False
        n = int.from_bytes(head[:8], "little")
        if not 2 <= n <= MAX_HEADER:
            return False
        after = head[9:].lstrip(b" \t\r\n")[:1]
        return after in (b'"', b"}", b"")

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        stream.seek(0, io.SEEK_END)
        size = stream.tell()
        stream.seek(0)
        n = int.from_bytes(stream.read(8), "little")
        if 8 + n > size:
            yield _finding(ctx, "safetensors.truncated", [{"header_len": n, "file_size": size}])
            return
        header = stream.read(n)
        for rule, examples in check_header(header, size - 8 - n, ctx.check_time).items():
            yield _finding(ctx, rule, examples)


def _finding(ctx: ScanContext, rule: str, examples: list[dict[str, Any]]) -> Finding:
    severity, title = _RULES[rule]
    return ctx.finding(
        rule,
        severity,
        f"safetensors: {title}",
        summary=f"{len(examples)} occurrence(s) in the header.",
        evidence={"count": len(examples), "examples": examples[:_MAX_EXAMPLES]},
        remediation=_REMEDIATION,
    )


SCANNERS: list[FormatScanner] = [SafetensorsScanner()]
