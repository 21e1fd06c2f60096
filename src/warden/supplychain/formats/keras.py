"""Keras model configs (JSON): Lambda layers, serialized bytecode, custom and dangerous objects.

A Keras model config names the classes and functions that loading will import and call. The
dangerous entries are:

* ``Lambda`` layers, whose function is either marshalled Python bytecode (base64 in
  ``config.function``; Keras 2 ``[code, defaults, closure]``, Keras 3 ``{"class_name":
  "__lambda__", "config": {"code": ...}}``) that runs when the layer is called, or a function
  looked up by module and name (CVE-2024-3660);
* objects whose ``module`` lies outside Keras: loading imports that module and resolves the
  name in it, so ``{"module": "os", "class_name": "function", "config": "system"}`` is a call
  to ``os.system`` (CVE-2025-1550, which ``safe_mode`` did not stop);
* Keras's own functions used as gadgets: ``get_file`` (downloads and writes files),
  ``enable_unsafe_deserialization`` (turns ``safe_mode`` off) and friends, and ``TFSMLayer``,
  which loads a TensorFlow SavedModel from a path in the config.

:func:`inspect_config` walks any JSON value (iteratively: the walk depth is not bounded by the
Python stack) and returns :class:`KerasIssue` records; :func:`issue_findings` turns them into
findings. The HDF5 (``model_config`` attribute) and SavedModel (``keras_metadata.pb``)
scanners reuse both. :class:`KerasConfigScanner` recognises standalone configs (a ``.keras``
archive's ``config.json``, ``model.to_json()`` output, TF.js ``model.json``) by content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.scanner import FormatScanner, ScanContext

__all__ = [
    "DANGEROUS_MODULES",
    "SCANNERS",
    "KerasConfigScanner",
    "KerasIssue",
    "inspect_config",
    "issue_findings",
    "parse_json",
]

KERAS_MODULES = ("keras", "tf_keras", "keras_core", "tensorflow.keras", "tensorflow.python.keras")
"""Module roots whose objects Keras itself provides."""

DANGEROUS_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "sys",
        "shutil",
        "socket",
        "importlib",
        "runpy",
        "pty",
        "ctypes",
        "pickle",
        "marshal",
        "code",
        "codeop",
        "commands",
        "webbrowser",
        "multiprocessing",
        "urllib",
        "requests",
        "http",
        "ftplib",
        "telnetlib",
        "smtplib",
        "tempfile",
        "pathlib",
        "io",
    }
)
"""Module roots that give a config direct access to processes, files or the network."""

_DANGEROUS_BUILTINS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "__import__",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "input",
        "memoryview",
    }
)
_KERAS_GADGETS = frozenset(
    {
        "get_file",
        "enable_unsafe_deserialization",
        "load_model",
        "load_weights",
        "model_from_json",
        "model_from_config",
        "model_from_yaml",
        "deserialize_keras_object",
    }
)
"""Keras functions that download files, load further models or switch ``safe_mode`` off."""

_CODE_NAMES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "system",
        "popen",
        "Popen",
        "spawnv",
        "spawnl",
        "execv",
        "execve",
        "execl",
        "eval",
        "exec",
        "compile",
        "__import__",
        "builtins",
        "__builtins__",
        "importlib",
        "import_module",
        "getattr",
        "open",
        "socket",
        "shutil",
        "rmtree",
        "remove",
        "unlink",
        "pty",
        "ctypes",
        "pickle",
        "marshal",
        "check_output",
        "check_call",
        "urlopen",
        "requests",
        "webbrowser",
        "touch",
        "write_text",
        "write_bytes",
    }
)
"""Names whose presence in marshalled bytecode points at process, file or network access."""

MAX_CONFIG_BYTES = 256 << 20
"""Largest standalone config read into memory."""
_MAX_EXAMPLES = 10
_B64 = re.compile(r"[A-Za-z0-9+/=\s]{16,}")
_IDENT = re.compile(rb"[A-Za-z_][A-Za-z0-9_]{1,63}")
_JSON_KEY = re.compile(rb'"(class_name|config|module|registered_name)"\s*:')


@dataclass(frozen=True)
class KerasIssue:
    """One dangerous or unusual entry in a Keras config."""

    rule: str
    """``keras.lambda-layer``, ``keras.lambda-bytecode``, ``keras.custom-object``,
    ``keras.dangerous-callable`` or ``keras.unsafe-layer``."""
    severity: Severity
    """How bad it is."""
    title: str
    """Headline."""
    key: str
    """Deduplication key: the same layer or object reported once per file."""
    path: str
    """Where in the JSON (``config.layers[2].config``)."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """Details (layer name, module, referenced names…)."""


def parse_json(text: str) -> tuple[Any, list[Any]]:
    """``json.loads`` (last duplicate key wins, as in Keras) plus the values duplicates shadowed.

    The shadowed values are returned so that they can be inspected too: another reader may
    keep the first occurrence.
    """
    shadowed: list[Any] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                shadowed.append(out[key])
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=pairs), shadowed


def inspect_config(
    roots: Iterable[Any], check: Callable[[], None] | None = None
) -> list[KerasIssue]:
    """Walk JSON values (configs, metadata) and list their dangerous Keras entries."""
    issues: list[KerasIssue] = []
    handled: set[int] = set()
    stack: list[tuple[Any, str]] = [(root, "$") for root in roots]
    steps = 0
    while stack:
        value, path = stack.pop()
        steps += 1
        if check is not None and steps % 4096 == 0:
            check()
        if isinstance(value, dict):
            if "class_name" in value and id(value) not in handled:
                issues.extend(_object_issues(value, path, handled))
            stack.extend((v, f"{path}.{k}") for k, v in value.items() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend(
                (v, f"{path}[{i}]") for i, v in enumerate(value) if isinstance(v, dict | list)
            )
    return issues


def _is_keras_module(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in KERAS_MODULES)


def _object_issues(obj: dict[str, Any], path: str, handled: set[int]) -> list[KerasIssue]:
    out: list[KerasIssue] = []
    class_name = obj.get("class_name")
    module = obj.get("module")
    registered = obj.get("registered_name")
    config = obj.get("config")
    fname = config if class_name == "function" and isinstance(config, str) else None
    if class_name == "Lambda":
        out.append(_lambda_issue(obj, path, handled))
    elif class_name == "__lambda__":
        code = _bytecode_in(config)
        out.append(
            KerasIssue(
                "keras.lambda-bytecode",
                Severity.CRITICAL,
                "Keras config embeds a serialized Python lambda (bytecode)",
                f"lambda:{_digest(config)}",
                path,
                {"references": sorted(code[1])} if code else {},
            )
        )
    elif class_name == "TFSMLayer":
        cfg = config if isinstance(config, dict) else {}
        out.append(
            KerasIssue(
                "keras.unsafe-layer",
                Severity.HIGH,
                "Keras TFSMLayer loads a TensorFlow SavedModel named in the config",
                f"tfsm:{str(cfg.get('filepath'))[:200]}",
                path,
                {"filepath": str(cfg.get("filepath"))[:300]},
            )
        )
    if isinstance(module, str) and module:
        root = module.split(".", 1)[0]
        if not _is_keras_module(module):
            if root in DANGEROUS_MODULES or (
                root in ("builtins", "__builtin__") and fname in _DANGEROUS_BUILTINS
            ):
                out.append(
                    KerasIssue(
                        "keras.dangerous-callable",
                        Severity.CRITICAL,
                        f"Keras config calls into {module!r}",
                        f"call:{module}:{class_name}:{fname}",
                        path,
                        {"module": module, "class_name": str(class_name), "function": fname},
                    )
                )
            else:
                out.append(_custom(f"{module}.{fname or class_name}", path, module=module))
        elif fname in _KERAS_GADGETS:
            out.append(
                KerasIssue(
                    "keras.dangerous-callable",
                    Severity.HIGH,
                    f"Keras config calls {module}.{fname} (downloads files, loads models or "
                    "disables safe_mode)",
                    f"call:{module}:{fname}",
                    path,
                    {"module": module, "function": fname},
                )
            )
    for name in (registered, class_name):
        if isinstance(name, str) and ">" in name and not name.startswith("keras"):
            out.append(_custom(name, path, registered_name=name))
            break
    return out


def _custom(what: str, path: str, **evidence: Any) -> KerasIssue:
    return KerasIssue(
        "keras.custom-object",
        Severity.MEDIUM,
        f"Keras config needs custom object {what!r} (its code is imported on load)",
        f"custom:{what}",
        path,
        {"object": what, **evidence},
    )


def _lambda_issue(layer: dict[str, Any], path: str, handled: set[int]) -> KerasIssue:
    config = layer.get("config")
    config = config if isinstance(config, dict) else {}
    name = str(config.get("name", ""))[:200]
    references: set[str] = set()
    bytecode_at: list[str] = []
    modules: list[str] = []
    stack: list[tuple[Any, str]] = [(config, "config")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            code = _marshal_names(value)
            if code is not None:
                bytecode_at.append(where)
                references |= code
        elif isinstance(value, dict):
            if value.get("class_name") == "__lambda__":
                handled.add(id(value))
            mod = value.get("module")
            if isinstance(mod, str) and mod not in ("__main__", "") and not _is_keras_module(mod):
                modules.append(mod)
            stack.extend((v, f"{where}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
    if config.get("function_type") == "function" and isinstance(config.get("function"), str):
        references.add(str(config["function"]))
    dangerous = sorted(references & _CODE_NAMES) + [
        m for m in modules if m.split(".", 1)[0] in DANGEROUS_MODULES
    ]
    critical = bool(bytecode_at or dangerous)
    detail = "serialized Python bytecode" if bytecode_at else "a function looked up by name"
    return KerasIssue(
        "keras.lambda-layer",
        Severity.CRITICAL if critical else Severity.HIGH,
        f"Keras Lambda layer {name!r} runs {detail}",
        f"lambda-layer:{name}:{_digest(config)}",
        path,
        {
            "layer": name,
            "bytecode_at": bytecode_at[:_MAX_EXAMPLES],
            "dangerous_references": dangerous[:_MAX_EXAMPLES],
            "modules": sorted(set(modules))[:_MAX_EXAMPLES],
        },
    )


def _marshal_names(text: str) -> set[str] | None:
    """Identifiers in ``text`` when it is base64 of a marshalled code object, else ``None``."""
    if len(text) < 16 or not _B64.fullmatch(text):
        return None
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 16 or raw[0] not in (0x63, 0xE3):  # marshal TYPE_CODE, with or without FLAG_REF
        return None
    return _marshal_strings(raw)


def _marshal_strings(raw: bytes) -> set[str]:
    """Identifiers in the string objects of a marshal blob (read, never unmarshalled)."""
    raw = raw[: 1 << 20]
    names = {m.decode("ascii") for m in _IDENT.findall(raw)}
    for i, byte in enumerate(raw):
        kind = byte & 0x7F  # without FLAG_REF
        if kind in (0x5A, 0x7A) and i + 1 < len(raw):  # short ASCII: 1-byte length
            start, size = i + 2, raw[i + 1]
        elif kind in (0x41, 0x61, 0x74, 0x75) and i + 5 <= len(raw):  # 4-byte length
            start, size = i + 5, int.from_bytes(raw[i + 1 : i + 5], "little")
            if size > 4096:
                continue
        else:
            continue
        names.update(m.decode("ascii") for m in _IDENT.findall(raw[start : start + size]))
    return names


def _bytecode_in(value: Any) -> tuple[list[str], set[str]] | None:
    found: list[str] = []
    names: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            code = _marshal_names(v)
            if code is not None:
                found.append(v[:16])
                names |= code & _CODE_NAMES
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return (found, names) if found else None


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def issue_findings(
    ctx: ScanContext, issues: Iterable[KerasIssue], source: str
) -> Iterator[Finding]:
    """One finding per distinct issue (same rule and key), with where it occurs."""
    grouped: dict[tuple[str, str], list[KerasIssue]] = {}
    for issue in issues:
        grouped.setdefault((issue.rule, issue.key), []).append(issue)
    for group in grouped.values():
        first = max(group, key=lambda i: i.severity)
        yield ctx.finding(
            first.rule,
            first.severity,
            first.title,
            summary=f"Found in {source} ({len(group)} place(s)).",
            evidence={
                "source": source,
                **first.evidence,
                "count": len(group),
                "at": [i.path[:300] for i in group[:_MAX_EXAMPLES]],
            },
            remediation=_REMEDIATION.get(first.rule, ""),
        )


_REMEDIATION = {
    "keras.lambda-layer": "Do not load this model. Lambda layers run arbitrary Python; "
    "rebuild the model without them, or load only in a disposable sandbox with "
    "safe_mode=True (Keras ≥ 3.9).",
    "keras.lambda-bytecode": "Do not load this model: it carries Python bytecode that runs "
    "on load or on call.",
    "keras.dangerous-callable": "Do not load this model: its config calls functions that "
    "reach the operating system or switch Keras's safe_mode off.",
    "keras.custom-object": "Load only with custom objects you have reviewed; the named module "
    "is imported and its code runs.",
    "keras.unsafe-layer": "Check the SavedModel path the layer loads; a SavedModel graph can "
    "read and write files.",
}


# --- scanner ------------------------------------------------------------------------------


class KerasConfigScanner:
    """``keras``: a JSON object that looks like a Keras model config."""

    name = "keras"
    first_bytes = b"\xef\xbb\xbf \t\r\n{"
    """``sniff`` strips BOM bytes and whitespace, then wants ``{``."""

    def sniff(self, head: bytes) -> bool:
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not text.startswith(b"{") or b"\x00" in head:
            return False
        keys = {m.group(1) for m in _JSON_KEY.finditer(head)}
        return b"class_name" in keys and bool(keys & {b"config", b"module", b"registered_name"})

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        data = stream.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            yield _malformed(ctx, f"config larger than {MAX_CONFIG_BYTES} bytes; not analysed")
            return
        try:
            obj, shadowed = parse_json(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            yield _malformed(ctx, f"not valid JSON ({type(exc).__name__}: {exc})"[:300])
            return
        issues = inspect_config([obj, *shadowed], ctx.check_time)
        yield from issue_findings(ctx, issues, "Keras JSON config")


def _malformed(ctx: ScanContext, message: str) -> Finding:
    return ctx.finding(
        "keras.malformed",
        Severity.MEDIUM,
        f"Keras config: {message}",
        remediation="A config that cannot be parsed cannot be vouched for; re-export the "
        "model from a trusted source.",
    )


SCANNERS: list[FormatScanner] = [KerasConfigScanner()]
