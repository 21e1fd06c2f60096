"""Pickle streams: plain pickles, legacy torch files, joblib dumps (raw and zlib-compressed).

A stream is simulated by :class:`~warden.supplychain.pickles.vm.PickleMachine` and judged by
:mod:`warden.supplychain.pickles.rules`; nothing is imported or unpickled. Consecutive pickles
are all analysed: a legacy (non-zip) ``torch.save`` file is five pickles followed by raw
storage bytes; anything after the first pickle of any other file is either another pickle
(``pickle.multiple-streams``) or trailing garbage (``pickle.trailing-bytes``). joblib's raw
array data, written inside the stream after each ``NumpyArrayWrapper``, is skipped by size (or,
for object arrays, analysed as the nested pickle it is).

Rule ids (``scan.`` + id): see :mod:`warden.supplychain.pickles.rules` for the global and
call rules; this module adds ``pickle.malformed`` (MEDIUM), ``pickle.malformed-inert`` (LOW),
``pickle.trailing-bytes`` (MEDIUM), ``pickle.multiple-streams`` (LOW/MEDIUM),
``pickle.nested`` (MEDIUM), ``pickle.unverified-load`` (HIGH), ``pickle.joblib-layout``
(HIGH) and ``pickle.limit`` (MEDIUM).
"""

from __future__ import annotations

import io
import logging
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

from warden.assess.finding import Finding, Severity
from warden.supplychain.pickles.rules import Issue, evaluate, resolve
from warden.supplychain.pickles.vm import (
    OPCODE_NAMES,
    Blob,
    Call,
    Global,
    PickleMachine,
    PickleTrace,
    Readable,
    nested_kind,
)
from warden.supplychain.scanner import FormatScanner, ScanContext, ScanLimitExceeded

__all__ = [
    "SCANNERS",
    "JoblibZlibFormat",
    "PickleFormat",
    "probe_pickle",
    "probe_wants",
    "scan_pickle_stream",
]

log = logging.getLogger(__name__)

TORCH_MAGIC: Final = 0x1950A86A20F9469CFC6C
"""The first pickle of a legacy (non-zip) ``torch.save`` file holds this number."""
TORCH_LEGACY_PICKLES: Final = 5
"""magic, protocol version, sys info, the object, storage keys; raw storages follow."""

_REMEDIATION: Final = (
    "Do not load this file with pickle, torch.load(weights_only=False) or joblib. Obtain the "
    "model from a trusted source in a format that cannot execute code (safetensors, ONNX), "
    "and verify its signature."
)
_LOADERS: Final = frozenset({"torch.storage._load_from_bytes"})
_CALL_OPS: Final = frozenset({"REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"})
_DOTTED: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_ZF_HEADER: Final = 2 + 19  # joblib < 0.10: b"ZF" + hex length padded to 19 characters


@dataclass
class _Analysis:
    """What analysing one stream produced."""

    accepted: bool = False
    """Whether the content is a pickle (always true outside probe mode)."""
    findings: list[Finding] = field(default_factory=list)
    """Findings, in report order."""
    has_globals: bool = False
    """Whether any pickle in the stream imports a global."""
    interrupted: BaseException | None = None
    """A limit that stopped the analysis; raised by the caller after the findings."""


def _stream_size(stream: object) -> int | None:
    """Bytes left in ``stream`` when that is cheap to know (files, BytesIO), else None."""
    try:
        if isinstance(stream, io.BytesIO):
            pos = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(pos)
            return end - pos
        if isinstance(stream, io.BufferedReader | io.FileIO):
            return os.fstat(stream.fileno()).st_size - stream.tell()
    except (OSError, ValueError, AttributeError):
        return None
    return None


def _is_torch_magic(trace: PickleTrace) -> bool:
    return trace.stopped and type(trace.result) is int and trace.result == TORCH_MAGIC


def _evidence(issue: Issue, count: int, label: str) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "format": label,
        "opcode": issue.opcode,
        "offset": issue.offset,
        "pickle_index": issue.pickle_index,
        "count": count,
        "reason": issue.reason,
    }
    if issue.rule in ("pickle.dangerous-global", "pickle.unknown-global"):
        ev["global"] = issue.key
    if issue.detail:
        ev["detail"] = issue.detail[:200]
    return ev


def _aggregate(ctx: ScanContext, issues: list[Issue], label: str) -> list[Finding]:
    """One finding per (rule, key): the worst severity, the first occurrence, a count."""
    groups: dict[tuple[str, str], list[Issue]] = {}
    for issue in issues:
        groups.setdefault((issue.rule, issue.key), []).append(issue)
    out: list[tuple[int, int, int, Finding]] = []
    for (rule, _key), group in groups.items():
        first = min(group, key=lambda i: (i.pickle_index, i.offset))
        worst = max(group, key=lambda i: i.severity)
        finding = ctx.finding(
            rule,
            worst.severity,
            worst.title,
            summary=f"{worst.reason}. Seen {len(group)} time(s); first at byte {first.offset}"
            f" of pickle {first.pickle_index}.",
            evidence=_evidence(first, len(group), label),
            remediation=_REMEDIATION,
        )
        out.append((-int(worst.severity), first.pickle_index, first.offset, finding))
    out.sort(key=lambda t: t[:3])
    return [f for *_, f in out]


class _Nested:
    """Scans values that look like embedded pickles or archives, as the machine finds them."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        self.findings: list[Finding] = []
        self.interrupted: BaseException | None = None

    def __call__(self, offset: int, data: bytes, kind: str) -> bool:
        ctx = self.ctx
        name = f"<{kind}@{offset}>"
        if kind != "pickle":
            self.findings.extend(ctx.scan_member_bytes(name, data))
            return True
        child = ctx.child(name)
        if child.depth > ctx.limits.max_depth:
            self.findings.append(
                child.finding(
                    "limit.depth",
                    Severity.MEDIUM,
                    f"pickles nested deeper than {ctx.limits.max_depth} levels; not analysed",
                )
            )
            return False
        result = _analyse(io.BytesIO(data), child, probe=True, label="nested-pickle")
        if result.accepted and result.has_globals:
            self.findings.append(
                ctx.finding(
                    "pickle.nested",
                    Severity.MEDIUM,
                    "a string or bytes value holds another pickle that imports globals",
                    summary="Code that unpickles this value runs whatever it holds; its own "
                    "findings are reported under the nested path.",
                    evidence={"offset": offset, "length": len(data), "nested_path": child.path},
                    remediation=_REMEDIATION,
                )
            )
        self.findings.extend(result.findings)
        if result.interrupted is not None and self.interrupted is None:
            self.interrupted = result.interrupted
        return True


def _scanned_bytes(value: Any) -> bool:
    """Whether ``value`` is literal bytes the nested-content scan has seen."""
    if isinstance(value, Call) and isinstance(value.func, Global):
        # protocol <= 2 writes bytes as _codecs.encode(latin-1 str, "latin1")
        args = value.args
        if (
            resolve(value.func.module, value.func.name) == "_codecs.encode"
            and type(args) is tuple
            and len(args) == 2
            and args[1] in ("latin1", "latin-1")
        ):
            value = args[0]
            if type(value) is str:
                try:
                    value = value.encode("latin-1")
                except UnicodeEncodeError:
                    return False
    if isinstance(value, bytes | bytearray):
        return nested_kind(bytes(value[:64])) is not None
    return isinstance(value, Blob) and value.scanned


def _loader_issues(traces: list[PickleTrace]) -> list[Issue]:
    """Allowlisted loaders (``torch.storage._load_from_bytes``) must get scannable bytes."""
    out: list[Issue] = []
    for trace in traces:
        for call in trace.calls:
            func = call.func
            if call.opcode != "REDUCE" or not isinstance(func, Global):
                continue
            if resolve(func.module, func.name) not in _LOADERS:
                continue
            args = call.args
            if _scanned_bytes(args[0] if type(args) is tuple and args else None):
                continue
            out.append(
                Issue(
                    "pickle.unverified-load",
                    Severity.HIGH,
                    f"pickle hands data that could not be analysed to {func.path}",
                    "the loader unpickles its argument with weights_only=False",
                    f"unverified {func.path}",
                    call.opcode,
                    call.offset,
                    call.pickle_index,
                )
            )
    return out


def _accept_probe(first: PickleTrace, issues: list[Issue]) -> bool:
    """Whether unrecognised content that is not exactly one whole pickle is a pickle worth
    reporting (never plain text/binaries; a whole stream that is one pickle always is).

    The pickle must call something (``REDUCE``/``INST``/``OBJ``/``NEWOBJ``) or import a
    dangerous global before it stops or fails: text whose first line happens to parse as
    ``GLOBAL`` or ``PERSID`` is not.
    """
    if any(c.opcode in _CALL_OPS for c in first.calls):
        return True
    importable = {resolve(g.module, g.name) for g in first.globals if _DOTTED.fullmatch(g.path)}
    return any(i.rule == "pickle.dangerous-global" and i.key in importable for i in issues)


def _is_pickle_member(first: PickleTrace, at_end: bool) -> bool:
    """Whether an archive member that starts with ``PROTO`` is a pickle rather than data.

    Tensor storages in torch zips and other binary members begin with arbitrary bytes; one in
    ~16,000 begins like a protocol 2-5 pickle (an int64 step counter of 640 is
    ``b"\x80\x02\x00…"``). Such data breaks within a few opcodes. A real pickle either parses
    to its end, or names a global that can be imported: running any code from a pickle needs a
    callable found by module and name (the copyreg extension registry is empty by default), and
    a name whose parts are not all identifiers cannot be imported.
    """
    if first.stopped and at_end:
        return True
    return any(all(part.isidentifier() for part in g.path.split(".")) for g in first.globals)


def _error_finding(ctx: ScanContext, trace: PickleTrace, label: str) -> Finding | None:
    err = trace.error
    if err is None:
        return None
    ev = {
        "format": label,
        "offset": err.offset,
        "pickle_index": trace.index,
        "error": err.message[:200],
    }
    if err.kind == "limit":
        return ctx.finding(
            "pickle.limit",
            Severity.MEDIUM,
            f"pickle analysis stopped early: {err.message}"[:200],
            evidence=ev,
            remediation="The artifact was only partly analysed: treat it as unverified.",
        )
    if err.kind == "joblib":
        return ctx.finding(
            "pickle.joblib-layout",
            Severity.HIGH,
            "joblib array data of unknown size: the rest of the stream could not be analysed",
            summary=err.message,
            evidence=ev,
            remediation=_REMEDIATION,
        )
    if trace.code_reached:
        return ctx.finding(
            "pickle.malformed",
            Severity.MEDIUM,
            f"pickle does not parse ({err.message}) after code-capable opcodes ran"[:200],
            summary="A loader would have imported or called what precedes the error "
            "(reported separately) and then failed.",
            evidence=ev,
            remediation=_REMEDIATION,
        )
    if ctx.depth > 0:
        # An archive member that starts like a pickle but breaks before any import or call is
        # data, not a pickle: tensor storages in torch zips begin with arbitrary bytes (an int64
        # step counter of 640 is b"\x80\x02\x00..."). No loader can run anything from it.
        return None
    return ctx.finding(
        "pickle.malformed-inert",
        Severity.LOW,
        f"pickle does not parse ({err.message})"[:200],
        summary="No import or call was reached before the error.",
        evidence=ev,
        remediation="Regenerate the file; a pickle that cannot be parsed cannot be vouched for.",
    )


def _analyse(stream: Readable, ctx: ScanContext, *, probe: bool, label: str) -> _Analysis:
    """Simulate every pickle in ``stream`` (from its current position) and judge them."""
    nested = _Nested(ctx)
    machine = PickleMachine(
        stream,
        size=_stream_size(stream),
        max_ops=ctx.limits.max_pickle_ops,
        max_memo=ctx.limits.max_pickle_memo,
        check_time=ctx.check_time,
        nested_hook=nested,
        max_nested=ctx.limits.max_member_bytes,
    )
    result = _Analysis()
    first = machine.run(0)
    if not probe and ctx.depth > 0 and not _is_pickle_member(first, machine.at_end()):
        return result
    if probe:
        if first.ops <= 1 and first.error is not None:
            return result
        whole = first.stopped and machine.at_end()
        # without an import or a call, only a whole clean pickle is accepted: no need to judge
        if not whole and (not first.code_reached or not _accept_probe(first, evaluate([first]))):
            return result
        ctx.record_format("pickle")
    result.accepted = True
    traces = [first]
    legacy_torch = _is_torch_magic(first)
    trailing_at = -1
    last = first
    while last.stopped and last.interrupted is None:
        if legacy_torch and len(traces) == TORCH_LEGACY_PICKLES:
            break  # raw storage bytes follow
        if machine.at_end():
            break
        nxt = machine.run(len(traces))
        if not legacy_torch and not nxt.stopped and not nxt.code_reached:
            trailing_at = nxt.start
            result.interrupted = nxt.interrupted
            break
        traces.append(nxt)
        last = nxt
    if legacy_torch and len(traces) < TORCH_LEGACY_PICKLES and last.stopped:
        result.findings.append(
            ctx.finding(
                "pickle.malformed",
                Severity.MEDIUM,
                f"legacy torch file ends after {len(traces)} of its {TORCH_LEGACY_PICKLES} pickles",
                evidence={"format": label, "offset": last.end},
                remediation=_REMEDIATION,
            )
        )
    issues = evaluate(traces)
    issues.extend(_loader_issues(traces))
    result.has_globals = any(t.globals for t in traces)
    result.findings.extend(_aggregate(ctx, issues, label))
    for trace in traces:
        finding = _error_finding(ctx, trace, label)
        if finding is not None:
            result.findings.append(finding)
    if len(traces) > 1 and not legacy_torch:
        extra_globals = sum(len(t.globals) for t in traces[1:])
        result.findings.append(
            ctx.finding(
                "pickle.multiple-streams",
                Severity.MEDIUM if extra_globals else Severity.LOW,
                f"file holds {len(traces)} consecutive pickles; loaders read only the first",
                summary="Later pickles are invisible to a plain pickle.load but reachable by "
                "code that loads repeatedly; each was analysed.",
                evidence={
                    "format": label,
                    "pickles": len(traces),
                    "offsets": [t.start for t in traces[:20]],
                    "globals_after_first": extra_globals,
                },
                remediation=_REMEDIATION,
            )
        )
    if trailing_at >= 0:
        result.findings.append(
            ctx.finding(
                "pickle.trailing-bytes",
                Severity.MEDIUM,
                "bytes follow the pickle's STOP opcode and are not another pickle",
                summary="Loaders ignore them; data hidden after a pickle can carry a second "
                "payload for a different parser.",
                evidence={"format": label, "offset": trailing_at},
                remediation=_REMEDIATION,
            )
        )
    result.findings.extend(nested.findings)
    for trace in traces:
        if trace.interrupted is not None and result.interrupted is None:
            result.interrupted = trace.interrupted
    if result.interrupted is None:
        result.interrupted = nested.interrupted
    return result


def _scan(stream: Readable, ctx: ScanContext, *, probe: bool, label: str) -> Iterator[Finding]:
    result = _analyse(stream, ctx, probe=probe, label=label)
    yield from result.findings
    if result.interrupted is not None:
        raise result.interrupted  # the dispatcher reports the limit (scan.limit.time …)


def scan_pickle_stream(
    stream: BinaryIO, ctx: ScanContext, *, label: str = "pickle"
) -> Iterator[Finding]:
    """Analyse the pickle(s) starting at the stream's current position; yield findings.

    For other formats that embed pickles (numpy object arrays, nested pickles). Never
    imports, unpickles or calls anything. When a time limit stops the analysis, the findings
    gathered so far are yielded and the :class:`ScanLimitExceeded` is raised after them.
    """
    yield from _scan(stream, ctx, probe=False, label=label)


def probe_pickle(stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
    """Analyse content no format recognised, if it is a pickle (protocol 0/1 have no magic).

    Text files and random binaries yield nothing and are not recorded: the probe gives up at
    the first parse error unless the content stopped cleanly like a pickle or reached a call
    or a dangerous global before the error.
    """
    stream.seek(0)
    first = stream.read(1)
    stream.seek(0)
    if not probe_wants(first):
        return  # the first byte is no opcode: a pickle loader would fail before doing anything
    yield from _scan(stream, ctx, probe=True, label="pickle")


def probe_wants(head: bytes) -> bool:
    """Whether :func:`probe_pickle` would look past the first byte of content ``head``."""
    return bool(head) and head[0] in OPCODE_NAMES


class PickleFormat:
    """Pickles with protocol 2–5 (``PROTO`` at byte 0); protocol 0/1 come via the probe."""

    name = "pickle"
    first_bytes = b"\x80"

    def sniff(self, head: bytes) -> bool:
        """``\\x80`` + protocol 2..5 + a valid opcode."""
        return len(head) >= 3 and head[0] == 0x80 and 2 <= head[1] <= 5 and head[2] in OPCODE_NAMES

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        """Analyse every pickle in the stream."""
        yield from _scan(stream, ctx, probe=False, label=self.name)


_CHUNK: Final = 1 << 16


class _Inflater:
    """A forward-only ``read(n)`` over a zlib stream, its output counted against the limits."""

    def __init__(self, raw: BinaryIO, ctx: ScanContext) -> None:
        self._raw = raw
        self._ctx = ctx
        self._z = zlib.decompressobj()
        self._pending = b""
        self._in = 0
        self._out = 0
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        n = size if size > 0 else _CHUNK
        while len(self._pending) < n and not self._done:
            if self._z.unconsumed_tail:
                data = self._z.decompress(self._z.unconsumed_tail, _CHUNK)
            else:
                chunk = self._raw.read(_CHUNK)
                if not chunk:
                    data = self._z.flush()
                    self._done = True
                else:
                    self._in += len(chunk)
                    data = self._z.decompress(chunk, _CHUNK)
            if self._z.eof:
                self._done = True
            self._account(len(data))
            self._pending += data
        out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def _account(self, n: int) -> None:
        self._out += n
        self._ctx.count_bytes(n)
        limits = self._ctx.limits
        if self._out > (1 << 20) and self._out > limits.max_ratio * max(self._in, 1):
            raise ScanLimitExceeded(
                "archive.bomb",
                f"zlib stream expands more than {limits.max_ratio:g}x (max_ratio); "
                "possible decompression bomb",
                Severity.HIGH,
            )


def _zlib_pickle_head(data: bytes) -> bool:
    """Whether ``data`` starts a zlib stream whose content starts like a pickle."""
    if len(data) < 2 or (data[0] & 0x0F) != 8 or ((data[0] << 8) | data[1]) % 31:
        return False
    if data[1] & 0x20:  # preset dictionary: not what joblib writes
        return False
    try:
        head = zlib.decompressobj().decompress(data, 8)
    except zlib.error:
        return False
    return len(head) >= 3 and head[0] == 0x80 and 2 <= head[1] <= 5


class JoblibZlibFormat:
    """joblib's zlib-compressed dumps (``compress=True``/``3``, and old ``ZF`` files)."""

    name = "joblib-zlib"
    first_bytes = bytes(range(0x08, 0x100, 0x10)) + b"Z"
    """zlib's CMF byte names method 8 (deflate) in its low bits; old dumps start ``ZF``."""

    def sniff(self, head: bytes) -> bool:
        """A zlib stream (or ``ZF`` header + one) whose content starts like a pickle."""
        if head.startswith(b"ZF"):
            body = head[_ZF_HEADER:]
            return _zlib_pickle_head(body.lstrip(b" ")[:4096])
        return _zlib_pickle_head(head)

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        """Decompress (bounded) and analyse the pickle inside."""
        head = stream.read(_ZF_HEADER + 1)
        if head.startswith(b"ZF"):
            stream.seek(_ZF_HEADER + (1 if head[_ZF_HEADER:] == b" " else 0))
        else:
            stream.seek(0)
        child = ctx.child("<zlib>")
        try:
            yield from _scan(_Inflater(stream, ctx), child, probe=False, label=self.name)
        except zlib.error as exc:
            yield ctx.finding(
                "pickle.malformed",
                Severity.MEDIUM,
                f"joblib zlib stream is corrupt: {exc}"[:200],
                evidence={"format": self.name},
                remediation=_REMEDIATION,
            )


SCANNERS: list[FormatScanner] = [PickleFormat(), JoblibZlibFormat()]
