"""GGUF (llama.cpp): parse header, metadata and tensor infos; audit Jinja chat templates.

GGUF holds no code, with one exception that matters: ``tokenizer.chat_template*`` keys carry
Jinja2 templates that inference servers render on every request. Rendering an untrusted
template outside a sandbox is code execution (CVE-2024-34359, llama-cpp-python): attribute
walks such as ``''.__class__.__mro__[1].__subclasses__()`` reach ``os.popen``. Templates are
parsed with :meth:`jinja2.Environment.parse`, which builds an AST and runs nothing, and the
AST is checked for dunder access (CRITICAL) and for features chat templates never need:
imports, includes, calls of unknown functions or methods, the ``attr`` filter (MEDIUM).

The binary layout is checked as llama.cpp's loader checks it (version 1–3, bounded counts
and strings, known value types, at most 4 dimensions, known tensor types, offsets aligned to
``general.alignment``, contiguous and inside the file). Tensor data is never read.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.scanner import FormatScanner, ScanContext

__all__ = [
    "GGML_TYPES",
    "SCANNERS",
    "GGUFScanner",
    "TemplateIssue",
    "parse_gguf",
    "template_issues",
]

GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}
"""ggml tensor type id → (name, elements per block, bytes per block), as in gguf-py."""

MAX_DIMS = 4
"""GGML_MAX_DIMS: llama.cpp refuses tensors with more dimensions."""
MAX_NAME = 64
"""GGML_MAX_NAME: llama.cpp refuses longer tensor names (including the NUL)."""
MAX_KEY = 65535
"""The spec bounds metadata keys to 2**16 - 1 bytes."""
MAX_KV = 1 << 20
MAX_TENSORS = 1 << 24
MAX_TEMPLATE = 4 << 20
"""Chat templates longer than this are not parsed (reported instead)."""
_ARRAY_NESTING = 3
_MAX_EXAMPLES = 10

_SCALARS: dict[int, str] = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
"""GGUF metadata value type → struct format (8 = string, 9 = array)."""
_STRING = 8
_ARRAY = 9


class _Malformed(Exception):
    """The file breaks the layout; parsing cannot continue."""


@dataclass
class GGUFInfo:
    """What :func:`parse_gguf` read: header values, templates, and layout issues by rule."""

    version: int = 0
    """GGUF version (1–3)."""
    n_tensors: int = 0
    """Tensor count from the header."""
    templates: dict[str, str] = field(default_factory=dict)
    """``tokenizer.chat_template*`` key → template text."""
    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Rule id → examples of layout problems."""

    def add(self, rule: str, **example: Any) -> None:
        self.issues.setdefault(rule, []).append(example)


class _Reader:
    """Sequential reader with a buffer; positions are absolute file offsets."""

    def __init__(self, stream: BinaryIO, size: int, endian: str) -> None:
        self._stream = stream
        self.size = size
        self.endian = endian
        self._buf = b""
        self._buf_start = 0
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def remaining(self) -> int:
        return self.size - self._pos

    def read(self, n: int) -> bytes:
        if n > self.remaining():
            raise _Malformed(f"{n} bytes at offset {self._pos} run past the end of the file")
        rel = self._pos - self._buf_start
        if rel + n > len(self._buf):
            self._stream.seek(self._pos)
            self._buf = self._stream.read(max(n, 1 << 20))
            self._buf_start = self._pos
            rel = 0
        data = self._buf[rel : rel + n]
        if len(data) != n:
            raise _Malformed(f"short read at offset {self._pos}")
        self._pos += n
        return data

    def skip(self, n: int) -> None:
        if n > self.remaining():
            raise _Malformed(f"{n} bytes at offset {self._pos} run past the end of the file")
        self._pos += n

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(self.endian + fmt, self.read(struct.calcsize(fmt)))[0]


def parse_gguf(stream: BinaryIO, check: Callable[[], None] | None = None) -> GGUFInfo:
    """Parse a GGUF header, metadata and tensor infos from ``stream`` (never the tensor data).

    Layout problems are collected in :attr:`GGUFInfo.issues`; a problem that makes the rest
    unreadable ends the parse with a ``gguf.malformed`` issue. Never raises for bad input.
    ``check`` is an optional zero-argument callable invoked periodically (time limits).
    """
    info = GGUFInfo()
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    head = stream.read(24)
    if len(head) < 8 or head[:4] != b"GGUF":
        info.add("gguf.malformed", error="no GGUF magic and version")
        return info
    for endian in ("<", ">"):
        version = struct.unpack(endian + "I", head[4:8])[0]
        if 1 <= version <= 3:
            break
    else:
        info.add("gguf.malformed", error=f"unsupported version {head[4:8].hex()}")
        return info
    info.version = version
    reader = _Reader(stream, size, endian)
    reader.skip(8)
    try:
        _parse(reader, info, check)
    except _Malformed as exc:
        info.add("gguf.malformed", error=str(exc)[:300], offset=reader.tell())
    return info


def _parse(r: _Reader, info: GGUFInfo, check: Callable[[], None] | None) -> None:
    count = "I" if info.version == 1 else "Q"
    n_tensors = r.unpack(count)
    n_kv = r.unpack(count)
    info.n_tensors = n_tensors
    if n_kv > MAX_KV or n_kv * 9 > r.remaining():
        raise _Malformed(f"metadata count {n_kv} is implausible for the file size")
    if n_tensors > MAX_TENSORS or n_tensors * 20 > r.remaining():
        raise _Malformed(f"tensor count {n_tensors} is implausible for the file size")
    keys: set[str] = set()
    alignment = 32
    for i in range(n_kv):
        if check is not None and i % 256 == 0:
            check()
        key_raw = _read_string(r, count, MAX_KEY)
        try:
            key = key_raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed(f"metadata key {i} is not UTF-8") from None
        if key in keys:
            info.add("gguf.duplicate-key", key=key[:200])
        keys.add(key)
        vtype = r.unpack("I")
        if key.startswith("tokenizer.chat_template") and vtype == _STRING:
            raw = _read_string(r, count, r.remaining())
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                info.add("gguf.invalid-utf8", key=key[:200])
                text = raw.decode("utf-8", errors="replace")
            info.templates[key] = text
        elif key == "general.alignment":
            if vtype != 4:
                info.add("gguf.alignment", error=f"general.alignment has value type {vtype}")
                _skip_value(r, vtype, count, info, key, check)
            else:
                value = r.unpack("I")
                if value == 0 or value & (value - 1):
                    info.add("gguf.alignment", error=f"alignment {value} is not a power of two")
                else:
                    alignment = value
        else:
            _skip_value(r, vtype, count, info, key, check)
    _parse_tensors(r, info, count, alignment, check)


def _read_string(r: _Reader, count: str, max_len: int) -> bytes:
    n = r.unpack(count)
    if n > max_len:
        raise _Malformed(f"string of {n} bytes at offset {r.tell()} exceeds {max_len}")
    return r.read(n)


def _skip_value(
    r: _Reader, vtype: int, count: str, info: GGUFInfo, key: str, check: Callable[[], None] | None
) -> None:
    """Skip one metadata value (arrays nest at most ``_ARRAY_NESTING`` levels)."""
    pending: list[tuple[int, int, int]] = [(vtype, 1, 0)]  # (type, how many, nesting)
    while pending:
        vt, n, depth = pending.pop()
        if vt in _SCALARS:
            r.skip(n * struct.calcsize(_SCALARS[vt]))
        elif vt == _STRING:
            for j in range(n):
                if check is not None and j % 65536 == 65535:
                    check()
                raw = _read_string(r, count, r.remaining())
                if not raw.isascii():
                    try:
                        raw.decode("utf-8")
                    except UnicodeDecodeError:
                        info.add("gguf.invalid-utf8", key=key[:200])
        elif vt == _ARRAY:
            # One array header at a time, so nested arrays are read in file order.
            if depth >= _ARRAY_NESTING:
                raise _Malformed(f"{key}: arrays nested deeper than {_ARRAY_NESTING}")
            if n > 1:
                pending.append((_ARRAY, n - 1, depth))
            etype = r.unpack("I")
            m = r.unpack(count)
            if etype not in _SCALARS and etype not in (_STRING, _ARRAY):
                raise _Malformed(f"{key}: unknown array element type {etype}")
            least = struct.calcsize(_SCALARS[etype]) if etype in _SCALARS else 4
            if m * least > r.remaining():
                raise _Malformed(f"{key}: array of {m} elements exceeds the file")
            if m:
                pending.append((etype, m, depth + 1))
        else:
            raise _Malformed(f"{key}: unknown value type {vt}")


def _parse_tensors(
    r: _Reader, info: GGUFInfo, count: str, alignment: int, check: Callable[[], None] | None
) -> None:
    names: set[str] = set()
    tensors: list[tuple[str, int, int | None]] = []  # name, offset, nbytes (None: unknown type)
    for i in range(info.n_tensors):
        if check is not None and i % 1024 == 0:
            check()
        raw = _read_string(r, count, MAX_KEY)
        name = raw.decode("utf-8", errors="replace")
        if name in names:
            info.add("gguf.duplicate-tensor", tensor=name[:200])
        names.add(name)
        if len(raw) >= MAX_NAME:
            info.add("gguf.tensor-info", tensor=name[:200], error="name longer than 63 bytes")
        n_dims = r.unpack("I")
        if n_dims > 64:
            raise _Malformed(f"tensor {name[:100]!r} has {n_dims} dimensions")
        if n_dims > MAX_DIMS:
            info.add("gguf.tensor-info", tensor=name[:200], error=f"{n_dims} dimensions (max 4)")
        dims = [r.unpack(count) for _ in range(n_dims)]
        ttype = r.unpack("I")
        offset = r.unpack("Q")
        nbytes = _tensor_bytes(name, dims, ttype, info)
        tensors.append((name, offset, nbytes))
    data_start = -(-r.tell() // alignment) * alignment
    expected = 0
    last_end = 0
    for name, offset, nbytes in tensors:
        if offset % alignment:
            info.add("gguf.tensor-offset", tensor=name[:200], offset=offset, alignment=alignment)
        elif offset != expected:
            info.add("gguf.tensor-offset", tensor=name[:200], offset=offset, expected=expected)
        if nbytes is None:
            expected = -1  # unknown size: later offsets cannot be predicted
            continue
        if data_start + offset + nbytes > r.size:
            info.add(
                "gguf.malformed",
                error="tensor data runs past the end of the file",
                tensor=name[:200],
                offset=offset,
                nbytes=nbytes,
            )
        last_end = max(last_end, offset + nbytes)
        if expected >= 0:
            expected = offset + -(-nbytes // alignment) * alignment
    if tensors and all(t[2] is not None for t in tensors):
        trailing = r.size - (data_start + last_end)
        if trailing >= alignment:
            info.add("gguf.trailing-bytes", bytes=trailing, data_end=data_start + last_end)


def _tensor_bytes(name: str, dims: list[int], ttype: int, info: GGUFInfo) -> int | None:
    """Bytes of one tensor, or ``None`` when its type or shape makes the size unknowable."""
    if ttype not in GGML_TYPES:
        info.add("gguf.tensor-type", tensor=name[:200], type=ttype)
        return None
    type_name, block, type_size = GGML_TYPES[ttype]
    total = 1
    for d in dims:
        if d >= 1 << 63:
            info.add("gguf.tensor-info", tensor=name[:200], error=f"negative dimension {d}")
            return None
        total *= d
        if total >= 1 << 63:
            info.add("gguf.tensor-info", tensor=name[:200], error="element count overflows")
            return None
    ne0 = dims[0] if dims else 1
    if ne0 % block:
        info.add(
            "gguf.tensor-info",
            tensor=name[:200],
            error=f"{type_name} rows of {ne0} elements are not a multiple of {block}",
        )
        return None
    return total // block * type_size


# --- chat templates -----------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateIssue:
    """One suspicious construct in a Jinja template."""

    rule: str
    """``gguf.template-ssti``, ``gguf.template-unusual`` or ``gguf.template-syntax``."""
    detail: str
    """What was found, e.g. ``attribute .__class__`` or ``{% include %}``."""
    line: int
    """Template line (1-based; 0 when unknown)."""


_DUNDER = re.compile(r"__[A-Za-z]\w*__")
_FRAGMENT = re.compile(r"__|__[A-Za-z]\w*|[A-Za-z]\w*__")
"""String literals that only make sense glued into a dunder (``'__' ~ 'class' ~ '__'``)."""
_DANGEROUS_ATTRS = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "ag_frame",
        "tb_frame",
        "co_code",
        "im_func",
        "im_class",
    }
)
_SAFE_FUNCTIONS = frozenset(
    {"raise_exception", "range", "namespace", "strftime_now", "dict", "caller"}
)
_SAFE_METHODS = frozenset(
    {
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "splitlines",
        "startswith",
        "endswith",
        "lower",
        "upper",
        "title",
        "capitalize",
        "replace",
        "items",
        "keys",
        "values",
        "get",
        "append",
        "extend",
        "insert",
        "pop",
        "update",
        "join",
        "count",
        "index",
        "find",
        "rfind",
        "isdigit",
        "isalpha",
        "isalnum",
        "isspace",
        "isupper",
        "islower",
        "cycle",
        "copy",
    }
)
_SUSPICIOUS_NAMES = frozenset({"self", "lipsum", "cycler", "joiner"})
"""Jinja globals with no use in chat templates whose ``__globals__`` lead to ``os``."""

_ENV: Any = None


def _environment() -> Any:
    """A parse-only Jinja environment that knows the tags HF chat templates use."""
    global _ENV
    if _ENV is None:
        import jinja2
        import jinja2.ext
        from jinja2 import nodes

        class _Generation(jinja2.ext.Extension):
            """``{% generation %}…{% endgeneration %}`` (transformers' AssistantTracker)."""

            tags = {"generation"}  # noqa: RUF012 - jinja2's class attribute

            def parse(self, parser: Any) -> Any:
                lineno = next(parser.stream).lineno
                body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
                return nodes.Scope(body, lineno=lineno)

        _ENV = jinja2.Environment(
            extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _Generation]
        )
    return _ENV


def template_issues(text: str) -> list[TemplateIssue]:
    """Parse a Jinja template (without rendering it) and list its suspicious constructs."""
    import jinja2
    from jinja2 import nodes

    if len(text) > MAX_TEMPLATE:
        return [TemplateIssue("gguf.template-unusual", f"template of {len(text)} chars", 0)]
    try:
        root = _environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return [TemplateIssue("gguf.template-syntax", str(exc.message)[:200], exc.lineno or 0)]
    except RecursionError:
        return [TemplateIssue("gguf.template-unusual", "nested too deeply to parse", 0)]

    issues: list[TemplateIssue] = []
    macros: set[str] = set()
    calls: list[Any] = []
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, in_concat = stack.pop()
        concat = isinstance(node, nodes.Concat | nodes.Add | nodes.Mul)
        stack.extend((child, concat) for child in node.iter_child_nodes())
        line = getattr(node, "lineno", 0) or 0

        def ssti(detail: str, line: int = line) -> None:
            issues.append(TemplateIssue("gguf.template-ssti", detail, line))

        def unusual(detail: str, line: int = line) -> None:
            issues.append(TemplateIssue("gguf.template-unusual", detail, line))

        if isinstance(node, nodes.Macro):
            macros.add(node.name)
        elif isinstance(node, nodes.Getattr):
            if _is_dangerous_attr(node.attr):
                ssti(f"attribute .{node.attr}")
        elif isinstance(node, nodes.Getitem):
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if isinstance(key, str) and _is_dangerous_attr(key):
                ssti(f"item [{key!r}]")
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            if _DUNDER.search(node.value):
                ssti(f"string {node.value[:60]!r} names a dunder")
            elif _FRAGMENT.fullmatch(node.value):
                ssti(f"string {node.value[:60]!r} is a piece of a dunder name")
        elif concat and not in_concat:
            pieces = _string_pieces(node)
            built = "".join(pieces)
            if _DUNDER.search(built) and not any(_DUNDER.search(p) for p in pieces):
                ssti(f"dunder built by string concatenation: {built[:60]!r}")
        elif isinstance(node, nodes.Filter):
            if node.name == "attr":
                arg = node.args[0] if node.args else None
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    if _is_dangerous_attr(arg.value):
                        ssti(f"|attr({arg.value!r})")
                    else:
                        unusual(f"|attr({arg.value!r}) filter")
                else:
                    unusual("|attr filter with a computed name")
        elif isinstance(node, nodes.Call):
            calls.append(node)
        elif isinstance(node, nodes.Name):
            if node.name in _SUSPICIOUS_NAMES:
                unusual(f"reference to the Jinja global {node.name!r}")
        elif isinstance(node, nodes.Import | nodes.FromImport):
            unusual("{% import %}")
        elif isinstance(node, nodes.Include):
            unusual("{% include %}")
        elif isinstance(node, nodes.Extends):
            unusual("{% extends %}")
    for call in calls:
        target = call.node
        line = call.lineno or 0
        if isinstance(target, nodes.Name):
            if target.name not in _SAFE_FUNCTIONS and target.name not in macros:
                issues.append(
                    TemplateIssue("gguf.template-unusual", f"call to {target.name}()", line)
                )
        elif isinstance(target, nodes.Getattr):
            if target.attr not in _SAFE_METHODS and not _is_dangerous_attr(target.attr):
                issues.append(
                    TemplateIssue("gguf.template-unusual", f"call to .{target.attr}()", line)
                )
        else:
            issues.append(TemplateIssue("gguf.template-unusual", "call of a computed value", line))
    return issues


def _is_dangerous_attr(name: str) -> bool:
    return (name.startswith("__") and name.endswith("__")) or name in _DANGEROUS_ATTRS


def _string_pieces(node: Any) -> list[str]:
    """The string constants of a concatenation expression, in order (``'_' * 2`` folds)."""
    from jinja2 import nodes

    out: list[str] = []
    stack: list[Any] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, nodes.Const) and isinstance(n.value, str):
            out.append(n.value)
        elif isinstance(n, nodes.Mul):
            left = n.left.value if isinstance(n.left, nodes.Const) else None
            right = n.right.value if isinstance(n.right, nodes.Const) else None
            if isinstance(left, str) and isinstance(right, int):
                out.append(left * max(0, min(right, 64)))
        elif isinstance(n, nodes.Concat):
            stack.extend(reversed(n.nodes))
        elif isinstance(n, nodes.Add):
            stack.extend((n.right, n.left))
        elif isinstance(n, nodes.Filter) and n.name == "join" and n.node is not None:
            stack.append(n.node)
        elif isinstance(n, nodes.List | nodes.Tuple):
            stack.extend(reversed(n.items))
    return out


# --- scanner ------------------------------------------------------------------------------

_LAYOUT_RULES: dict[str, tuple[Severity, str]] = {
    "gguf.malformed": (Severity.MEDIUM, "file breaks the GGUF layout"),
    "gguf.duplicate-key": (Severity.MEDIUM, "metadata key appears twice; readers disagree"),
    "gguf.duplicate-tensor": (Severity.MEDIUM, "tensor name appears twice; readers disagree"),
    "gguf.alignment": (Severity.MEDIUM, "general.alignment is not a u32 power of two"),
    "gguf.tensor-info": (
        Severity.MEDIUM,
        "tensor info llama.cpp refuses (dimensions, name length, block size)",
    ),
    "gguf.tensor-type": (Severity.LOW, "tensor has an unknown ggml type"),
    "gguf.tensor-offset": (
        Severity.MEDIUM,
        "tensor offset is misaligned or not where llama.cpp expects it",
    ),
    "gguf.trailing-bytes": (Severity.LOW, "bytes after the last tensor"),
    "gguf.invalid-utf8": (Severity.LOW, "metadata string is not valid UTF-8"),
}
_TEMPLATE_RULES: dict[str, tuple[Severity, str]] = {
    "gguf.template-ssti": (
        Severity.CRITICAL,
        "chat template reaches Python internals (Jinja SSTI, CVE-2024-34359 class)",
    ),
    "gguf.template-unusual": (
        Severity.MEDIUM,
        "chat template uses Jinja features chat templates do not need",
    ),
    "gguf.template-syntax": (Severity.LOW, "chat template does not parse as Jinja"),
}


class GGUFScanner:
    """``gguf``: magic ``GGUF``; layout checks and chat-template audit."""

    name = "gguf"
    first_bytes = b"G"

    def sniff(self, head: bytes) -> bool:
        return head[:4] == b"GGUF"

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        info = parse_gguf(stream, ctx.check_time)
        for rule, examples in info.issues.items():
            severity, title = _LAYOUT_RULES[rule]
            yield ctx.finding(
                rule,
                severity,
                f"GGUF: {title}",
                summary=f"{len(examples)} occurrence(s).",
                evidence={"count": len(examples), "examples": examples[:_MAX_EXAMPLES]},
                remediation="Do not load this file; re-convert the model from a trusted source "
                "with llama.cpp's own tools.",
            )
        for key, text in info.templates.items():
            ctx.check_time()
            by_rule: dict[str, list[TemplateIssue]] = {}
            for issue in template_issues(text):
                by_rule.setdefault(issue.rule, []).append(issue)
            for rule, found in by_rule.items():
                severity, title = _TEMPLATE_RULES[rule]
                yield ctx.finding(
                    rule,
                    severity,
                    f"GGUF: {title} ({key})",
                    summary="; ".join(i.detail for i in found[:5]),
                    evidence={
                        "key": key,
                        "count": len(found),
                        "examples": [
                            {"detail": i.detail, "line": i.line} for i in found[:_MAX_EXAMPLES]
                        ],
                    },
                    remediation="Do not render this chat template. Replace it with the "
                    "template published by the model's authors, and render templates only in "
                    "jinja2's ImmutableSandboxedEnvironment.",
                )


SCANNERS: list[FormatScanner] = [GGUFScanner()]
