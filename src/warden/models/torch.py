"""``TorchModel``: a PyTorch ``nn.Module`` as a Warden model, with gradients for white-box use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import InputShapeError, ModelError
from warden.models.base import AdapterBase, Bounds, check_batch

if TYPE_CHECKING:
    import torch

__all__ = ["TorchModel"]


class TorchModel(AdapterBase):
    """Wrap an ``nn.Module`` that maps ``(n, *input_shape)`` float tensors to logits.

    The module is put in eval mode; calls run under ``torch.no_grad`` in batches of
    ``batch_size``. White-box attacks use :meth:`logits` (differentiable) and ``module``.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        input_shape: Sequence[int],
        n_classes: int,
        bounds: Bounds | None = None,
        device: str = "cpu",
        batch_size: int = 512,
        spec: dict[str, Any] | None = None,
    ) -> None:
        import torch

        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"TorchModel needs a torch.nn.Module, got {type(module).__name__}")
        if n_classes < 2:
            raise ModelError(f"n_classes must be at least 2, got {n_classes}")
        self.module = module.to(device).eval()
        self.device = torch.device(device)
        self._input_shape = tuple(int(s) for s in input_shape)
        self._n_classes = int(n_classes)
        self._bounds = bounds if bounds is not None else Bounds.uniform(0.0, 1.0, self._input_shape)
        if self._bounds.shape != self._input_shape:
            raise InputShapeError(
                f"bounds shape {self._bounds.shape} differs from input_shape {self._input_shape}"
            )
        self.batch_size = int(batch_size)
        self.spec = spec
        """Architecture recipe ``{"architecture": name, "arguments": {...}}`` when known."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable forward pass on a tensor already on ``self.device``."""
        out: torch.Tensor = self.module(x)
        if out.ndim != 2 or out.shape[1] != self._n_classes:
            raise ModelError(
                f"module returned shape {tuple(out.shape)}; expected (n, {self._n_classes})"
            )
        return out

    def to_tensor(self, x: NDArray[Any]) -> torch.Tensor:
        """A validated batch as a float32 tensor on the model's device."""
        import torch

        arr = check_batch(x, self._input_shape)
        return torch.from_numpy(np.array(arr, dtype=np.float32, order="C")).to(self.device)

    def bounds_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds as tensors on the model's device (broadcast over the batch)."""
        import torch

        lo = torch.from_numpy(np.array(self._bounds.lower)).to(self.device)
        hi = torch.from_numpy(np.array(self._bounds.upper)).to(self.device)
        return lo, hi

    def __call__(self, x: NDArray[Any]) -> NDArray[np.float32]:
        import torch

        xt = self.to_tensor(x)
        outs = []
        with torch.no_grad():
            for start in range(0, len(xt), self.batch_size):
                outs.append(self.logits(xt[start : start + self.batch_size]).cpu().numpy())
        if not outs:
            return np.zeros((0, self._n_classes), np.float32)
        return np.concatenate(outs).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return (
            f"TorchModel({type(self.module).__name__}, input_shape={self._input_shape}, "
            f"n_classes={self._n_classes})"
        )
