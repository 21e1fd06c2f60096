"""Adapter details: CallableModel and check_batch validation, sklearn scoring, ONNX graphs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import LinearSVC

from warden.data.bundled import load_digits
from warden.data.dataset import Dataset
from warden.errors import InputShapeError, ModelError, ModelLoadError
from warden.models import (
    Bounds,
    CallableModel,
    Model,
    OnnxModel,
    SklearnModel,
    TorchModel,
    check_batch,
    export_onnx,
)

# ---------------------------------------------------------------- check_batch / CallableModel


def test_check_batch_validates_and_casts() -> None:
    out = check_batch(np.ones((2, 3), np.float64), (3,))
    assert out.dtype == np.float32
    with pytest.raises(InputShapeError, match=r"shape \(3,\); expected \(n, 3\)"):
        check_batch(np.ones(3), (3,))
    with pytest.raises(InputShapeError, match="expected"):
        check_batch(np.ones((2, 4)), (3,))
    with pytest.raises(InputShapeError, match="row 1 contains NaN"):
        check_batch(np.array([[0.0, 1, 2], [0, np.inf, 2]]), (3,))
    with pytest.raises(InputShapeError, match="not a numeric array"):
        check_batch([["a", "b", "c"]], (3,))


def linear(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1) @ np.array([[1.0, -1.0], [2.0, 0.5]])


def test_callable_model_wraps_a_function() -> None:
    model = CallableModel(linear, n_classes=2, input_shape=(2,))
    assert isinstance(model, Model)
    out = model(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[1.0, -1.0], [2.0, 0.5]])


def test_callable_model_default_and_checked_bounds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="warden.models.callable")
    model = CallableModel(linear, n_classes=2, input_shape=(2,))
    assert model.bounds.to_dict() == {"lower": 0.0, "upper": 1.0}
    assert "no bounds given" in caplog.text
    with pytest.raises(InputShapeError, match="bounds"):
        CallableModel(linear, n_classes=2, input_shape=(2,), bounds=Bounds.uniform(0, 1, (3,)))


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda x: np.zeros((len(x), 3)), r"shape \(4, 3\); expected \(4, 2\)"),
        (lambda x: np.zeros(len(x)), r"shape \(4,\); expected \(4, 2\)"),
        (lambda x: np.zeros((len(x) - 1, 2)), r"expected \(4, 2\)"),
        (
            lambda x: np.where(np.arange(len(x))[:, None] == 2, np.nan, np.zeros((len(x), 2))),
            "row 2",
        ),
        (lambda x: np.full((len(x), 2), np.inf), "NaN or infinity"),
        (lambda x: [["a", "b"]] * len(x), "not a numeric array"),
    ],
)
def test_callable_model_rejects_bad_scores(fn, match: str) -> None:
    model = CallableModel(fn, n_classes=2, input_shape=(2,))
    with pytest.raises(ModelError, match=match):
        model(np.zeros((4, 2)))


def test_callable_model_validates_input_before_calling() -> None:
    calls: list[int] = []

    def fn(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return np.zeros((len(x), 2))

    model = CallableModel(fn, n_classes=2, input_shape=(2,))
    with pytest.raises(InputShapeError):
        model(np.zeros((4, 3)))
    with pytest.raises(InputShapeError, match="NaN"):
        model(np.array([[0.0, np.nan]]))
    assert calls == []
    with pytest.raises(ModelError, match="n_classes"):
        CallableModel(fn, n_classes=1, input_shape=(2,))


# ---------------------------------------------------------------------------------- sklearn


@pytest.fixture(scope="module")
def digits_small() -> Dataset:
    ds = load_digits()
    return Dataset(x=ds.x[:400], y=ds.y[:400], name="digits-400", bounds=ds.bounds)


def test_sklearn_flattens_images(digits_small: Dataset) -> None:
    flat = digits_small.x.reshape(len(digits_small.x), -1)
    clf = LogisticRegression(max_iter=300).fit(flat, digits_small.y)
    model = SklearnModel(clf, input_shape=(1, 8, 8), bounds=digits_small.bounds)
    assert (model.n_classes, model.input_shape) == (10, (1, 8, 8))
    scores = model(digits_small.x)
    np.testing.assert_allclose(scores, clf.predict_proba(flat), atol=1e-6)
    np.testing.assert_array_equal(scores.argmax(axis=1), clf.predict(flat))
    assert SklearnModel(clf).input_shape == (64,)
    with pytest.raises(InputShapeError, match="63 features"):
        SklearnModel(clf, input_shape=(1, 7, 9))


def test_sklearn_binary_decision_function(cancer: Dataset) -> None:
    svm = LinearSVC(C=0.1).fit(cancer.x, cancer.y)
    model = SklearnModel(svm, bounds=cancer.bounds)
    scores = model(cancer.x)
    d = svm.decision_function(cancer.x)
    np.testing.assert_allclose(scores, np.stack([-d, d], axis=1), atol=1e-5)
    np.testing.assert_array_equal(scores.argmax(axis=1), svm.predict(cancer.x))


def test_sklearn_refuses_unusable_estimators(cancer: Dataset) -> None:
    with pytest.raises(ModelError, match="not fitted"):
        SklearnModel(LogisticRegression())
    with pytest.raises(ModelError, match="neither predict_proba nor decision_function"):
        SklearnModel(LinearRegression().fit(cancer.x, cancer.y))
    clf = LogisticRegression(max_iter=200).fit(cancer.x, cancer.y)
    with pytest.raises(ModelError, match="fitted on 2 classes"):
        SklearnModel(clf, n_classes=3)


class Broken(ClassifierMixin, BaseEstimator):
    def fit(self, x: np.ndarray, y: np.ndarray) -> Broken:
        self.classes_ = np.unique(y)
        self.n_features_in_ = x.shape[1]
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raise RuntimeError("backend exploded")


def test_sklearn_estimator_errors_become_model_errors() -> None:
    model = SklearnModel(Broken().fit(np.zeros((4, 2)), np.array([0, 1, 0, 1])))
    with pytest.raises(ModelError, match=r"Broken\.predict_proba failed: RuntimeError: backend"):
        model(np.zeros((1, 2)))


# ------------------------------------------------------------------------------------- ONNX

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10.0


def matmul_graph(
    in_shape: list[int | str], out_shape: list[int | str], elem: int = TensorProto.FLOAT
) -> onnx.ModelProto:
    dtype = np.float32 if elem == TensorProto.FLOAT else np.float64
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", elem, in_shape)],
        [helper.make_tensor_value_info("y", elem, out_shape)],
        [numpy_helper.from_array(W.astype(dtype), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


X4 = np.linspace(-1.0, 1.0, 20, dtype=np.float32).reshape(5, 4)


def test_onnx_from_bytes_and_path_agree(mlp: TorchModel, cancer: Dataset, tmp_path: Path) -> None:
    path = export_onnx(mlp, tmp_path / "a" / "b" / "mlp.onnx")
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["scores"]
    from_bytes = OnnxModel(path.read_bytes(), batch_size=7)
    np.testing.assert_array_equal(from_bytes(cancer.x), OnnxModel(path)(cancer.x))


def test_onnx_symbolic_shape_needs_input_shape() -> None:
    data = matmul_graph(["N", "F"], ["N", 3]).SerializeToString()
    with pytest.raises(ModelLoadError, match=r"symbolic.*pass input_shape"):
        OnnxModel(data)
    model = OnnxModel(data, input_shape=(4,))
    assert model.n_classes == 3
    np.testing.assert_allclose(model(X4), X4 @ W, atol=1e-6)
    identity = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "F"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "F"])],
    )
    data = helper.make_model(
        identity, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    ).SerializeToString()
    with pytest.raises(ModelLoadError, match="pass n_classes"):
        OnnxModel(data, input_shape=(4,))
    np.testing.assert_array_equal(OnnxModel(data, input_shape=(4,), n_classes=4)(X4), X4)
    with pytest.raises(ModelLoadError, match="does not fit"):
        OnnxModel(matmul_graph(["N", 4], ["N", 3]).SerializeToString(), input_shape=(5,))
    with pytest.raises(ModelLoadError, match="outputs 3 scores"):
        OnnxModel(matmul_graph(["N", 4], ["N", 3]).SerializeToString(), n_classes=4)


def test_onnx_casts_to_double_and_pads_fixed_batches() -> None:
    double = OnnxModel(matmul_graph(["N", 4], ["N", 3], TensorProto.DOUBLE).SerializeToString())
    out = double(X4)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, X4.astype(np.float64) @ W.astype(np.float64), atol=1e-6)
    fixed = OnnxModel(matmul_graph([2, 4], [2, 3]).SerializeToString())
    assert fixed.batch_size == 2
    np.testing.assert_allclose(fixed(X4), X4 @ W, atol=1e-6)


@pytest.mark.parametrize("data", [b"", b"not an onnx model at all", b"\x08\x07" * 40])
def test_onnx_invalid_bytes(data: bytes) -> None:
    with pytest.raises(ModelLoadError):
        OnnxModel(data)


def save_external(folder: Path, location: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(
        matmul_graph(["N", 4], ["N", 3]),
        str(path),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    if location != "weights.bin":
        proto = onnx.load(str(path), load_external_data=False)
        for entry in proto.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        path.write_bytes(proto.SerializeToString())
    return path


def test_onnx_external_data_inside_the_folder_loads(tmp_path: Path) -> None:
    path = save_external(tmp_path / "m", "weights.bin")
    np.testing.assert_allclose(OnnxModel(path)(X4), X4 @ W, atol=1e-6)
    with pytest.raises(ModelLoadError, match="external data"):
        OnnxModel(path.read_bytes())


@pytest.mark.parametrize(
    "location", ["../weights.bin", "sub/../../weights.bin", "/etc/hostname", "C:\\weights.bin"]
)
def test_onnx_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    save_external(tmp_path, "weights.bin")  # a real weights file one level up
    path = save_external(tmp_path / "m", location)
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        OnnxModel(path)


def test_onnx_external_data_symlink_out_is_refused(tmp_path: Path) -> None:
    save_external(tmp_path, "weights.bin")
    path = save_external(tmp_path / "m", "link.bin")
    (tmp_path / "m" / "link.bin").symlink_to(tmp_path / "weights.bin")
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        OnnxModel(path)
