"""CycloneDX 1.6 ML-BOM: the model, its data, its assessment and its Python dependencies.

:func:`build_sbom` returns one CycloneDX 1.6 JSON document (a ``dict``):

* the model as a ``machine-learning-model`` component. A single-file model (ONNX,
  TorchScript, a bare safetensors or pickle file) carries the SHA-256 of that file in
  ``hashes``. A model made of several files (a Warden spec and its weights, or a folder) has
  one nested ``file`` component per file, each with its own SHA-256, and no hash of its own:
  a CycloneDX ``hashes`` entry is meant to be checked against bytes with any SHA-256 tool, and
  neither a folder nor a manifest root digest (whose value depends on one manifest algorithm)
  can be checked that way. Consumers such as Dependency-Track or ``cyclonedx-cli`` verify and
  diff the nested file components like any other.
* its ``modelCard``: ``modelParameters`` read from metadata only (the Warden spec, the
  safetensors header, the ONNX graph, the TorchScript archive's member names; nothing is
  unpickled or executed), ``quantitativeAnalysis`` from a ``warden assess`` report (clean
  accuracy, robust accuracy per attack and epsilon, grades) and ``considerations`` (the
  report's threats as risks with their remediations as mitigations, plus intended uses and
  limitations the caller gives). The inputs are a plain :class:`ModelCardFacts`, so another
  source (a model registry) can supply them without any file discovery.
* datasets as ``data`` components (``data[].type = dataset``) with their Warden content
  fingerprint (a property: it is a digest of the decoded arrays, not of a file) and, for a
  dataset file, the file's SHA-256 in ``hashes``; the model card links them by ``bom-ref``.
* Python distributions as ``library`` components with ``pkg:pypi`` purls: every installed
  distribution, or the pinned lines of a requirements file. No wheel hash is available
  offline, so none is invented: the property ``warden:dist:record-sha256`` is the SHA-256 of
  the installed distribution's ``RECORD`` file (which itself lists a hash of every installed
  file).
* ``dependencies``: the model on the libraries its format needs at run time, and each library
  on the installed distributions its unconditional ``Requires-Dist`` lines name.

cyclonedx-python-lib has no model-card support, so the JSON is built here and checked with
:func:`validate_sbom` against the CycloneDX 1.6 schema that ships inside that library.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import stat
import struct
import tomllib
import uuid
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement

from warden.errors import ConfigError, DataError, ModelLoadError
from warden.supplychain.osv import normalize_name

if TYPE_CHECKING:
    from warden.assess.result import Assessment
    from warden.data.dataset import Dataset

__all__ = [
    "APPROACHES",
    "SPEC_VERSION",
    "DatasetFacts",
    "ModelArtifact",
    "ModelCardFacts",
    "ModelFile",
    "PerformanceMetric",
    "Risk",
    "build_sbom",
    "facts_from_assessment",
    "inspect_model",
    "read_assessment",
    "validate_sbom",
    "write_sbom",
]

logger = logging.getLogger(__name__)

SPEC_VERSION = "1.6"
"""The CycloneDX version written."""

APPROACHES = frozenset(
    {"supervised", "unsupervised", "reinforcement-learning", "semi-supervised", "self-supervised"}
)
"""The values CycloneDX 1.6 allows for ``modelParameters.approach.type``."""

_MAX_MODEL_FILES = 10_000
_MAX_SAFETENSORS_HEADER = 100 << 20
_MAX_ZIP_NAMES = 100_000

_RUNTIME: dict[str, tuple[str, ...]] = {
    "safetensors": ("safetensors",),
    "spec:safetensors": ("warden", "torch", "safetensors", "numpy"),
    "spec:torchscript": ("warden", "torch"),
    "spec:onnx": ("warden", "onnxruntime", "onnx", "numpy"),
    "onnx": ("onnxruntime", "onnx", "numpy"),
    "torchscript": ("torch",),
    "torch-pickle": ("torch",),
}
"""Distributions each model format needs to run (edges from the model in ``dependencies``)."""

_ZOO_FAMILIES = {
    "digits-cnn": "convolutional neural network",
    "tabular-mlp": "multilayer perceptron",
}


# --- model card facts ------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceMetric:
    """One ``quantitativeAnalysis.performanceMetrics`` entry."""

    type: str
    """What was measured: ``accuracy``, ``robust-accuracy``, ``grade`` …"""
    value: str
    """The measured value, as text (CycloneDX stores it as a string)."""
    slice: str = ""
    """Which part of the evaluation it applies to (``attack=pgd, eps=0.1``, ``overall``)."""

    def to_cdx(self) -> dict[str, str]:
        """CycloneDX form."""
        out = {"type": self.type, "value": self.value}
        if self.slice:
            out["slice"] = self.slice
        return out


@dataclass(frozen=True)
class Risk:
    """A known risk of using the model and what mitigates it (``ethicalConsiderations``)."""

    name: str
    """The risk, in one line."""
    mitigation: str = ""
    """What to do about it."""

    def to_cdx(self) -> dict[str, str]:
        """CycloneDX form."""
        out = {"name": self.name}
        if self.mitigation:
            out["mitigationStrategy"] = self.mitigation
        return out


@dataclass(frozen=True)
class ModelCardFacts:
    """Everything the model card says, independent of where it was learned.

    File discovery (:func:`inspect_model`), an assessment report
    (:func:`facts_from_assessment`), the command line or a model registry each produce one;
    :meth:`merged` combines them.
    """

    task: str | None = None
    """What the model does (``classification``)."""
    architecture_family: str | None = None
    """Broad family (``convolutional neural network``)."""
    model_architecture: str | None = None
    """The specific architecture (``digits-cnn``)."""
    approach: str | None = None
    """Learning approach; one of :data:`APPROACHES`."""
    inputs: tuple[str, ...] = ()
    """Input formats (``tensor(float32) [batch, 1, 8, 8]``)."""
    outputs: tuple[str, ...] = ()
    """Output formats."""
    metrics: tuple[PerformanceMetric, ...] = ()
    """Measured performance."""
    risks: tuple[Risk, ...] = ()
    """Known risks and their mitigations."""
    use_cases: tuple[str, ...] = ()
    """Intended uses."""
    limitations: tuple[str, ...] = ()
    """Technical limitations."""
    users: tuple[str, ...] = ()
    """Intended users."""
    properties: tuple[tuple[str, str], ...] = ()
    """Extra ``name``/``value`` properties for the model card."""

    def __post_init__(self) -> None:
        if self.approach is not None and self.approach not in APPROACHES:
            raise ConfigError(
                f"model approach {self.approach!r} is not one of {', '.join(sorted(APPROACHES))}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))

    def merged(self, other: ModelCardFacts) -> ModelCardFacts:
        """These facts updated by ``other``: its scalars and input/output lists win when set;
        metrics, risks, uses, limitations, users and properties are appended (no duplicates)."""
        changes: dict[str, Any] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name in ("inputs", "outputs") or not isinstance(mine, tuple):
                changes[f.name] = theirs if theirs not in (None, ()) else mine
            else:
                changes[f.name] = tuple(dict.fromkeys((*mine, *theirs)))
        return replace(self, **changes)

    def to_cdx(self, dataset_refs: Sequence[str] = ()) -> dict[str, Any]:
        """The CycloneDX ``modelCard`` object; empty sections are left out."""
        params: dict[str, Any] = {}
        if self.approach:
            params["approach"] = {"type": self.approach}
        for key, value in (
            ("task", self.task),
            ("architectureFamily", self.architecture_family),
            ("modelArchitecture", self.model_architecture),
        ):
            if value:
                params[key] = value
        if dataset_refs:
            params["datasets"] = [{"ref": r} for r in dataset_refs]
        if self.inputs:
            params["inputs"] = [{"format": f} for f in self.inputs]
        if self.outputs:
            params["outputs"] = [{"format": f} for f in self.outputs]
        card: dict[str, Any] = {}
        if params:
            card["modelParameters"] = params
        if self.metrics:
            card["quantitativeAnalysis"] = {
                "performanceMetrics": [m.to_cdx() for m in self.metrics]
            }
        considerations: dict[str, Any] = {}
        for key, items in (
            ("users", self.users),
            ("useCases", self.use_cases),
            ("technicalLimitations", self.limitations),
        ):
            if items:
                considerations[key] = list(items)
        if self.risks:
            considerations["ethicalConsiderations"] = [r.to_cdx() for r in self.risks]
        if considerations:
            card["considerations"] = considerations
        if self.properties:
            card["properties"] = _props(self.properties)
        return card


def _props(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs]


# --- model discovery -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFile:
    """One file of the model artifact."""

    path: str
    """POSIX path relative to the model's folder (the spec's folder for a spec)."""
    sha256: str
    """Hex SHA-256 of its bytes."""
    size: int
    """Size in bytes."""
    role: str = ""
    """``spec`` or ``weights`` when known."""


@dataclass(frozen=True)
class ModelArtifact:
    """What :func:`inspect_model` found on disk, without loading the model."""

    name: str
    """Default component name (file stem or folder name)."""
    format: str
    """``spec:safetensors``, ``spec:onnx``, ``spec:torchscript``, ``safetensors``, ``onnx``,
    ``torchscript``, ``torch-pickle``, ``pickle``, ``directory`` or ``unknown``."""
    files: tuple[ModelFile, ...]
    """Every file of the artifact, with digests."""
    single_file: bool
    """True when the model is one file (its hash goes on the model component itself)."""
    facts: ModelCardFacts = field(default_factory=ModelCardFacts)
    """Model-card facts read from metadata."""
    version: str | None = None
    """A version the artifact records (a spec's ``version``), if any."""
    properties: tuple[tuple[str, str], ...] = ()
    """Extra facts for the model component (``warden:model:parameters`` …)."""

    @property
    def runtime(self) -> tuple[str, ...]:
        """Distributions (normalised names) the format needs at run time."""
        return _RUNTIME.get(self.format, ())


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _model_file(path: Path, rel: str, role: str = "") -> ModelFile:
    try:
        st = path.stat()
        digest = _sha256_file(path)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read model file: {exc.strerror or exc}") from exc
    return ModelFile(rel, digest, st.st_size, role)


def _read_spec(path: Path) -> dict[str, Any] | None:
    """A Warden model spec (JSON or TOML with ``warden_model``), or None."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        data: Any = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (ValueError, RecursionError, tomllib.TOMLDecodeError):
        return None
    return data if isinstance(data, dict) and "warden_model" in data else None


def _family(tokens: Iterable[str], ranks: Iterable[int] = ()) -> str | None:
    """A broad architecture family from op types, module paths or tensor names (lower case)."""
    text = " ".join(t.lower() for t in tokens)
    if not text:
        return None
    if "treeensemble" in text:
        return "tree ensemble"
    if "svm" in text:
        return "support vector machine"
    if "linearclassifier" in text or "linearregressor" in text:
        return "linear model"
    if any(k in text for k in ("attention", "attn", "transformer")):
        return "transformer"
    if any(k in text for k in ("lstm", "gru", "rnn", "weight_ih_l")):
        return "recurrent neural network"
    if "conv" in text or any(r >= 3 for r in ranks):
        return "convolutional neural network"
    if any(k in text for k in ("gemm", "matmul", "linear", "weight")):
        return "feed-forward neural network"
    return None


def _shape_text(dims: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _safetensors_facts(path: Path) -> tuple[ModelCardFacts, list[tuple[str, str]]]:
    """Facts from a safetensors header (JSON; the tensors are not read)."""
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return ModelCardFacts(), []
        (length,) = struct.unpack("<Q", head)
        if length > _MAX_SAFETENSORS_HEADER:
            return ModelCardFacts(), []
        raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ModelCardFacts(), []
    if not isinstance(header, dict):
        return ModelCardFacts(), []
    names, ranks, params, dtypes = [], [], 0, set()
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        shape = info.get("shape")
        if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
            names.append(name)
            ranks.append(len(shape))
            params += math.prod(shape)
            dtypes.add(str(info.get("dtype")))
    props = [
        ("warden:model:tensors", str(len(names))),
        ("warden:model:parameters", str(params)),
    ]
    if dtypes:
        props.append(("warden:model:dtypes", ",".join(sorted(dtypes))))
    return ModelCardFacts(architecture_family=_family(names, ranks)), props


def _onnx_facts(path: Path) -> tuple[ModelCardFacts, list[tuple[str, str]], list[str]]:
    """Facts from the ONNX graph (protobuf metadata; nothing runs), and external data files."""
    try:
        import onnx
    except ImportError:
        return ModelCardFacts(), [], []
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure: no facts, not a crash
        logger.warning("%s: cannot read the ONNX graph (%s); model card left sparse", path, exc)
        return ModelCardFacts(), [], []
    graph = proto.graph
    initializers = {t.name for t in graph.initializer}

    def describe(values: Iterable[Any]) -> tuple[str, ...]:
        out = []
        for v in values:
            if v.name in initializers:
                continue
            tt = v.type.tensor_type
            dtype = onnx.TensorProto.DataType.Name(tt.elem_type).lower() if tt.elem_type else "?"
            dims = [
                d.dim_param or (d.dim_value if d.HasField("dim_value") else "?")
                for d in tt.shape.dim
            ]
            out.append(f"tensor({dtype}) {_shape_text(dims)} '{v.name}'")
        return tuple(out)

    ops = sorted({n.op_type for n in graph.node})
    classifier = any(op.endswith("Classifier") for op in ops)
    params = sum(math.prod(t.dims) for t in graph.initializer)
    props = [
        ("warden:model:onnx-ir-version", str(proto.ir_version)),
        (
            "warden:model:onnx-opsets",
            ",".join(f"{o.domain or 'ai.onnx'}:{o.version}" for o in proto.opset_import),
        ),
        ("warden:model:parameters", str(params)),
    ]
    if proto.producer_name:
        props.append(
            ("warden:model:producer", f"{proto.producer_name} {proto.producer_version}".strip())
        )
    external = []
    for t in graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            for entry in t.external_data:
                if entry.key == "location":
                    external.append(entry.value)
    facts = ModelCardFacts(
        task="classification" if classifier else None,
        architecture_family=_family(ops),
        inputs=describe(graph.input),
        outputs=describe(graph.output),
    )
    return facts, props, sorted(set(external))


def _torchscript_facts(path: Path) -> ModelCardFacts:
    """Facts from the TorchScript archive's member names (the code is not read, nothing runs)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist()[:_MAX_ZIP_NAMES]]
    except (zipfile.BadZipFile, OSError):
        return ModelCardFacts()
    modules = [n.split("/code/", 1)[1] for n in names if "/code/" in n and n.endswith(".py")]
    return ModelCardFacts(architecture_family=_family(modules))


def _spec_facts(spec: Mapping[str, Any]) -> ModelCardFacts:
    arch = spec.get("architecture") if isinstance(spec.get("architecture"), str) else None
    shape = spec.get("input_shape")
    n_classes = spec.get("n_classes")
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
        text = f"tensor(float32) {_shape_text(['batch', *shape])}"
        bounds = spec.get("bounds")
        if isinstance(bounds, dict):
            lo, hi = bounds.get("lower"), bounds.get("upper")
            if isinstance(lo, int | float) and isinstance(hi, int | float):
                text += f" in [{lo:g}, {hi:g}]"
        inputs = (text,)
    if isinstance(n_classes, int):
        outputs = (f"tensor(float32) [batch, {n_classes}] class scores",)
    return ModelCardFacts(
        task="classification" if isinstance(n_classes, int) else None,
        architecture_family=_ZOO_FAMILIES.get(arch or ""),
        model_architecture=arch,
        inputs=inputs,
        outputs=outputs,
    )


def _inspect_spec(spec_path: Path, spec: Mapping[str, Any], base: Path) -> ModelArtifact:
    rel = spec.get("path")
    if not isinstance(rel, str):
        raise ModelLoadError(f"{spec_path}: spec needs 'path' (the artifact, relative to the spec)")
    artifact = spec_path.parent / rel
    try:
        mode = artifact.stat().st_mode
    except OSError:
        raise ModelLoadError(f"{spec_path}: artifact {rel!r} not found at {artifact}") from None
    if not stat.S_ISREG(mode):
        raise ModelLoadError(f"{spec_path}: artifact {rel!r} is not a regular file")
    weights = _model_file(artifact, _relative(artifact, base), "weights")
    expected = spec.get("sha256")
    if expected is not None and expected != weights.sha256:
        raise ModelLoadError(
            f"{artifact}: SHA-256 does not match the spec; the file was changed after it was "
            "saved, so a BOM of it would describe a different model than the spec names"
        )
    fmt = spec.get("format")
    facts = _spec_facts(spec)
    props: list[tuple[str, str]] = []
    if fmt == "safetensors":
        found, props = _safetensors_facts(artifact)
        facts = found.merged(facts)
    elif fmt == "onnx":
        found, props, _ = _onnx_facts(artifact)
        facts = found.merged(facts)
    elif fmt == "torchscript":
        facts = _torchscript_facts(artifact).merged(facts)
    else:
        raise ModelLoadError(
            f"{spec_path}: spec format {fmt!r} is not one of safetensors, torchscript, onnx"
        )
    version = spec.get("version") if isinstance(spec.get("version"), str) else None
    spec_file = _model_file(spec_path, _relative(spec_path, base), "spec")
    return ModelArtifact(
        name=spec_path.stem,
        format=f"spec:{fmt}",
        files=(spec_file, weights),
        single_file=False,
        facts=facts,
        version=version,
        properties=tuple(props),
    )


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return os.path.relpath(path.resolve(), base.resolve()).replace(os.sep, "/")


def _walk(folder: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            p = Path(root) / name
            mode = p.lstat().st_mode
            if stat.S_ISLNK(mode):
                logger.warning("%s: symbolic link skipped; the BOM lists regular files only", p)
                continue
            if stat.S_ISREG(mode):
                files.append(p)
            if len(files) > _MAX_MODEL_FILES:
                raise ModelLoadError(
                    f"{folder}: more than {_MAX_MODEL_FILES} files; is this really a model folder?"
                )
    return files


def inspect_model(source: str | os.PathLike[str]) -> ModelArtifact:
    """Find the files of the model at ``source`` and read what their metadata says.

    ``source`` is a Warden spec (JSON/TOML), a folder (every regular file is listed; a
    ``model.json``/``model.toml`` spec in it supplies the facts), or a single ONNX, TorchScript,
    safetensors or pickle file. Formats are recognised by content as
    :func:`warden.models.loading.sniff_format` does. Nothing is loaded, unpickled or run. A spec
    whose recorded SHA-256 does not match its weights is refused.
    """
    from warden.models.loading import sniff_format

    path = Path(source)
    if path.is_dir():
        found = _walk(path)
        if not found:
            raise ModelLoadError(f"{path}: the model folder holds no regular file")
        spec_path = next(
            (path / n for n in ("model.json", "model.toml") if (path / n).is_file()), None
        )
        spec = _read_spec(spec_path) if spec_path else None
        listed = dict(sorted((_relative(f, path), f) for f in found))
        if spec is not None and spec_path is not None:
            inner = _inspect_spec(spec_path, spec, path)
            known = {f.path: f for f in inner.files}
            extra = [f for f in inner.files if f.path not in listed]
            model_files = tuple(
                [known.get(rel) or _model_file(p, rel) for rel, p in listed.items()] + extra
            )
            return replace(inner, name=path.resolve().name, files=model_files)
        return ModelArtifact(
            name=path.resolve().name,
            format="directory",
            files=tuple(_model_file(p, rel) for rel, p in listed.items()),
            single_file=False,
        )
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file or folder")
    kind = sniff_format(path)
    if kind == "spec":
        spec = _read_spec(path)
        if spec is None:
            raise ModelLoadError(f"{path}: not a readable Warden model spec")
        return _inspect_spec(path, spec, path.parent)
    single = _model_file(path, path.name, "weights")
    facts, props = ModelCardFacts(), list[tuple[str, str]]()
    files = [single]
    if kind == "safetensors":
        facts, props = _safetensors_facts(path)
    elif kind == "onnx":
        facts, props, external = _onnx_facts(path)
        for loc in external:
            data = (path.parent / loc).resolve()
            if data.is_file() and data.is_relative_to(path.parent.resolve()):
                files.append(_model_file(data, _relative(data, path.parent), "external-data"))
            else:
                logger.warning(
                    "%s: external data %r is outside the model folder; not listed", path, loc
                )
    elif kind == "torchscript":
        facts = _torchscript_facts(path)
    elif kind in ("pickle", "torch-pickle"):
        props = [("warden:model:executes-code-on-load", "true")]
        logger.warning("%s: a pickle-based model runs code when loaded; it was not loaded", path)
    else:
        logger.warning("%s: unrecognised model format; listed by its hash only", path)
    return ModelArtifact(
        name=path.stem,
        format=kind,
        files=tuple(files),
        single_file=len(files) == 1,
        facts=facts,
        properties=tuple(props),
    )


# --- the assessment --------------------------------------------------------------------------


def read_assessment(
    source: str | os.PathLike[str] | Mapping[str, Any] | Assessment,
) -> dict[str, Any]:
    """A ``warden assess`` JSON report as a dict, from a path, a dict or an Assessment.

    Raises :class:`~warden.errors.ConfigError` when it is not a Warden assessment report of a
    supported schema version (1.x).
    """
    from warden.assess.result import Assessment

    if isinstance(source, Assessment):
        from warden.report.json import assessment_to_dict

        return assessment_to_dict(source)
    if isinstance(source, Mapping):
        doc: Any = dict(source)
        where = "assessment"
    else:
        where = os.fspath(source)
        try:
            raw = Path(source).read_bytes()
            doc = json.loads(raw.decode("utf-8"))
        except OSError as exc:
            raise ConfigError(
                f"cannot read assessment report {where}: {exc.strerror or exc}"
            ) from exc
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ConfigError(
                f"{where}: not JSON ({type(exc).__name__}: {exc}); expected report.json from "
                "`warden assess`"
            ) from exc
    expected = "expected report.json written by `warden assess` (schema 1.x)"
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: not a Warden assessment report; {expected}")
    version = doc.get("schema_version")
    if not isinstance(version, str) or version.split(".")[0] != "1":
        raise ConfigError(f"{where}: schema_version {version!r} is not supported; {expected}")
    if not isinstance(doc.get("findings"), list) or not isinstance(doc.get("scorecard"), dict):
        raise ConfigError(f"{where}: findings or scorecard missing; {expected}")
    return doc


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _curve(finding: Mapping[str, Any]) -> list[tuple[float, float]]:
    """(epsilon, robust accuracy) points of an evasion finding, from metrics or evidence."""
    metrics = finding.get("metrics") or {}
    xs, ys = metrics.get("epsilons"), metrics.get("robust_accuracy_curve")
    if not (isinstance(xs, list) and isinstance(ys, list) and len(xs) == len(ys) and xs):
        curve = (finding.get("evidence") or {}).get("curve") or {}
        xs, ys = curve.get("x"), curve.get("y")
    if isinstance(xs, list) and isinstance(ys, list) and len(xs) == len(ys):
        pts = [(_number(x), _number(y)) for x, y in zip(xs, ys, strict=True)]
        return [(x, y) for x, y in pts if x is not None and y is not None]
    eps, acc = _number(metrics.get("grade_epsilon")), _number(metrics.get("robust_accuracy"))
    return [(eps, acc)] if eps is not None and acc is not None else []


def facts_from_assessment(doc: Mapping[str, Any]) -> ModelCardFacts:
    """Model-card facts from a ``warden assess`` report (see :func:`read_assessment`).

    * metrics: clean accuracy (the ``baseline.accuracy`` finding, else an evasion finding's
      ``clean_accuracy``), robust accuracy per evasion finding and epsilon, the overall grade
      and each threat's grade;
    * risks: every finding of severity low or worse, named with its OWASP ML Top 10 threats
      and severity, mitigated by its remediation;
    * task ``classification`` (Warden assesses classifiers).
    """
    from warden.assess.finding import OWASP_ML_TOP10

    findings = [f for f in doc.get("findings", []) if isinstance(f, dict)]
    dataset: Mapping[str, Any] = doc["dataset"] if isinstance(doc.get("dataset"), dict) else {}
    data_name = str(dataset.get("name", "evaluation data"))
    metrics: list[PerformanceMetric] = []
    clean = next(
        (
            _number((f.get("metrics") or {}).get("accuracy"))
            for f in findings
            if f.get("check") == "baseline.accuracy"
        ),
        None,
    )
    if clean is None:
        clean = next(
            (
                v
                for f in findings
                if (v := _number((f.get("metrics") or {}).get("clean_accuracy"))) is not None
            ),
            None,
        )
    if clean is not None:
        metrics.append(PerformanceMetric("accuracy", f"{clean:.6g}", f"clean inputs, {data_name}"))
    for f in findings:
        if _number((f.get("metrics") or {}).get("robust_accuracy")) is None:
            continue
        series = ((f.get("evidence") or {}).get("curve") or {}).get("series") or f.get("id")
        for eps, acc in _curve(f):
            metrics.append(
                PerformanceMetric("robust-accuracy", f"{acc:.6g}", f"attack={series}, eps={eps:g}")
            )
    scorecard = doc.get("scorecard") or {}
    if isinstance(scorecard.get("overall"), str):
        metrics.append(PerformanceMetric("grade", scorecard["overall"], "overall"))
    for t in scorecard.get("threats") or []:
        if isinstance(t, dict) and isinstance(t.get("grade"), str):
            metrics.append(
                PerformanceMetric("grade", t["grade"], f"{t.get('threat')} {t.get('name')}")
            )
    risks = []
    for f in findings:
        if f.get("severity") in (None, "info"):
            continue
        threats = "; ".join(
            f"{t} {OWASP_ML_TOP10.get(t, '')}".strip() for t in f.get("owasp") or []
        )
        label = f"{threats}: " if threats else ""
        risks.append(
            Risk(
                name=f"{label}{f.get('title', f.get('id'))} "
                f"(severity {f.get('severity')}, {f.get('id')})",
                mitigation=str(f.get("remediation") or ""),
            )
        )
    props = [
        (f"warden:assessment:{key}", str(doc[key]))
        for key in ("suite", "finished_at", "warden_version")
        if isinstance(doc.get(key), str)
    ]
    model = doc.get("model")
    if isinstance(model, dict):
        for key in ("source", "name", "kind"):
            if isinstance(model.get(key), str) and model[key]:
                props.append((f"warden:assessment:model-{key}", model[key]))
    return ModelCardFacts(
        task="classification",  # Warden's Model protocol is a classifier
        metrics=tuple(metrics),
        risks=tuple(risks),
        properties=tuple(props),
    )


# --- datasets --------------------------------------------------------------------------------


def _dataset_component(
    name: str,
    fingerprint: str,
    props: list[tuple[str, str]],
    file_sha256: str | None = None,
) -> dict[str, Any]:
    comp: dict[str, Any] = {
        "type": "data",
        "bom-ref": f"dataset:{name}@{fingerprint.removeprefix('sha256:')[:16]}",
        "name": name,
    }
    if file_sha256:
        comp["hashes"] = [{"alg": "SHA-256", "content": file_sha256}]
    comp["data"] = [{"type": "dataset", "name": name}]
    comp["properties"] = _props([("warden:dataset:fingerprint", fingerprint), *props])
    return comp


@dataclass(frozen=True)
class DatasetFacts:
    """A dataset known by its record rather than its file (for example from a model registry)."""

    name: str
    """The dataset's name."""
    fingerprint: str
    """Its content fingerprint (``sha256:`` + hex)."""
    properties: tuple[tuple[str, str], ...] = ()
    """Extra ``name``/``value`` properties (source, licence, role, columns …)."""


def _describe_dataset(item: str | os.PathLike[str] | Dataset | DatasetFacts) -> dict[str, Any]:
    from warden.data.dataset import Dataset
    from warden.data.loaders import load_dataset

    if isinstance(item, DatasetFacts):
        return _dataset_component(item.name, item.fingerprint, list(item.properties))
    ds = item if isinstance(item, Dataset) else load_dataset(os.fspath(item))
    props = [
        ("warden:dataset:samples", str(len(ds))),
        ("warden:dataset:input-shape", _shape_text(ds.input_shape)),
        ("warden:dataset:classes", str(ds.n_classes)),
    ]
    for key in ("source", "kind"):
        value = ds.metadata.get(key)
        if isinstance(value, str):
            props.append((f"warden:dataset:{key}", value))
    file_sha = None
    if not isinstance(item, Dataset) and Path(item).is_file():
        file_sha = _sha256_file(Path(item))
    return _dataset_component(ds.name, ds.fingerprint, props, file_sha)


# --- libraries -------------------------------------------------------------------------------


def _purl(name: str, version: str) -> str:
    return f"pkg:pypi/{normalize_name(name)}@{quote(version, safe='')}"


@dataclass(frozen=True)
class _Library:
    name: str
    version: str
    requires: tuple[str, ...]
    props: tuple[tuple[str, str], ...]
    license_expression: str | None = None

    @property
    def key(self) -> str:
        return normalize_name(self.name)

    @property
    def ref(self) -> str:
        return _purl(self.name, self.version)

    def to_cdx(self) -> dict[str, Any]:
        comp: dict[str, Any] = {
            "type": "library",
            "bom-ref": self.ref,
            "name": self.name,
            "version": self.version,
            "purl": self.ref,
        }
        if self.license_expression:
            comp["licenses"] = [{"expression": self.license_expression}]
        if self.props:
            comp["properties"] = _props(self.props)
        return comp


def _runtime_requires(dist: metadata.Distribution) -> tuple[str, ...]:
    """Normalised names of the unconditional Requires-Dist lines (markers true, no extra)."""
    out: list[str] = []
    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None:
            try:
                if not req.marker.evaluate({"extra": ""}):
                    continue
            except UndefinedEnvironmentName:
                continue
        out.append(normalize_name(req.name))
    return tuple(dict.fromkeys(out))


def _from_dist(dist: metadata.Distribution) -> _Library | None:
    meta = dist.metadata
    name, version = (meta["Name"], meta["Version"]) if meta else (None, None)
    if not name or not version:
        return None
    props: list[tuple[str, str]] = []
    record = dist.read_text("RECORD")
    if record is not None:
        props.append(
            ("warden:dist:record-sha256", hashlib.sha256(record.encode("utf-8")).hexdigest())
        )
    expressions = meta.get_all("License-Expression") or []
    return _Library(
        name=name,
        version=version,
        requires=_runtime_requires(dist),
        props=tuple(props),
        license_expression=str(expressions[0]).strip() if expressions else None,
    )


def _libraries(
    distributions: Iterable[metadata.Distribution] | None,
    requirements: str | os.PathLike[str] | None,
) -> tuple[list[_Library], list[tuple[str, str]]]:
    """Library components and metadata properties saying where they came from."""
    dists = list(metadata.distributions() if distributions is None else distributions)
    installed: dict[str, _Library] = {}
    for dist in dists:
        lib = _from_dist(dist)
        if lib is not None:
            installed.setdefault(lib.key, lib)
    if requirements is None:
        return list(installed.values()), [("warden:sbom:libraries", "installed distributions")]
    from warden.supplychain.deps import read_requirements

    pinned = read_requirements(requirements)
    for w in pinned.warnings:
        logger.warning("%s: %s", w.location or requirements, w.message)
    libs: dict[str, _Library] = {}
    for pkg in pinned.packages:
        same = installed.get(pkg.key)
        requires = same.requires if same is not None and same.version == pkg.version else ()
        props = [("warden:requirements:line", str(pkg.location))] if pkg.location else []
        if pkg.hashes:
            props.append(("warden:requirements:artifact-hashes", " ".join(pkg.hashes)))
        libs.setdefault(pkg.key, _Library(pkg.name, pkg.version, requires, tuple(props)))
    source = [("warden:sbom:libraries", f"pinned requirements {os.fspath(requirements)}")]
    if pinned.warnings:
        source.append(("warden:sbom:unaudited-requirements", str(len(pinned.warnings))))
    return list(libs.values()), source


# --- the BOM ---------------------------------------------------------------------------------


def _model_component(
    art: ModelArtifact,
    name: str,
    version: str | None,
    facts: ModelCardFacts,
    dataset_refs: Sequence[str],
) -> dict[str, Any]:
    ref = f"model:{name}" + (f"@{version}" if version else "")
    comp: dict[str, Any] = {"type": "machine-learning-model", "bom-ref": ref, "name": name}
    if version:
        comp["version"] = version
    if art.single_file:
        comp["hashes"] = [{"alg": "SHA-256", "content": art.files[0].sha256}]
    else:
        comp["components"] = [
            {
                "type": "file",
                "bom-ref": f"{ref}#file:{f.path}",
                "name": f.path,
                "hashes": [{"alg": "SHA-256", "content": f.sha256}],
                "properties": _props(
                    [("warden:file:size", str(f.size))]
                    + ([("warden:file:role", f.role)] if f.role else [])
                ),
            }
            for f in art.files
        ]
    props = [("warden:model:format", art.format), *art.properties]
    if art.single_file:
        props.append(("warden:file:size", str(art.files[0].size)))
    comp["properties"] = _props(props)
    comp["modelCard"] = facts.to_cdx(dataset_refs)
    return comp


def build_sbom(
    model_path: str | os.PathLike[str],
    *,
    assessment: str | os.PathLike[str] | Mapping[str, Any] | Assessment | None = None,
    datasets: Sequence[str | os.PathLike[str] | Dataset | DatasetFacts] = (),
    name: str | None = None,
    version: str | None = None,
    facts: ModelCardFacts | None = None,
    intended_use: Sequence[str] = (),
    limitations: Sequence[str] = (),
    requirements: str | os.PathLike[str] | None = None,
    distributions: Iterable[metadata.Distribution] | None = None,
    include_libraries: bool = True,
    timestamp: datetime | None = None,
    serial_number: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The CycloneDX 1.6 ML-BOM of the model at ``model_path``, as a JSON-ready dict.

    ``assessment`` is a ``warden assess`` report (path, parsed dict or Assessment); its metrics,
    threats and evaluation dataset go into the model card. ``datasets`` are bundled names,
    dataset paths, :class:`~warden.data.dataset.Dataset` objects or :class:`DatasetFacts`.
    ``facts`` (for example from a model registry) override what discovery and the report
    found; ``intended_use`` and ``limitations`` add to the card. Libraries are the installed
    distributions (``distributions`` to choose other ones) or the pins of ``requirements``;
    ``include_libraries=False`` leaves them out. ``timestamp`` and ``serial_number`` default to
    now and a random UUID.
    """
    from warden import __version__

    art = inspect_model(model_path)
    card = art.facts
    report = read_assessment(assessment) if assessment is not None else None
    if report is not None:
        card = card.merged(facts_from_assessment(report))
        if isinstance(assessment, str | os.PathLike):
            digest = _sha256_file(Path(assessment))
            card = card.merged(ModelCardFacts(properties=(("warden:assessment:sha256", digest),)))
    card = card.merged(
        ModelCardFacts(use_cases=tuple(intended_use), limitations=tuple(limitations))
    )
    if facts is not None:
        card = card.merged(facts)
    model_name = name or art.name
    model_version = version or art.version

    data_components = [_describe_dataset(d) for d in datasets]
    if report is not None and isinstance(report.get("dataset"), dict):
        evaluated = report["dataset"]
        fp = evaluated.get("fingerprint")
        match = next(
            (
                c
                for c in data_components
                if any(
                    p["value"] == fp
                    for p in c["properties"]
                    if p["name"] == "warden:dataset:fingerprint"
                )
            ),
            None,
        )
        if match is not None:
            match["properties"].append({"name": "warden:dataset:role", "value": "evaluation"})
        elif isinstance(fp, str) and fp:
            props = [("warden:dataset:role", "evaluation")]
            if isinstance(evaluated.get("n_samples"), int):
                props.append(("warden:dataset:samples", str(evaluated["n_samples"])))
            data_components.append(
                _dataset_component(str(evaluated.get("name", "evaluation data")), fp, props)
            )
    seen_refs: set[str] = set()
    unique_data = []
    for c in data_components:
        if c["bom-ref"] not in seen_refs:
            seen_refs.add(c["bom-ref"])
            unique_data.append(c)
    dataset_refs = [c["bom-ref"] for c in unique_data]

    libs, source_props = _libraries(distributions, requirements) if include_libraries else ([], [])
    model = _model_component(art, model_name, model_version, card, dataset_refs)
    by_key = {lib.key: lib for lib in libs}
    dependencies = [
        {
            "ref": model["bom-ref"],
            "dependsOn": [by_key[k].ref for k in art.runtime if k in by_key],
        }
    ]
    for lib in libs:
        dependencies.append(
            {
                "ref": lib.ref,
                "dependsOn": [by_key[k].ref for k in lib.requires if k in by_key and k != lib.key],
            }
        )
    when = (timestamp or datetime.now(UTC)).astimezone(UTC)
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": (serial_number or uuid.uuid4()).urn,
        "version": 1,
        "metadata": {
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lifecycles": [{"phase": "post-build"}],
            "tools": {
                "components": [
                    {
                        "type": "application",
                        "name": "warden",
                        "version": __version__,
                        "description": "Warden: security platform for machine-learning models",
                    }
                ]
            },
            "properties": _props(source_props),
        },
        "components": [model, *unique_data, *(lib.to_cdx() for lib in libs)],
        "dependencies": dependencies,
    }


def write_sbom(bom: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``bom`` as indented UTF-8 JSON to ``path`` atomically; return the path."""
    from warden.report._io import dumps, write_text

    return write_text(path, dumps(bom))


def _schema_registry() -> tuple[dict[str, Any], Any]:
    from importlib import resources

    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    res = resources.files("cyclonedx.schema._res")
    docs = {
        n: json.loads(res.joinpath(n).read_text("utf-8"))
        for n in (
            "bom-1.6.SNAPSHOT.schema.json",
            "spdx.SNAPSHOT.schema.json",
            "jsf-0.82.SNAPSHOT.schema.json",
        )
    }
    base = "http://cyclonedx.org/schema/"
    registry: Any = Registry().with_resources(
        (base + n, Resource.from_contents(doc, default_specification=DRAFT7))
        for n, doc in docs.items()
    )
    return docs["bom-1.6.SNAPSHOT.schema.json"], registry


def validate_sbom(bom: Mapping[str, Any]) -> list[str]:
    """Problems found validating ``bom`` against the CycloneDX 1.6 JSON schema (empty: valid).

    Uses the schema files that ship inside cyclonedx-python-lib and resolves their references
    locally (no network). Needs ``jsonschema``; raises :class:`~warden.errors.ConfigError`
    when it is not installed.
    """
    try:
        from jsonschema import Draft7Validator  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigError(
            "validating a BOM needs the jsonschema package (pip install jsonschema)"
        ) from exc
    try:
        schema, registry = _schema_registry()
    except (ImportError, OSError, ValueError) as exc:
        raise DataError(
            f"the CycloneDX 1.6 schema shipped with cyclonedx-python-lib is unreadable: {exc}"
        ) from exc
    validator = Draft7Validator(schema, registry=registry)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(
            validator.iter_errors(dict(bom)), key=lambda e: list(map(str, e.absolute_path))
        )
    ]
