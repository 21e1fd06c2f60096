"""The model-format sniffers claim their own files and nothing else.

Sniffers run on the first 4096 bytes of every stream (archive members and tensor data
included), so a false claim costs a wasted parse and, worse, a spurious finding.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import random
import tarfile
import zipfile

import numpy as np
import pytest
from tests.supplychain.corpus import models

from warden.supplychain.formats.gguf import GGUFScanner
from warden.supplychain.formats.hdf5 import HDF5Scanner
from warden.supplychain.formats.keras import KerasConfigScanner
from warden.supplychain.formats.onnx import OnnxScanner
from warden.supplychain.formats.safetensors import SafetensorsScanner
from warden.supplychain.formats.savedmodel import KerasMetadataScanner, SavedModelScanner
from warden.supplychain.scanner import FormatScanner

SCANNERS: dict[str, FormatScanner] = {
    s.name: s
    for s in (
        SafetensorsScanner(),
        GGUFScanner(),
        OnnxScanner(),
        SavedModelScanner(),
        KerasMetadataScanner(),
        HDF5Scanner(),
        KerasConfigScanner(),
    )
}


def _claims(data: bytes) -> list[str]:
    head = data[:4096]
    return [name for name, s in SCANNERS.items() if s.sniff(head)]


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"hello"))
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(10, dtype=np.float32))
    return buf.getvalue()


NOT_MODELS: dict[str, bytes] = {
    "text": b'Hello, world.\nThis is a README with {curly} braces and "class_name".\n' * 40,
    "python": b"import os\n\nclass Model:\n    config = {'class_name': 'x'}\n" * 30,
    "hf-config": json.dumps(
        {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 4096,
            "torch_dtype": "bfloat16",
        }
    ).encode(),
    "tokenizer": json.dumps(
        {"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}}
    ).encode(),
    "json-array": b'[{"class_name": "Dense", "config": {}}]',
    "pickle-2": pickle.dumps({"a": [1, 2, 3]}, protocol=2),
    "pickle-4": pickle.dumps(list(range(100)), protocol=4),
    "pickle-5": pickle.dumps({"weights": bytes(5000)}, protocol=5),
    "zip": _zip(),
    "tar": _tar(),
    "gzip": gzip.compress(b"x" * 1000),
    "bz2": bz2.compress(b"x" * 1000),
    "xz": lzma.compress(b"x" * 1000),
    "7z": b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(100),
    "npy": _npy(),
    "float32": np.linspace(-1, 1, 4096, dtype=np.float32).tobytes(),
    "int64": np.arange(2048, dtype=np.int64).tobytes(),
    "zeros": bytes(4096),
    "png": b"\x89PNG\r\n\x1a\n" + bytes(100),
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(NOT_MODELS))
def test_non_model_data_is_not_claimed(name: str) -> None:
    assert _claims(NOT_MODELS[name]) == []


def test_random_bytes_are_not_claimed() -> None:
    rng = random.Random(1234)
    claimed = []
    for i in range(400):
        data = rng.randbytes(rng.choice([16, 100, 1000, 4096]))
        if i % 4 == 0:  # random data behind a plausible first byte
            data = bytes([rng.choice([0x08, 0x0A, 0x7B, 0x89])]) + data
        if _claims(data):
            claimed.append((i, _claims(data)))
    assert claimed == []


def _own_samples() -> dict[str, tuple[bytes, str]]:
    benign = models.benign()
    return {
        "safetensors": (benign["safetensors-numpy.safetensors"], "safetensors"),
        "gguf": (benign["gguf-chatml.gguf"], "gguf"),
        "onnx-helper": (benign["onnx-helper.onnx"], "onnx"),
        "onnx-torch": (benign["onnx-torch.onnx"], "onnx"),
        "savedmodel": (benign["savedmodel-standard/saved_model.pb"], "savedmodel"),
        "keras-metadata": (
            models.keras_metadata([("root", "_tf_keras_model", {"class_name": "Functional"})]),
            "keras-metadata",
        ),
        "hdf5": (benign["keras-dense.h5"], "hdf5"),
        "keras-json": (
            json.dumps(models.keras3_config([models._k3_dense("d", 2)])).encode(),
            "keras",
        ),
    }


def test_each_format_is_claimed_by_exactly_its_scanner() -> None:
    pytest.importorskip("torch", reason="the benign corpus exports a torch model to ONNX")
    for label, (data, name) in _own_samples().items():
        assert _claims(data) == [name], label
