"""``SklearnModel``: a fitted scikit-learn classifier as a Warden model (black-box only)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import InputShapeError, ModelError
from warden.models.base import AdapterBase, Bounds, check_batch
from warden.models.callable import check_scores, resolve_bounds

__all__ = ["SklearnModel"]


class SklearnModel(AdapterBase):
    """Wrap a fitted classifier (or pipeline) exposing ``predict_proba`` or ``decision_function``.

    Scores are ``predict_proba`` when the estimator has it, else ``decision_function``; a
    binary decision function's 1-D output ``d`` becomes the two columns ``[-d, d]`` so the
    argmax is still the predicted class. Inputs are flattened to ``(n, features)`` before they
    reach the estimator, so a model trained on flattened images can take ``(n, 1, 8, 8)``.

    ``input_shape`` defaults to ``(n_features_in_,)``; ``n_classes`` comes from ``classes_``.
    ``bounds=None`` means unknown and is taken as ``[0, 1]`` per feature; pass the real range
    (``Bounds.from_data(x_train)``) for tabular data.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        input_shape: Sequence[int] | None = None,
        bounds: Bounds | None = None,
        n_classes: int | None = None,
    ) -> None:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        if hasattr(estimator, "predict_proba"):
            self._method = "predict_proba"
        elif hasattr(estimator, "decision_function"):
            self._method = "decision_function"
        else:
            raise ModelError(
                f"{type(estimator).__name__} has neither predict_proba nor decision_function; "
                "SklearnModel wraps classifiers"
            )
        try:
            check_is_fitted(estimator)
        except NotFittedError as exc:
            raise ModelError(
                f"{type(estimator).__name__} is not fitted; call fit before wrapping it"
            ) from exc
        except TypeError as exc:  # not an estimator at all
            raise ModelError(f"{type(estimator).__name__} is not a scikit-learn estimator") from exc
        self.estimator = estimator
        n_features = getattr(estimator, "n_features_in_", None)
        if input_shape is None:
            if n_features is None:
                raise ModelError(
                    f"{type(estimator).__name__} does not record n_features_in_; pass input_shape"
                )
            input_shape = (int(n_features),)
        self._input_shape = tuple(int(s) for s in input_shape)
        if not self._input_shape or any(s < 1 for s in self._input_shape):
            raise InputShapeError(f"input_shape must be positive sizes, got {self._input_shape}")
        if n_features is not None and math.prod(self._input_shape) != int(n_features):
            raise InputShapeError(
                f"input_shape {self._input_shape} has {math.prod(self._input_shape)} features "
                f"but the estimator was fitted on {int(n_features)}"
            )
        self._n_classes = self._find_n_classes(n_classes)
        self._bounds = resolve_bounds(bounds, self._input_shape, "SklearnModel")

    def _find_n_classes(self, n_classes: int | None) -> int:
        classes = getattr(self.estimator, "classes_", None)
        fitted = len(classes) if classes is not None else None
        if n_classes is not None and fitted is not None and int(n_classes) != fitted:
            raise ModelError(
                f"n_classes={n_classes} but the estimator was fitted on {fitted} classes"
            )
        found = n_classes if n_classes is not None else fitted
        if found is None:
            raise ModelError(f"{type(self.estimator).__name__} has no classes_; pass n_classes")
        if found < 2:
            raise ModelError(f"n_classes must be at least 2, got {found}")
        return int(found)

    def __call__(self, x: NDArray[Any]) -> NDArray[np.float32]:
        arr = check_batch(x, self._input_shape)
        if len(arr) == 0:
            return np.zeros((0, self._n_classes), np.float32)
        flat = arr.reshape(len(arr), -1)
        what = f"{type(self.estimator).__name__}.{self._method}"
        try:
            raw = np.asarray(getattr(self.estimator, self._method)(flat))
        except Exception as exc:  # any estimator failure is a model failure
            raise ModelError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
        if raw.ndim == 1 and self._n_classes == 2:
            raw = np.stack([-raw, raw], axis=1)
        return check_scores(raw, len(arr), self._n_classes, what)

    def __repr__(self) -> str:
        return (
            f"SklearnModel({type(self.estimator).__name__}, input_shape={self._input_shape}, "
            f"n_classes={self._n_classes})"
        )
