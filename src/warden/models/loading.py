"""Safe model loading: a spec file + safetensors weights, TorchScript, or ONNX.

Formats are recognised by content, never by file name. Pickle-based files (``torch.save`` of
a whole object, joblib, plain pickle) execute code when loaded, so they are refused unless the
caller passes ``unsafe_allow_pickle=True`` (CLI ``--unsafe-allow-pickle``), which logs a
warning every time it is used.

A *model spec* is a small JSON (or TOML) file::

    {"warden_model": 1, "format": "safetensors", "path": "model.safetensors",
     "sha256": "…", "architecture": "digits-cnn", "arguments": {"n_classes": 10},
     "input_shape": [1, 8, 8], "n_classes": 10, "bounds": {"lower": 0.0, "upper": 1.0}}

``path`` is relative to the spec file. ``architecture`` names a factory registered with
:func:`warden.models.zoo.register_architecture`; the weights are tensors only. When ``sha256``
is present the artifact's digest must match it, so a swapped weights file is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import tomllib
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from warden.errors import ModelLoadError, UnsafeModelError, WardenError
from warden.models.base import Bounds, Model
from warden.models.torch import TorchModel

__all__ = ["load_model", "save_torch_model", "sniff_format"]

logger = logging.getLogger(__name__)

SPEC_VERSION = 1
_PICKLE_HINT = (
    "pickle-based files run code when loaded; export the weights to safetensors with a spec "
    "(warden.models.save_torch_model), TorchScript or ONNX, or pass --unsafe-allow-pickle "
    "if you trust the file"
)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_spec_text(head: bytes, path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text("utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    stripped = text.lstrip()
    data: Any
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None
    if isinstance(data, dict) and "warden_model" in data:
        return data
    return None


def sniff_format(path: Path) -> str:
    """What a model file is, from its bytes: ``spec``, ``safetensors``, ``torchscript``,
    ``torch-pickle``, ``pickle``, ``onnx`` or ``unknown``."""
    with path.open("rb") as fh:
        head = fh.read(16)
    size = path.stat().st_size
    if len(head) >= 9 and head[8:9] == b"{":
        (hlen,) = struct.unpack("<Q", head[:8])
        if 0 < hlen <= size - 8:
            return "safetensors"
    textual = head[:1] in (b"{", b"[", b"#") or head[:1].isspace() or head[:1].isalpha()
    if textual and _read_spec_text(head, path) is not None:
        return "spec"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return "unknown"
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith(".pkl") for n in names):
            return "torch-pickle"
        return "unknown"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if _looks_like_onnx(path):
        return "onnx"
    return "unknown"


def _looks_like_onnx(path: Path) -> bool:
    try:
        import onnx
    except ImportError:
        return False
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - any parse failure means "not ONNX"
        return False
    return bool(proto.ir_version) and len(proto.graph.node) > 0


def load_model(
    source: str | Path,
    *,
    unsafe_allow_pickle: bool = False,
    input_shape: Sequence[int] | None = None,
    n_classes: int | None = None,
    bounds: Bounds | None = None,
) -> Model:
    """Load a model from a spec file, a directory holding ``model.json``, TorchScript or ONNX.

    ``input_shape``, ``n_classes`` and ``bounds`` fill in what the artifact does not record
    (the CLI passes the dataset's); a spec's own values win.
    """
    path = Path(source)
    if path.is_dir():
        candidates = [path / "model.json", path / "model.toml"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise ModelLoadError(f"{path}: a model directory must contain model.json")
        path = found[0]
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    kind = sniff_format(path)
    logger.debug("model %s recognised as %s", path, kind)
    if kind == "spec":
        spec = _read_spec_text(b"", path)
        assert spec is not None
        return _load_spec(spec, path)
    if kind == "safetensors":
        raise ModelLoadError(
            f"{path}: safetensors holds weights only; write a model spec (JSON) that names the "
            "architecture and points at this file, or save with warden.models.save_torch_model"
        )
    if kind == "torchscript":
        return _load_torchscript(path, input_shape, n_classes, bounds)
    if kind == "onnx":
        return _load_onnx(path, input_shape, n_classes, bounds)
    if kind in ("pickle", "torch-pickle"):
        if not unsafe_allow_pickle:
            raise UnsafeModelError(f"{path}: refusing to load a pickle-based file: {_PICKLE_HINT}")
        return _load_pickle_unsafe(path, kind, input_shape, n_classes, bounds)
    raise ModelLoadError(
        f"{path}: unrecognised model format; expected a Warden model spec, TorchScript or ONNX"
    )


def _need(value: Any, what: str, path: Path) -> Any:
    if value is None:
        raise ModelLoadError(f"{path}: the model does not record its {what}; give it in a spec")
    return value


def _load_spec(spec: dict[str, Any], spec_path: Path) -> Model:
    if spec.get("warden_model") != SPEC_VERSION:
        raise ModelLoadError(
            f"{spec_path}: unsupported spec version {spec.get('warden_model')!r}; expected 1"
        )
    fmt = spec.get("format")
    rel = spec.get("path")
    if not isinstance(rel, str):
        raise ModelLoadError(f"{spec_path}: spec needs 'path' (the artifact, relative to the spec)")
    artifact = (spec_path.parent / rel).resolve()
    if not artifact.is_file():
        raise ModelLoadError(f"{spec_path}: artifact {rel!r} not found at {artifact}")
    expected = spec.get("sha256")
    if expected is not None and sha256_file(artifact) != expected:
        raise ModelLoadError(
            f"{artifact}: SHA-256 does not match the spec; the file was changed after it was saved"
        )
    shape = spec.get("input_shape")
    n_cls = spec.get("n_classes")
    bnd = (
        Bounds.from_dict(spec["bounds"], _need(shape, "input_shape", spec_path))
        if "bounds" in spec
        else None
    )
    if fmt == "safetensors":
        return _load_safetensors(spec, spec_path, artifact, shape, n_cls, bnd)
    actual = sniff_format(artifact)
    if fmt != actual or fmt not in ("torchscript", "onnx"):
        raise ModelLoadError(
            f"{spec_path}: spec says format {fmt!r} but {artifact.name} is {actual!r}; "
            "supported: safetensors, torchscript, onnx"
        )
    if fmt == "torchscript":
        return _load_torchscript(artifact, shape, n_cls, bnd)
    return _load_onnx(artifact, shape, n_cls, bnd)


def _load_safetensors(
    spec: dict[str, Any],
    spec_path: Path,
    artifact: Path,
    shape: Any,
    n_cls: Any,
    bnd: Bounds | None,
) -> TorchModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from warden.models.zoo import build_architecture

    arch = spec.get("architecture")
    if not isinstance(arch, str):
        raise ModelLoadError(f"{spec_path}: a safetensors spec needs 'architecture'")
    arguments = spec.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ModelLoadError(f"{spec_path}: 'arguments' must be a table of keyword arguments")
    module = build_architecture(arch, **arguments)
    try:
        state = load_file(str(artifact))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{artifact}: not a valid safetensors file: {exc}") from exc
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelLoadError(
            f"{artifact}: weights do not fit architecture {arch!r}: {' '.join(first[:2])}"
        ) from exc
    return TorchModel(
        module,
        input_shape=_need(shape, "input_shape", spec_path),
        n_classes=int(_need(n_cls, "n_classes", spec_path)),
        bounds=bnd,
        spec={"architecture": arch, "arguments": arguments},
    )


def _load_torchscript(
    path: Path, shape: Sequence[int] | None, n_cls: int | None, bnd: Bounds | None
) -> TorchModel:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a loadable TorchScript archive: {exc}") from exc
    return TorchModel(
        module,
        input_shape=_need(shape, "input_shape", path),
        n_classes=int(_need(n_cls, "number of classes", path)),
        bounds=bnd,
    )


def _load_onnx(
    path: Path, shape: Sequence[int] | None, n_cls: int | None, bnd: Bounds | None
) -> Model:
    from warden.models.onnx import OnnxModel

    return OnnxModel(path, input_shape=shape, n_classes=n_cls, bounds=bnd)


def _load_pickle_unsafe(
    path: Path, kind: str, shape: Sequence[int] | None, n_cls: int | None, bnd: Bounds | None
) -> Model:
    logger.warning(
        "unsafe_allow_pickle: loading %s with pickle; this runs any code the file contains", path
    )
    try:
        if kind == "torch-pickle" or _is_legacy_torch(path):
            import torch

            obj = torch.load(str(path), map_location="cpu", weights_only=False)
        else:
            import pickle

            with path.open("rb") as fh:
                obj = pickle.load(fh)  # noqa: S301 - explicitly allowed by the caller
    except Exception as exc:
        raise ModelLoadError(f"{path}: unpickling failed: {exc}") from exc
    if _is_torch_module(obj):
        return TorchModel(
            obj,
            input_shape=_need(shape, "input_shape", path),
            n_classes=int(_need(n_cls, "number of classes", path)),
            bounds=bnd,
        )
    if hasattr(obj, "predict_proba") or hasattr(obj, "decision_function"):
        from warden.models.sklearn import SklearnModel

        return SklearnModel(obj, input_shape=shape, bounds=bnd)
    raise ModelLoadError(
        f"{path}: unpickled a {type(obj).__name__}; expected a torch.nn.Module or a "
        "scikit-learn classifier (a state_dict needs a spec naming its architecture)"
    )


def _is_legacy_torch(path: Path) -> bool:
    """A pre-1.6 ``torch.save`` file starts with a pickled magic number (protocol 2, long)."""
    with path.open("rb") as fh:
        head = fh.read(16)
    return head.startswith(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19")


def _is_torch_module(obj: object) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(obj, torch.nn.Module)


def save_torch_model(model: TorchModel, directory: str | Path, name: str = "model") -> Path:
    """Save ``model`` as ``NAME.safetensors`` + ``NAME.json`` spec; return the spec path.

    The model must carry a ``spec`` (architecture recipe), as models from
    :func:`warden.models.zoo.train_model` and spec loading do.
    """
    from safetensors.torch import save_file

    if model.spec is None:
        raise WardenError(
            "this TorchModel has no architecture recipe (spec); build it with a registered "
            "architecture, or export it to TorchScript or ONNX instead"
        )
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in model.module.state_dict().items()}
    save_file(state, str(weights))
    spec = {
        "warden_model": SPEC_VERSION,
        "format": "safetensors",
        "path": weights.name,
        "sha256": sha256_file(weights),
        "architecture": model.spec["architecture"],
        "arguments": model.spec["arguments"],
        "input_shape": list(model.input_shape),
        "n_classes": model.n_classes,
        "bounds": model.bounds.to_dict(),
    }
    spec_path = out / f"{name}.json"
    spec_path.write_text(json.dumps(spec, indent=2) + "\n", "utf-8")
    return spec_path
