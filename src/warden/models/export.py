"""Export a :class:`~warden.models.torch.TorchModel` to ONNX or TorchScript.

Both formats load back without running pickled code (:func:`warden.models.load_model`
recognises them by content). The example input used for tracing is the midpoint of the
model's bounds, one sample; the batch axis stays dynamic in the ONNX graph.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from warden.errors import ModelError

if TYPE_CHECKING:
    import torch

    from warden.models.torch import TorchModel

__all__ = ["export_onnx", "export_torchscript"]


def _example(model: TorchModel) -> torch.Tensor:
    import torch

    lower, upper = model.bounds.lower, model.bounds.upper
    mid = ((lower.astype(np.float32) + upper.astype(np.float32)) / 2)[None]
    return torch.from_numpy(np.ascontiguousarray(mid)).to(model.device)


def _target(path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def export_onnx(model: TorchModel, path: str | Path, *, opset_version: int = 17) -> Path:
    """Write ``model`` as ONNX (input ``input``, output ``scores``, dynamic batch); return path.

    Uses the TorchScript-based exporter (``dynamo=False``), which needs no extra packages.
    """
    import torch

    out = _target(path)
    module = model.module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                (_example(model),),
                str(out),
                dynamo=False,
                input_names=["input"],
                output_names=["scores"],
                dynamic_axes={"input": {0: "batch"}, "scores": {0: "batch"}},
                opset_version=opset_version,
            )
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ModelError(f"cannot export {type(module).__name__} to ONNX: {exc}") from exc
    return out


def export_torchscript(model: TorchModel, path: str | Path) -> Path:
    """Write ``model`` as a TorchScript archive (traced on one example); return the path.

    Tracing records one execution path: data-dependent control flow in ``forward`` is frozen
    to the branch the example took. A module that is already TorchScript is saved as is.
    """
    import torch

    out = _target(path)
    module = model.module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            if isinstance(module, torch.jit.ScriptModule):
                scripted = module
            else:
                with torch.no_grad():
                    scripted = torch.jit.trace(module, (_example(model),))  # type: ignore[no-untyped-call]
            torch.jit.save(scripted, str(out))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ModelError(f"cannot export {type(module).__name__} to TorchScript: {exc}") from exc
    return out
