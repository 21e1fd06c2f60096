"""One small network wrapped four ways (torch, ONNX, numpy callable, sklearn) predicts alike."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from warden.data.dataset import Dataset
from warden.models import (
    CallableModel,
    Model,
    OnnxModel,
    SklearnModel,
    TorchModel,
    export_onnx,
    predict_labels,
)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sklearn_twin(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray, ds: Dataset):
    """An MLPClassifier computing the torch MLP: its single logistic output is the logit gap.

    For two classes softmax([l0, l1])[1] == sigmoid(l1 - l0), so predict_proba equals the
    softmax of the torch logits.
    """
    idx = np.r_[np.flatnonzero(ds.y == 0)[:10], np.flatnonzero(ds.y == 1)[:10]]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(ds.x[idx], ds.y[idx])
    clf.coefs_ = [w1.T.copy(), (w2[1] - w2[0])[:, None].copy()]
    clf.intercepts_ = [b1.copy(), np.array([b2[1] - b2[0]])]
    return clf


@pytest.fixture(scope="module")
def four_ways(
    mlp: TorchModel, mlp_weights: list[np.ndarray], cancer: Dataset, tmp_path_factory
) -> dict[str, Model]:
    w1, b1, w2, b2 = mlp_weights

    def numpy_mlp(x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2

    onnx_path = export_onnx(mlp, Path(tmp_path_factory.mktemp("onnx")) / "mlp.onnx")
    return {
        "torch": mlp,
        "onnx": OnnxModel(onnx_path, bounds=mlp.bounds),
        "callable": CallableModel(numpy_mlp, n_classes=2, input_shape=(30,), bounds=mlp.bounds),
        "sklearn": SklearnModel(sklearn_twin(w1, b1, w2, b2, cancer), bounds=mlp.bounds),
    }


def test_the_reference_model_is_worth_comparing(mlp: TorchModel, cancer: Dataset) -> None:
    labels = predict_labels(mlp, cancer.x)
    assert (labels == cancer.y).mean() > 0.85
    assert set(labels.tolist()) == {0, 1}


@pytest.mark.parametrize("name", ["onnx", "callable", "sklearn"])
def test_same_predictions_four_ways(
    four_ways: dict[str, Model], cancer: Dataset, name: str
) -> None:
    reference, other = four_ways["torch"], four_ways[name]
    assert isinstance(other, Model)
    assert other.n_classes == 2
    assert other.input_shape == (30,)
    np.testing.assert_array_equal(other.bounds.lower, reference.bounds.lower)
    np.testing.assert_array_equal(
        predict_labels(other, cancer.x), predict_labels(reference, cancer.x)
    )
    ref_scores = reference(cancer.x)
    scores = other(cancer.x)
    assert scores.dtype == np.float32
    assert scores.shape == (len(cancer.x), 2)
    if name == "sklearn":  # probabilities; the others are logits
        np.testing.assert_allclose(scores, softmax(ref_scores), atol=1e-5)
    else:
        np.testing.assert_allclose(scores, ref_scores, atol=1e-4)


def test_small_and_empty_batches_agree(four_ways: dict[str, Model], cancer: Dataset) -> None:
    for model in four_ways.values():
        assert model(cancer.x[:0]).shape == (0, 2)
        one = model(cancer.x[:1])
        assert one.shape == (1, 2)
        np.testing.assert_allclose(one, model(cancer.x[:5])[:1], atol=1e-5)
