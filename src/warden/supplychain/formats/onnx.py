"""ONNX: walk the ModelProto wire format for custom operators and external-data paths.

ONNX has no magic bytes; :meth:`OnnxScanner.sniff` accepts a stream only when its head parses
as the start of a ``ModelProto`` (``ir_version`` first, known fields with the right wire types,
valid UTF-8 strings, and the ``graph`` field beginning inside the head with a plausible
``GraphProto`` prefix). The sniff runs on every stream, tensor data included, so it is strict
and cheap.

The scan walks the model with :mod:`warden.supplychain.protowire` and an explicit stack (graphs
nest through ``If``/``Loop``/``Scan`` attributes, so nesting depth is attacker-controlled):
every node of the main graph, of subgraphs, of training graphs and of model-local functions.
Two things can hurt the loader:

* operators from domains no standard runtime defines run code from a custom-op library the
  user is told to install (``onnx.custom-op-domain``); a few operators run Python directly
  (``onnx.code-op``);
* tensors with ``data_location = EXTERNAL`` name a file that loaders open and read. Absolute
  paths, ``..`` escapes and symlinks that leave the model's directory read arbitrary files
  (CVE-2024-27318, CVE-2024-5187 in ``onnx``) (``onnx.external-data-escape``). Files are never
  opened: paths are judged lexically, and inside a real directory with ``os.path.realpath``.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.protowire import LEN, MAX_DEPTH, VARINT, ProtoError, WireReader
from warden.supplychain.scanner import FormatScanner, ScanContext

__all__ = ["CODE_OPS", "SCANNERS", "STANDARD_DOMAINS", "OnnxScanner", "external_path_problem"]

STANDARD_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
        "com.ms.internal.nhwc",
    }
)
"""Operator domains implemented by ONNX itself or built into ONNX Runtime."""

CODE_OPS = frozenset({"PythonOp", "PythonOpGrad", "PyOp", "PyFunc"})
"""Operator types that call Python functions named in their attributes (ORT training's
``PythonOp``/``PythonOpGrad``, onnxruntime-extensions' ``PyOp``)."""

_MAX_IR_VERSION = 64
_MAX_STRING = 1 << 20
_MAX_EXAMPLES = 10

# Field number → wire type of ModelProto, GraphProto and NodeProto fields, for the sniff.
_MODEL_FIELDS = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT, 6: LEN, 7: LEN, 8: LEN, 14: LEN,
                 20: LEN, 25: LEN, 26: LEN}  # fmt: skip
_MODEL_STRINGS = frozenset({2, 3, 4, 6})
_GRAPH_FIELDS = frozenset({1, 2, 5, 10, 11, 12, 13, 14, 15, 16})
_NODE_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN, 6: LEN, 7: LEN, 8: LEN, 9: LEN, 10: LEN}
_NODE_STRINGS = frozenset({1, 2, 3, 4, 6, 7, 8})


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _sniff_model(head: bytes) -> bool:
    if len(head) < 4 or head[0] != 0x08:
        return False
    reader = WireReader(head)
    seen_graph = False
    for i, f in enumerate(reader.fields(partial=True)):
        if i == 0 and (f.number != 1 or not 1 <= f.value <= _MAX_IR_VERSION):
            return False
        if _MODEL_FIELDS.get(f.number) != f.wire:
            return False
        if f.number == 7:
            seen_graph = True
            end = min(f.end, len(head))
            if not _sniff_graph(reader, f.offset, end, partial=f.truncated):
                return False
        elif f.number in _MODEL_STRINGS and (
            f.truncated or not _valid_utf8(reader.read(f.offset, f.value))
        ):
            return False
        if f.truncated:
            break
    return seen_graph


def _sniff_graph(reader: WireReader, start: int, end: int, *, partial: bool) -> bool:
    fields = 0
    for f in reader.fields(start, end, partial=partial):
        fields += 1
        if f.number not in _GRAPH_FIELDS or f.wire != LEN:
            return False
        if f.number == 1 and not f.truncated and not _sniff_node(reader, f.offset, f.end):
            return False
        if f.number == 2 and not f.truncated and not _valid_utf8(reader.read(f.offset, f.value)):
            return False
    return fields > 0 or end - start == 0


def _sniff_node(reader: WireReader, start: int, end: int) -> bool:
    for f in reader.fields(start, end):
        if _NODE_FIELDS.get(f.number) != f.wire:
            return False
        if f.number in _NODE_STRINGS and not _valid_utf8(reader.read(f.offset, f.value)):
            return False
    return True


# --- external data ------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")


def external_path_problem(location: str, directory: Path | None) -> tuple[str, Severity] | None:
    """Why an external-data ``location`` is unsafe or unusable, or ``None`` when it is fine.

    Returns ``(reason, severity)``: HIGH for paths that leave the model directory (absolute,
    ``..``, or a symlink resolving outside ``directory``), LOW for a missing file. With no
    ``directory`` (archive members) the path is judged lexically only. Nothing is opened.
    """
    if not location:
        return "external data without a location", Severity.LOW
    if "\x00" in location:
        return "NUL byte in location", Severity.HIGH
    normal = location.replace("\\", "/")
    if normal.startswith("/") or _DRIVE.match(normal) or "://" in normal:
        return "absolute path or URL", Severity.HIGH
    collapsed = posixpath.normpath(normal)
    if collapsed == ".." or collapsed.startswith("../"):
        return "path escapes the model directory with '..'", Severity.HIGH
    if directory is None:
        return None
    base = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(base, collapsed))
    if os.path.commonpath([base, target]) != base:
        return "symlink resolves outside the model directory", Severity.HIGH
    if not os.path.isfile(target):
        return "external data file is missing", Severity.LOW
    return None


# --- walk ---------------------------------------------------------------------------------


@dataclass
class _Model:
    """What the walk collected."""

    ops: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(domain, op_type) → where used (first few)."""
    op_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    functions: set[tuple[str, str]] = field(default_factory=set)
    """Model-local functions (domain, name)."""
    externals: list[tuple[str, str]] = field(default_factory=list)
    """(tensor name, location) of external-data tensors."""
    has_graph: bool = False


# Work items: (kind, start, end, depth, where)
_Item = tuple[str, int, int, int, str]
_ATTR_MESSAGES = {5: "tensor", 10: "tensor", 6: "graph", 11: "graph", 22: "sparse", 23: "sparse"}
"""AttributeProto field number → the kind of message it holds (t, tensors, g, graphs …)."""


def _walk(reader: WireReader, ctx: ScanContext) -> _Model:
    return _Walker(reader).run(ctx)


class _Walker:
    """One walk over a ModelProto: the reader, the stack of work items and what was found."""

    def __init__(self, reader: WireReader) -> None:
        self.reader = reader
        self.model = _Model()
        self.stack: list[_Item] = [("model", 0, reader.size, 0, "model")]

    def run(self, ctx: ScanContext) -> _Model:
        reader, stack = self.reader, self.stack
        steps = 0
        while stack:
            kind, start, end, depth, where = stack.pop()
            if depth > MAX_DEPTH:
                raise ProtoError(
                    f"subgraphs nested deeper than {MAX_DEPTH} levels (at …{where[-80:]})"
                )
            steps += 1
            if steps % 512 == 0:
                ctx.check_time()
            if kind == "model":
                self._model(start, end)
            elif kind == "graph":
                for n, f in enumerate(_messages(reader, start, end, {1, 5, 15})):
                    sub = {1: "node", 5: "tensor", 15: "sparse"}[f.number]
                    stack.append((sub, f.offset, f.end, depth + 1, _short(f"{where}/{sub}[{n}]")))
            elif kind == "node":
                self._node(start, end, depth, where)
            elif kind == "attr":
                self._attr(start, end, depth, where)
            elif kind == "tensor":
                self._tensor(start, end, where)
            elif kind == "sparse":
                for f in _messages(reader, start, end, {1, 2}):
                    stack.append(("tensor", f.offset, f.end, depth + 1, where))
            elif kind == "training":
                for f in _messages(reader, start, end, {1, 2}):
                    name = "initialization" if f.number == 1 else "algorithm"
                    stack.append(("graph", f.offset, f.end, depth + 1, _short(f"{where}/{name}")))
            elif kind == "function":
                self._function(start, end, depth, where)
        return self.model

    def _model(self, start: int, end: int) -> None:
        for f in self.reader.fields(start, end):
            if f.number == 1 and f.wire != VARINT:
                raise ProtoError("ir_version is not a varint")
            if f.number in (7, 20, 25) and f.wire != LEN:
                raise ProtoError(f"model field {f.number} is not a message")
            if f.number == 7:
                self.model.has_graph = True
                self.stack.append(("graph", f.offset, f.end, 1, "graph"))
            elif f.number == 20:
                self.stack.append(("training", f.offset, f.end, 1, "training_info"))
            elif f.number == 25:
                self.stack.append(("function", f.offset, f.end, 1, "function"))

    def _node(self, start: int, end: int, depth: int, where: str) -> None:
        reader, model = self.reader, self.model
        op_type = domain = name = ""
        attrs: list[tuple[int, int]] = []
        for f in reader.fields(start, end):
            if f.number in (3, 4, 7) and f.wire == LEN:
                text = reader.string(f, _MAX_STRING)
                if f.number == 3:
                    name = text
                elif f.number == 4:
                    op_type = text
                else:
                    domain = text
            elif f.number == 5:
                if f.wire != LEN:
                    raise ProtoError(f"{where}: attribute is not a message")
                attrs.append((f.offset, f.end))
        label = _short(f"{where}({op_type}{' ' + name if name else ''})")
        key = (domain, op_type)
        model.op_counts[key] = model.op_counts.get(key, 0) + 1
        places = model.ops.setdefault(key, [])
        if len(places) < _MAX_EXAMPLES:
            places.append(label)
        for a_start, a_end in attrs:
            self.stack.append(("attr", a_start, a_end, depth + 1, label))

    def _attr(self, start: int, end: int, depth: int, where: str) -> None:
        reader = self.reader
        name = ""
        subs: list[tuple[str, int, int]] = []
        for f in reader.fields(start, end):
            if f.number == 1 and f.wire == LEN:
                name = reader.string(f, _MAX_STRING)
            elif f.number in _ATTR_MESSAGES:
                if f.wire != LEN:
                    raise ProtoError(f"{where}: attribute field {f.number} is not a message")
                subs.append((_ATTR_MESSAGES[f.number], f.offset, f.end))
        for kind_name, s, e in subs:
            self.stack.append((kind_name, s, e, depth + 1, _short(f"{where}.{name}")))

    def _tensor(self, start: int, end: int, where: str) -> None:
        reader = self.reader
        name = ""
        external = False
        location: str | None = None
        for f in reader.fields(start, end):
            if f.number == 8 and f.wire == LEN:
                name = reader.string(f, _MAX_STRING)
            elif f.number == 14 and f.wire == VARINT:
                external = f.value == 1
            elif f.number == 13 and f.wire == LEN:
                key = value = ""
                for g in reader.fields(f.offset, f.end):
                    if g.number == 1 and g.wire == LEN:
                        key = reader.string(g, _MAX_STRING)
                    elif g.number == 2 and g.wire == LEN:
                        value = reader.string(g, _MAX_STRING)
                if key == "location":
                    location = value
        if external or location is not None:
            self.model.externals.append((name or where, location or ""))

    def _function(self, start: int, end: int, depth: int, where: str) -> None:
        reader = self.reader
        name = domain = ""
        children: list[_Item] = []
        for f in reader.fields(start, end):
            if f.number in (1, 10) and f.wire == LEN:
                text = reader.string(f, _MAX_STRING)
                if f.number == 1:
                    name = text
                else:
                    domain = text
            elif f.number in (7, 11):
                if f.wire != LEN:
                    raise ProtoError(f"{where}: function field {f.number} is not a message")
                kind = "node" if f.number == 7 else "attr"
                children.append((kind, f.offset, f.end, depth + 1, ""))
        self.model.functions.add((domain, name))
        label = f"{where}({domain}:{name})"
        for n, (kind, s, e, d, _) in enumerate(children):
            self.stack.append((kind, s, e, d, f"{label}/{kind}[{n}]"))


def _short(where: str) -> str:
    """Bound a location label (nesting is attacker-controlled)."""
    return where if len(where) <= 240 else where[:80] + "…" + where[-150:]


def _messages(reader: WireReader, start: int, end: int, numbers: set[int]) -> Iterator[Any]:
    """The ``LEN`` fields among ``numbers`` (other fields are skipped; wrong wire types fail)."""
    for f in reader.fields(start, end):
        if f.number in numbers:
            if f.wire != LEN:
                raise ProtoError(f"field {f.number} at {f.offset}: expected a message")
            yield f


# --- scanner ------------------------------------------------------------------------------


class OnnxScanner:
    """``onnx``: a ModelProto recognised by structure; ops and external data are checked."""

    name = "onnx"
    first_bytes = b"\x08"
    """A ModelProto starts with ``ir_version`` (field 1, varint)."""

    def sniff(self, head: bytes) -> bool:
        try:
            return _sniff_model(head)
        except ProtoError:
            return False

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        reader = WireReader(stream)
        try:
            model = _walk(reader, ctx)
        except ProtoError as exc:
            yield ctx.finding(
                "onnx.malformed",
                Severity.MEDIUM,
                f"ONNX: not a well-formed ModelProto ({exc})"[:300],
                evidence={"error": str(exc)[:300]},
                remediation="A model that cannot be parsed cannot be vouched for; re-export it "
                "from a trusted source.",
            )
            return
        if not model.has_graph:
            yield ctx.finding(
                "onnx.malformed",
                Severity.MEDIUM,
                "ONNX: model has no graph",
                remediation="Re-export the model from a trusted source.",
            )
        yield from _op_findings(model, ctx)
        yield from _external_findings(model, ctx)


def _op_findings(model: _Model, ctx: ScanContext) -> Iterator[Finding]:
    custom: dict[str, dict[str, int]] = {}
    where: dict[str, list[str]] = {}
    for key, count in model.op_counts.items():
        domain, op_type = key
        if key in model.functions:
            continue
        if op_type in CODE_OPS:
            yield ctx.finding(
                "onnx.code-op",
                Severity.HIGH,
                f"ONNX: operator {domain or 'ai.onnx'}::{op_type} calls Python code",
                summary=f"{count} node(s) run a Python function named in their attributes when "
                "the model executes.",
                evidence={
                    "domain": domain,
                    "op_type": op_type,
                    "count": count,
                    "nodes": model.ops[key],
                },
                remediation="Do not run this model unless you trust the Python code it "
                "names; prefer a model built from standard ONNX operators.",
            )
        elif domain not in STANDARD_DOMAINS:
            custom.setdefault(domain, {})[op_type] = count
            where.setdefault(domain, []).extend(model.ops[key])
    for domain, ops in sorted(custom.items()):
        yield ctx.finding(
            "onnx.custom-op-domain",
            Severity.MEDIUM,
            f"ONNX: operators from custom domain {domain!r}",
            summary="Running the model requires a custom-operator library for this domain; "
            "that native code runs with the loader's privileges.",
            evidence={
                "domain": domain,
                "ops": dict(sorted(ops.items())),
                "nodes": where[domain][:_MAX_EXAMPLES],
            },
            remediation="Only register custom-op libraries you have reviewed and obtained "
            "from a trusted source.",
        )


def _external_findings(model: _Model, ctx: ScanContext) -> Iterator[Finding]:
    by_rule: dict[tuple[str, Severity], list[dict[str, str]]] = {}
    for tensor, location in model.externals:
        problem = external_path_problem(location, ctx.directory)
        if problem is None:
            continue
        reason, severity = problem
        rule = (
            "onnx.external-data-escape"
            if severity >= Severity.HIGH
            else ("onnx.external-data-missing")
        )
        by_rule.setdefault((rule, severity), []).append(
            {"tensor": tensor[:200], "location": location[:300], "reason": reason}
        )
    for (rule, severity), examples in by_rule.items():
        escape = rule == "onnx.external-data-escape"
        yield ctx.finding(
            rule,
            severity,
            "ONNX: external tensor data points outside the model directory"
            if escape
            else "ONNX: external tensor data file is missing",
            summary=f"{len(examples)} tensor(s); loading reads "
            + ("arbitrary files of the loading host." if escape else "files that are absent."),
            evidence={"count": len(examples), "tensors": examples[:_MAX_EXAMPLES]},
            remediation="Do not load this model. Keep external data files next to the model "
            "with plain relative names."
            if escape
            else "Ship the external data files with the model, or re-export it with "
            "embedded weights.",
        )


SCANNERS: list[FormatScanner] = [OnnxScanner()]
