"""What Warden protects: the :class:`Model` protocol and its adapters.

- :class:`TorchModel` (PyTorch, gradients for white-box attacks), :class:`SklearnModel`,
  :class:`OnnxModel` (onnxruntime), :class:`CallableModel` (any numpy function) and
  :class:`HttpModel` (a remote endpoint; counts queries and enforces a budget).
- Safe loading and saving (:func:`load_model`, :func:`save_torch_model`) and export
  (:func:`export_onnx`, :func:`export_torchscript`).
- Bundled architectures and a seeded trainer (:func:`train_model`).

Importing this package does not import torch, onnxruntime, scikit-learn or httpx; each loads
when the object that needs it is first used.
"""

from __future__ import annotations

from warden.models.base import Bounds, Model, check_batch, predict_labels
from warden.models.callable import CallableModel
from warden.models.export import export_onnx, export_torchscript
from warden.models.http import HttpModel
from warden.models.loading import load_model, save_torch_model
from warden.models.onnx import OnnxModel
from warden.models.sklearn import SklearnModel
from warden.models.torch import TorchModel
from warden.models.zoo import TrainConfig, build_architecture, register_architecture, train_model

__all__ = [
    "Bounds",
    "CallableModel",
    "HttpModel",
    "Model",
    "OnnxModel",
    "SklearnModel",
    "TorchModel",
    "TrainConfig",
    "build_architecture",
    "check_batch",
    "export_onnx",
    "export_torchscript",
    "load_model",
    "predict_labels",
    "register_architecture",
    "save_torch_model",
    "train_model",
]
