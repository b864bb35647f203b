"""Common ground of the non-deep ZSL methods (scikit-learn estimator conventions).

A method is fitted on globally pooled image features of seen classes and scores
every class through the class-attribute matrix:

``fit(X (N, d), y (N,), class_attributes (K, I), seen_classes)`` then
``decision_function(X) -> (N, K)`` and ``predict(X) -> (N,)``.

Two class attributes tell the benchmark harness (:mod:`zslkit.bench`) how to tune a method:
``param_grid`` (parameter name -> candidate values, searched on the validation
split) and ``iterative`` (``fit`` takes ``on_epoch(epoch, estimator)`` and the
``epochs`` parameter, so the harness can also pick the epoch).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["EmbeddingMethod", "normalize_attributes"]


def normalize_attributes(class_attributes: np.ndarray, how: str | None) -> np.ndarray:
    """``"l2"``: unit-length class rows; ``None``: unchanged."""
    a = np.asarray(class_attributes, dtype=np.float64)
    if how is None:
        return a
    if how == "l2":
        norm = np.linalg.norm(a, axis=1, keepdims=True)
        return a / np.maximum(norm, 1e-12)
    raise ValueError(f"attribute normalization must be 'l2' or None, got {how!r}")


class EmbeddingMethod(BaseEstimator):
    """Shared checks and prediction for compatibility-function methods ``F(x, k) = x^T W a_k``."""

    #: Hyper-parameter grid searched by the benchmark's ``validation`` protocol.
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    #: Whether ``fit`` trains epoch by epoch and accepts ``on_epoch``.
    iterative: ClassVar[bool] = False

    def _validate_fit(self, X, y, class_attributes, seen_classes):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        A = np.asarray(class_attributes, dtype=np.float64)
        seen = np.asarray(seen_classes, dtype=np.int64)
        if X.ndim != 2:
            raise ValueError(f"X must be (N, d) pooled features, found shape {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must be ({X.shape[0]},), found shape {y.shape}")
        if A.ndim != 2:
            raise ValueError(f"class_attributes must be (K, I), found shape {A.shape}")
        missing = np.setdiff1d(np.unique(y), seen)
        if len(missing):
            raise ValueError(f"y holds class {missing[0]} that is not in seen_classes")
        if not np.isfinite(X).all():
            raise ValueError(f"X has a non-finite value at row {np.argwhere(~np.isfinite(X))[0][0]}")
        return X, y, A, seen

    def decision_function(self, X) -> np.ndarray:
        """``(N, K)`` compatibility scores of every image with every class."""
        X = np.asarray(X, dtype=np.float64)
        return self._embed(X) @ self.class_embeddings_.T

    def predict(self, X, classes=None) -> np.ndarray:
        """Argmax class, over all classes or over ``classes`` only."""
        scores = self.decision_function(X)
        if classes is None:
            return scores.argmax(axis=1)
        classes = np.asarray(classes)
        return classes[scores[:, classes].argmax(axis=1)]
