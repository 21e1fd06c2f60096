"""Bundled architectures (named factories) and a seeded, CPU-fast trainer for them.

Architectures are registered by name so a saved model can be rebuilt from a spec that names
its factory and keyword arguments, with weights from safetensors: no code in the artifact.
Later checks reuse :func:`train_model` when they must retrain or train reference models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from warden.errors import ConfigError, RegistryError

if TYPE_CHECKING:
    import torch

    from warden.data.dataset import Dataset
    from warden.models.torch import TorchModel

__all__ = [
    "TrainConfig",
    "architecture_names",
    "build_architecture",
    "default_architecture",
    "register_architecture",
    "train_model",
]

ArchitectureFactory = Callable[..., "torch.nn.Module"]
_ARCHITECTURES: dict[str, ArchitectureFactory] = {}


def register_architecture(name: str, factory: ArchitectureFactory) -> None:
    """Register ``factory(**kwargs) -> nn.Module`` under ``name``; duplicate names are refused."""
    if name in _ARCHITECTURES:
        raise RegistryError(f"architecture {name!r} is already registered")
    _ARCHITECTURES[name] = factory


def architecture_names() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_ARCHITECTURES)


def build_architecture(name: str, **kwargs: Any) -> torch.nn.Module:
    """A fresh module from the factory registered under ``name``."""
    try:
        factory = _ARCHITECTURES[name]
    except KeyError:
        raise RegistryError(
            f"unknown architecture {name!r}; registered: {', '.join(architecture_names())}"
        ) from None
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"architecture {name!r}: bad arguments {kwargs}: {exc}") from exc


def _digits_cnn(in_channels: int = 1, n_classes: int = 10, image_size: int = 8) -> torch.nn.Module:
    from torch import nn

    if image_size % 2:
        raise ConfigError(f"digits-cnn needs an even image_size, got {image_size}")
    half = image_size // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * half * half, 64),
        nn.ReLU(),
        nn.Linear(64, n_classes),
    )


def _tabular_mlp(
    n_features: int, n_classes: int = 2, hidden: tuple[int, ...] | list[int] = (64, 32)
) -> torch.nn.Module:
    from torch import nn

    layers: list[nn.Module] = [nn.Flatten()]
    width = n_features
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        width = int(h)
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


register_architecture("digits-cnn", _digits_cnn)
register_architecture("tabular-mlp", _tabular_mlp)


def default_architecture(dataset: Dataset) -> tuple[str, dict[str, Any]]:
    """The bundled architecture and arguments that fit ``dataset``'s input shape."""
    shape = dataset.input_shape
    if len(shape) == 3 and shape[1] == shape[2]:
        return "digits-cnn", {
            "in_channels": shape[0],
            "n_classes": dataset.n_classes,
            "image_size": shape[1],
        }
    if len(shape) == 1:
        return "tabular-mlp", {"n_features": shape[0], "n_classes": dataset.n_classes}
    raise ConfigError(
        f"no bundled architecture for input shape {shape}: expected (C, H, H) images or "
        "(features,) tabular rows"
    )


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`train_model`."""

    epochs: int = 15
    """Passes over the training set."""
    batch_size: int = 64
    """Mini-batch size."""
    lr: float = 3e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam weight decay."""
    seed: int = 0
    """Seeds weight initialisation and batch order; same seed, same weights."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"invalid training settings: {self}")


def train_model(
    dataset: Dataset,
    architecture: str | None = None,
    config: TrainConfig | None = None,
    **arch_kwargs: Any,
) -> TorchModel:
    """Train a bundled architecture on ``dataset`` with Adam and cross-entropy (seeded, CPU).

    The returned model's ``spec`` attribute records the architecture and arguments so it can
    be saved with :func:`warden.models.loading.save_torch_model`.
    """
    import torch
    from torch import nn

    from warden.models.torch import TorchModel

    cfg = config or TrainConfig()
    if architecture is None:
        architecture, defaults = default_architecture(dataset)
        arch_kwargs = {**defaults, **arch_kwargs}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        module = build_architecture(architecture, **arch_kwargs)
        x = torch.from_numpy(np.array(dataset.x))
        y = torch.from_numpy(np.array(dataset.y))
        opt = torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(cfg.seed)
        module.train()
        for _ in range(cfg.epochs):
            order = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                opt.zero_grad()
                loss = loss_fn(module(x[idx]), y[idx])
                loss.backward()
                opt.step()
        module.eval()
    n_classes = int(arch_kwargs.get("n_classes", dataset.n_classes))
    return TorchModel(
        module,
        input_shape=dataset.input_shape,
        n_classes=n_classes,
        bounds=dataset.bounds,
        spec={"architecture": architecture, "arguments": dict(arch_kwargs)},
    )
