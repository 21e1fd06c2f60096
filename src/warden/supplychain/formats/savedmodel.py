"""TensorFlow SavedModel (``saved_model.pb``) and Keras ``keras_metadata.pb``, without TensorFlow.

A SavedModel graph is a program: loading it and calling a signature runs its ops, and some
ops reach outside the tensor world. ``PyFunc``/``EagerPyFunc`` call Python (CRITICAL);
``ReadFile``/``WriteFile``, ``ImmutableConst`` (memory-maps a named file), dataset writers,
``PrintV2`` to a ``file://`` stream and the RPC ops touch files or the network (HIGH; readers,
directory listing and debug/summary writers MEDIUM; vocabulary-table initialisers LOW). Every
SavedModel carries a saver, so ``SaveV2``/``RestoreV2``/``MergeV2Checkpoints`` are reported
only outside it: outside the scope named by ``saver_def`` (TF1, ``save/…``) and outside the
``__inference__traced_save_N``/``__inference__traced_restore_N`` functions (TF2).

The walk reads ``SavedModel.meta_graphs[*]``: ``graph_def.node``, every function of
``graph_def.library`` (reachable or not) and, for Keras models saved by TF 2.x, the Keras layer
JSON in ``object_graph_def`` user objects and in ``keras_metadata.pb``, checked with
:func:`warden.supplychain.formats.keras.inspect_config` (Lambda layers, custom objects).

Sniffing is structural: ``saved_model_schema_version = 1`` then a ``MetaGraphDef`` whose
prefix parses with the right field numbers and wire types, and nothing else at top level.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats.keras import KerasIssue, inspect_config, issue_findings, parse_json
from warden.supplychain.protowire import LEN, VARINT, Field, ProtoError, WireReader
from warden.supplychain.scanner import FormatScanner, ScanContext

__all__ = ["OPS", "SAVER_OPS", "SCANNERS", "KerasMetadataScanner", "SavedModelScanner"]

OPS: dict[str, tuple[str, Severity]] = {
    # Python
    "PyFunc": ("savedmodel.pyfunc", Severity.CRITICAL),
    "PyFuncStateless": ("savedmodel.pyfunc", Severity.CRITICAL),
    "EagerPyFunc": ("savedmodel.pyfunc", Severity.CRITICAL),
    # reading files
    "ReadFile": ("savedmodel.file-read", Severity.HIGH),
    "ImmutableConst": ("savedmodel.file-read", Severity.HIGH),
    "MatchingFiles": ("savedmodel.file-read", Severity.MEDIUM),
    "WholeFileReader": ("savedmodel.file-read", Severity.MEDIUM),
    "WholeFileReaderV2": ("savedmodel.file-read", Severity.MEDIUM),
    "TextLineReader": ("savedmodel.file-read", Severity.MEDIUM),
    "TextLineReaderV2": ("savedmodel.file-read", Severity.MEDIUM),
    "FixedLengthRecordReader": ("savedmodel.file-read", Severity.MEDIUM),
    "FixedLengthRecordReaderV2": ("savedmodel.file-read", Severity.MEDIUM),
    "TFRecordReader": ("savedmodel.file-read", Severity.MEDIUM),
    "TFRecordReaderV2": ("savedmodel.file-read", Severity.MEDIUM),
    "LMDBReader": ("savedmodel.file-read", Severity.MEDIUM),
    "TextLineDataset": ("savedmodel.file-read", Severity.MEDIUM),
    "TFRecordDataset": ("savedmodel.file-read", Severity.MEDIUM),
    "TFRecordDatasetV2": ("savedmodel.file-read", Severity.MEDIUM),
    "FixedLengthRecordDataset": ("savedmodel.file-read", Severity.MEDIUM),
    "FixedLengthRecordDatasetV2": ("savedmodel.file-read", Severity.MEDIUM),
    "CSVDataset": ("savedmodel.file-read", Severity.MEDIUM),
    "CSVDatasetV2": ("savedmodel.file-read", Severity.MEDIUM),
    "LMDBDataset": ("savedmodel.file-read", Severity.MEDIUM),
    "LoadDataset": ("savedmodel.file-read", Severity.MEDIUM),
    "InitializeTableFromTextFile": ("savedmodel.file-read", Severity.LOW),
    "InitializeTableFromTextFileV2": ("savedmodel.file-read", Severity.LOW),
    # writing files
    "WriteFile": ("savedmodel.file-write", Severity.HIGH),
    "SaveDataset": ("savedmodel.file-write", Severity.HIGH),
    "SaveDatasetV2": ("savedmodel.file-write", Severity.HIGH),
    "DatasetToTFRecord": ("savedmodel.file-write", Severity.HIGH),
    "ExperimentalDatasetToTFRecord": ("savedmodel.file-write", Severity.HIGH),
    "CreateSummaryFileWriter": ("savedmodel.file-write", Severity.MEDIUM),
    "CreateSummaryDbWriter": ("savedmodel.file-write", Severity.MEDIUM),
    "DebugIdentity": ("savedmodel.file-write", Severity.MEDIUM),
    "DebugIdentityV2": ("savedmodel.file-write", Severity.MEDIUM),
    "DebugIdentityV3": ("savedmodel.file-write", Severity.MEDIUM),
    "DebugNanCount": ("savedmodel.file-write", Severity.MEDIUM),
    "DebugNumericSummary": ("savedmodel.file-write", Severity.MEDIUM),
    "DebugNumericSummaryV2": ("savedmodel.file-write", Severity.MEDIUM),
    # network
    "Rpc": ("savedmodel.network-op", Severity.HIGH),
    "TryRpc": ("savedmodel.network-op", Severity.HIGH),
    "RpcCall": ("savedmodel.network-op", Severity.HIGH),
    "RpcClient": ("savedmodel.network-op", Severity.HIGH),
    "RpcServer": ("savedmodel.network-op", Severity.HIGH),
    "RpcServerStart": ("savedmodel.network-op", Severity.HIGH),
    "RpcServerRegister": ("savedmodel.network-op", Severity.HIGH),
}
"""Op name → (rule id, severity) for ops that reach Python, files or the network."""

SAVER_OPS = frozenset(
    {"Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints"}
)
"""Checkpoint I/O ops: expected in the saver, reported (MEDIUM) anywhere else."""

_PRINT_TO_FILE = "file://"
_TF2_SAVER_FUNCTION = re.compile(r"_traced_(save|restore)_\d+$")
_MAX_STRING = 1 << 20
_MAX_METADATA = 64 << 20
_MAX_EXAMPLES = 10

_META_GRAPH_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN, 6: LEN, 7: LEN}
_META_INFO_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN, 6: LEN, 7: VARINT, 8: LEN}
_GRAPH_DEF_FIELDS = {1: LEN, 2: LEN, 3: VARINT, 4: LEN, 5: LEN}
_KERAS_OBJECT_FIELDS = {2: VARINT, 3: LEN, 4: LEN, 5: LEN, 6: LEN}


def _prefix_ok(reader: WireReader, f: Field, allowed: dict[int, int], end: int) -> bool:
    """Whether the (possibly truncated) payload of ``f`` starts like a message of ``allowed``."""
    stop = min(f.end, end)
    n = 0
    for g in reader.fields(f.offset, stop, partial=f.truncated):
        if allowed.get(g.number) != g.wire:
            return False
        n += 1
    return n > 0


def _sniff_saved_model(head: bytes) -> bool:
    if not head.startswith(b"\x08\x01\x12"):
        return False
    reader = WireReader(head)
    meta_graphs = 0
    for i, f in enumerate(reader.fields(partial=True)):
        if i == 0:
            continue  # the schema version checked above
        if f.number != 2 or f.wire != LEN:
            return False
        meta_graphs += 1
        if meta_graphs == 1:
            first = next(reader.fields(f.offset, min(f.end, len(head)), partial=True), None)
            if first is None or not _prefix_ok(reader, f, _META_GRAPH_FIELDS, len(head)):
                return False
            inner = _META_INFO_FIELDS if first.number == 1 else _GRAPH_DEF_FIELDS
            if first.number in (1, 2) and first.wire == LEN:
                if first.value and not _prefix_ok(reader, first, inner, len(head)):
                    return False
            else:
                return False
        if f.truncated:
            break
    return meta_graphs > 0


# --- walk ---------------------------------------------------------------------------------


@dataclass
class _Graph:
    """Ops seen, the saver's scopes, and Keras issues from user objects."""

    ops: dict[str, list[str]] = field(default_factory=dict)
    """Op name → where (``graph:node`` or ``function:node``), first few."""
    op_counts: dict[str, int] = field(default_factory=dict)
    saver_scopes: set[str] = field(default_factory=set)
    keras: list[KerasIssue] = field(default_factory=list)
    saver_ops_outside: dict[str, list[str]] = field(default_factory=dict)
    print_to_file: list[str] = field(default_factory=list)


@dataclass
class _Node:
    name: str
    op: str
    attrs: dict[str, str]
    """String-valued attributes (``s``), for evidence."""


def _read_node(reader: WireReader, f: Field) -> _Node:
    name = op = ""
    attr_fields: list[Field] = []
    for g in reader.fields(f.offset, f.end):
        if g.number == 1 and g.wire == LEN:
            name = reader.string(g, _MAX_STRING)
        elif g.number == 2 and g.wire == LEN:
            op = reader.string(g, _MAX_STRING)
        elif g.number == 5 and g.wire == LEN:
            attr_fields.append(g)
    attrs: dict[str, str] = {}
    if op in OPS or op == "PrintV2":
        for g in attr_fields:
            key = value = ""
            for h in reader.fields(g.offset, g.end):
                if h.number == 1 and h.wire == LEN:
                    key = reader.string(h, _MAX_STRING)
                elif h.number == 2 and h.wire == LEN:
                    for v in reader.fields(h.offset, h.end):
                        if v.number == 2 and v.wire == LEN:  # AttrValue.s
                            value = reader.payload(v, _MAX_STRING).decode("utf-8", "replace")
            if value:
                attrs[key] = value[:300]
    return _Node(name, op, attrs)


def _walk_saved_model(reader: WireReader, ctx: ScanContext) -> _Graph:
    graph = _Graph()
    metas: list[Field] = []
    for f in reader.fields():
        if f.number == 2:
            if f.wire != LEN:
                raise ProtoError("meta_graphs is not a message")
            metas.append(f)
    if not metas:
        raise ProtoError("no MetaGraphDef")
    graph_defs: list[Field] = []
    for meta in metas:
        for f in reader.fields(meta.offset, meta.end):
            if f.wire != LEN:
                continue
            if f.number == 2:
                graph_defs.append(f)
            elif f.number == 3:
                _read_saver(reader, f, graph)
            elif f.number == 7:
                _read_object_graph(reader, f, graph, ctx)
    for gd in graph_defs:
        _walk_graph_def(reader, gd, graph, ctx)
    return graph


def _read_saver(reader: WireReader, f: Field, graph: _Graph) -> None:
    for g in reader.fields(f.offset, f.end):
        if g.number in (1, 2, 3) and g.wire == LEN:
            name = reader.string(g, _MAX_STRING)
            if "/" in name:
                graph.saver_scopes.add(name.split("/", 1)[0] + "/")


def _walk_graph_def(reader: WireReader, gd: Field, graph: _Graph, ctx: ScanContext) -> None:
    n = 0
    for f in reader.fields(gd.offset, gd.end):
        if f.number == 1 and f.wire == LEN:
            n += 1
            if n % 1024 == 0:
                ctx.check_time()
            node = _read_node(reader, f)
            _record(graph, node, "graph", saver=_in_saver_scope(node.name, graph))
        elif f.number == 2 and f.wire == LEN:
            for lib in reader.fields(f.offset, f.end):
                if lib.number == 1 and lib.wire == LEN:
                    ctx.check_time()
                    _walk_function(reader, lib, graph)


def _in_saver_scope(name: str, graph: _Graph) -> bool:
    return any(name.startswith(scope) for scope in graph.saver_scopes)


def _walk_function(reader: WireReader, fn: Field, graph: _Graph) -> None:
    fname = ""
    nodes: list[_Node] = []
    for f in reader.fields(fn.offset, fn.end):
        if f.number == 1 and f.wire == LEN:  # OpDef signature
            for g in reader.fields(f.offset, f.end):
                if g.number == 1 and g.wire == LEN:
                    fname = reader.string(g, _MAX_STRING)
        elif f.number == 3 and f.wire == LEN:
            nodes.append(_read_node(reader, f))
    saver = bool(_TF2_SAVER_FUNCTION.search(fname))
    for node in nodes:
        _record(graph, node, f"function {fname}", saver=saver)


def _record(graph: _Graph, node: _Node, where: str, *, saver: bool) -> None:
    label = f"{where}: {node.name[:200]}"
    if node.attrs:
        label += f" {node.attrs}"
    if node.op in SAVER_OPS:
        if not saver:
            places = graph.saver_ops_outside.setdefault(node.op, [])
            if len(places) < _MAX_EXAMPLES:
                places.append(label)
        return
    if node.op == "PrintV2":
        if node.attrs.get("output_stream", "").startswith(_PRINT_TO_FILE):
            graph.print_to_file.append(label)
        return
    if node.op not in OPS:
        return
    graph.op_counts[node.op] = graph.op_counts.get(node.op, 0) + 1
    places = graph.ops.setdefault(node.op, [])
    if len(places) < _MAX_EXAMPLES:
        places.append(label)


def _read_object_graph(reader: WireReader, f: Field, graph: _Graph, ctx: ScanContext) -> None:
    """Keras layer JSON in ``SavedUserObject.metadata`` (TF 2.x before keras_metadata.pb)."""
    for n, obj in enumerate(reader.fields(f.offset, f.end)):
        if obj.number != 1 or obj.wire != LEN:
            continue
        if n % 1024 == 0:
            ctx.check_time()
        for g in reader.fields(obj.offset, obj.end):
            if g.number == 4 and g.wire == LEN:  # user_object
                identifier = metadata = ""
                for h in reader.fields(g.offset, g.end):
                    if h.number == 1 and h.wire == LEN:
                        identifier = reader.string(h, _MAX_STRING)
                    elif h.number == 3 and h.wire == LEN:
                        metadata = reader.string(h, _MAX_METADATA)
                if identifier.startswith("_tf_keras") and metadata:
                    graph.keras.extend(_keras_json(metadata, f"object {n}", ctx))


def _keras_json(text: str, where: str, ctx: ScanContext) -> list[KerasIssue]:
    try:
        obj, shadowed = parse_json(text)
    except (ValueError, RecursionError) as exc:
        return [
            KerasIssue(
                "keras.malformed",
                Severity.MEDIUM,
                f"Keras metadata of {where} is not valid JSON",
                f"malformed:{where}",
                where,
                {"error": str(exc)[:200]},
            )
        ]
    return inspect_config([obj, *shadowed], ctx.check_time)


# --- scanners -----------------------------------------------------------------------------


def _malformed(ctx: ScanContext, rule: str, what: str, exc: Exception) -> Finding:
    return ctx.finding(
        rule,
        Severity.MEDIUM,
        f"{what}: not well-formed ({exc})"[:300],
        evidence={"error": str(exc)[:300]},
        remediation="A model that cannot be parsed cannot be vouched for; obtain it from a "
        "trusted source.",
    )


class SavedModelScanner:
    """``savedmodel``: a ``SavedModel`` proto recognised by structure."""

    name = "savedmodel"
    first_bytes = b"\x08"
    """``saved_model_schema_version`` (field 1, varint) comes first."""

    def sniff(self, head: bytes) -> bool:
        try:
            return _sniff_saved_model(head)
        except ProtoError:
            return False

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        try:
            graph = _walk_saved_model(WireReader(stream), ctx)
        except ProtoError as exc:
            yield _malformed(ctx, "savedmodel.malformed", "SavedModel", exc)
            return
        for op, places in sorted(graph.ops.items()):
            rule, severity = OPS[op]
            yield ctx.finding(
                rule,
                severity,
                f"SavedModel: graph uses {op}",
                summary=_SUMMARY[rule],
                evidence={"op": op, "count": graph.op_counts[op], "nodes": places},
                remediation=_REMEDIATION,
            )
        if graph.print_to_file:
            yield ctx.finding(
                "savedmodel.file-write",
                Severity.HIGH,
                "SavedModel: graph uses PrintV2 writing to a file",
                summary=_SUMMARY["savedmodel.file-write"],
                evidence={"op": "PrintV2", "nodes": graph.print_to_file[:_MAX_EXAMPLES]},
                remediation=_REMEDIATION,
            )
        for op, places in sorted(graph.saver_ops_outside.items()):
            yield ctx.finding(
                "savedmodel.saver-op",
                Severity.MEDIUM,
                f"SavedModel: checkpoint op {op} outside the saver",
                summary="Checkpoint save/restore ops outside the model's saver can read or "
                "write files at paths the graph computes.",
                evidence={"op": op, "nodes": places},
                remediation=_REMEDIATION,
            )
        yield from issue_findings(ctx, graph.keras, "SavedModel object graph (Keras metadata)")


_SUMMARY = {
    "savedmodel.pyfunc": "The op calls a Python function when the graph runs; loading the "
    "model in a process that registered that function runs it.",
    "savedmodel.file-read": "Running the graph reads files of the host; their contents can "
    "leak through the model's outputs.",
    "savedmodel.file-write": "Running the graph writes files on the host.",
    "savedmodel.network-op": "Running the graph makes network calls.",
}
_REMEDIATION = (
    "Do not serve this model until the listed nodes are reviewed; prefer a model exported "
    "without file, network or Python ops (inspect it with saved_model_cli in a sandbox)."
)


def _sniff_keras_metadata(head: bytes) -> bool:
    if head[:1] != b"\x0a":
        return False
    reader = WireReader(head)
    first = next(reader.fields(partial=True), None)
    if first is None or first.number != 1 or first.wire != LEN:
        return False
    for g in reader.fields(first.offset, min(first.end, len(head)), partial=first.truncated):
        if _KERAS_OBJECT_FIELDS.get(g.number) != g.wire:
            return False
        if g.number == 4:
            return not g.truncated and reader.read(g.offset, g.value).startswith(b"_tf_keras")
    return False


class KerasMetadataScanner:
    """``keras-metadata``: ``keras_metadata.pb`` (``SavedMetadata`` with ``_tf_keras*`` nodes)."""

    name = "keras-metadata"
    first_bytes = b"\x0a"
    """The first ``nodes`` entry (field 1, length-delimited) comes first."""

    def sniff(self, head: bytes) -> bool:
        try:
            return _sniff_keras_metadata(head)
        except ProtoError:
            return False

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        reader = WireReader(stream)
        issues: list[KerasIssue] = []
        try:
            for n, f in enumerate(reader.fields()):
                if f.number != 1 or f.wire != LEN:
                    continue
                ctx.check_time()
                path = metadata = ""
                for g in reader.fields(f.offset, f.end):
                    if g.number == 3 and g.wire == LEN:
                        path = reader.string(g, _MAX_STRING)
                    elif g.number == 5 and g.wire == LEN:
                        metadata = reader.string(g, _MAX_METADATA)
                if metadata:
                    issues.extend(_keras_json(metadata, path or f"node {n}", ctx))
        except ProtoError as exc:
            yield _malformed(ctx, "keras.malformed", "Keras metadata", exc)
        yield from issue_findings(ctx, issues, "keras_metadata.pb")


SCANNERS: list[FormatScanner] = [SavedModelScanner(), KerasMetadataScanner()]
