"""``load_model`` / ``save_torch_model``: safe formats load by content, unsafe ones are refused."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from warden.data.dataset import Dataset
from warden.errors import ModelLoadError, UnsafeModelError
from warden.models import (
    OnnxModel,
    SklearnModel,
    TorchModel,
    export_onnx,
    export_torchscript,
    load_model,
    save_torch_model,
)

PICKLE_LOGGER = "warden.models.loading"


def test_safetensors_round_trip(mlp: TorchModel, cancer: Dataset, tmp_path: Path) -> None:
    spec = save_torch_model(mlp, tmp_path / "saved")
    assert spec == tmp_path / "saved" / "model.json"
    loaded = load_model(spec)
    assert isinstance(loaded, TorchModel)
    assert (loaded.input_shape, loaded.n_classes) == (mlp.input_shape, mlp.n_classes)
    np.testing.assert_array_equal(loaded.bounds.lower, mlp.bounds.lower)
    np.testing.assert_array_equal(loaded(cancer.x), mlp(cancer.x))
    np.testing.assert_array_equal(load_model(tmp_path / "saved")(cancer.x[:5]), mlp(cancer.x[:5]))


def test_tampered_weights_are_refused(mlp: TorchModel, tmp_path: Path) -> None:
    spec = save_torch_model(mlp, tmp_path)
    weights = tmp_path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="SHA-256"):
        load_model(spec)


def test_spec_pointing_to_a_missing_file(tmp_path: Path) -> None:
    spec = tmp_path / "model.json"
    spec.write_text(
        json.dumps(
            {
                "warden_model": 1,
                "format": "safetensors",
                "path": "gone.safetensors",
                "architecture": "tabular-mlp",
                "arguments": {"n_features": 30},
                "input_shape": [30],
                "n_classes": 2,
            }
        )
    )
    with pytest.raises(ModelLoadError, match=r"'gone\.safetensors' not found"):
        load_model(spec)


def test_bare_safetensors_needs_a_spec(mlp: TorchModel, tmp_path: Path) -> None:
    save_torch_model(mlp, tmp_path)
    with pytest.raises(ModelLoadError, match=r"safetensors holds weights only.*spec"):
        load_model(tmp_path / "model.safetensors")


def test_plain_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"  # the name does not matter
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    with pytest.raises(UnsafeModelError, match=r"pickle.*unsafe-allow-pickle"):
        load_model(path)


def test_torch_save_of_a_module_is_refused(mlp: TorchModel, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(mlp.module, path)
    with pytest.raises(UnsafeModelError, match="pickle"):
        load_model(path, input_shape=(30,), n_classes=2)


def test_unsafe_allow_pickle_loads_and_warns_every_time(
    mlp: TorchModel, cancer: Dataset, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "model.pt"
    torch.save(mlp.module, path)
    caplog.set_level(logging.WARNING, logger=PICKLE_LOGGER)
    for _ in range(2):
        loaded = load_model(path, unsafe_allow_pickle=True, input_shape=(30,), n_classes=2)
        np.testing.assert_array_equal(loaded(cancer.x[:20]), mlp(cancer.x[:20]))
    warnings = [r for r in caplog.records if r.name == PICKLE_LOGGER]
    assert len(warnings) == 2
    assert all(r.levelno == logging.WARNING and "unsafe" in r.getMessage() for r in warnings)


def test_unsafe_pickle_of_the_wrong_thing_is_a_load_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    caplog.set_level(logging.WARNING, logger=PICKLE_LOGGER)
    with pytest.raises(ModelLoadError):
        load_model(path, unsafe_allow_pickle=True)
    assert [r.levelno for r in caplog.records if r.name == PICKLE_LOGGER] == [logging.WARNING]


def test_unsafe_plain_pickle_of_an_sklearn_classifier(cancer: Dataset, tmp_path: Path) -> None:
    clf = LogisticRegression(max_iter=200).fit(cancer.x, cancer.y)
    path = tmp_path / "clf.pkl"
    path.write_bytes(pickle.dumps(clf))
    loaded = load_model(path, unsafe_allow_pickle=True, bounds=cancer.bounds)
    assert isinstance(loaded, SklearnModel)
    np.testing.assert_array_equal(loaded(cancer.x).argmax(axis=1), clf.predict(cancer.x))


def test_torchscript_loads_by_content(mlp: TorchModel, cancer: Dataset, tmp_path: Path) -> None:
    path = export_torchscript(mlp, tmp_path / "model.bin")
    loaded = load_model(path, input_shape=(30,), n_classes=2, bounds=mlp.bounds)
    assert isinstance(loaded, TorchModel)
    np.testing.assert_allclose(loaded(cancer.x), mlp(cancer.x), atol=1e-6)
    with pytest.raises(ModelLoadError, match="input_shape"):
        load_model(path)


def test_onnx_loads_by_content(mlp: TorchModel, cancer: Dataset, tmp_path: Path) -> None:
    exported = export_onnx(mlp, tmp_path / "export" / "mlp.onnx")
    path = tmp_path / "model.bin"
    shutil.copy(exported, path)
    loaded = load_model(path, bounds=mlp.bounds)
    assert isinstance(loaded, OnnxModel)
    assert (loaded.input_shape, loaded.n_classes) == ((30,), 2)
    np.testing.assert_allclose(loaded(cancer.x), mlp(cancer.x), atol=1e-4)


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01garbage\xff" * 10, b"PK\x03\x04not really a zip", b"hello, world\n"],
)
def test_unknown_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError):
        load_model(path)


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such model file"):
        load_model(tmp_path / "nope.json")
    with pytest.raises(ModelLoadError, match=r"model\.json"):
        load_model(tmp_path)
