"""The concurrency test's worker process (a light module: spawned processes import it)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from warden.config import Settings


def npy_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(seed).normal(size=16).astype(np.float32))
    return buf.getvalue()


def register_worker(settings: Settings, source: Path, worker: int, count: int, start: Any) -> None:
    """Register ``count`` versions of model ``m`` as soon as ``start`` is set."""
    from warden.registry import Registry
    from warden.store import Store

    with Store.open(settings, create=False) as store:
        reg = Registry(store, actor=f"worker-{worker}")
        start.wait(60)
        for i in range(count):
            path = source / f"w{worker}-{i}.npy"
            path.write_bytes(npy_bytes(seed=1000 * worker + i))
            reg.register_version("m", path, framework="numpy", create_model=True)
