"""SAE: "Semantic Autoencoder for Zero-Shot Learning" (Kodirov, Xiang and Gong, CVPR 2017).

A linear autoencoder whose code is the class-attribute vector. With features
``X (d, N)`` and each image's class attributes ``S (I, N)`` as columns, the
encoder ``W (I, d)`` and the tied decoder ``W^T`` solve::

    min_W ||X - W^T S||_F^2 + lambda ||W X - S||_F^2

Setting the gradient to zero gives the Sylvester equation
``S S^T W + W (lambda X X^T) = (1 + lambda) S X^T``, solved in closed form
(:func:`scipy.linalg.solve_sylvester`). A test image scores class ``k`` by the
cosine similarity of ``W x`` and ``a_k`` (``space="semantic"``) or of ``x`` and
the decoded prototype ``W^T a_k`` (``space="feature"``).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from zslkit.methods.base import EmbeddingMethod, normalize_attributes
from zslkit.registry import register

__all__ = ["SAE"]

_SPACES = ("semantic", "feature")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@register("method", "sae")
class SAE(EmbeddingMethod):
    """Closed-form semantic autoencoder (see the module docstring).

    Grid: ``lambda_`` in ``{0.01, 0.1, ..., 1000}``, ``space`` in ``{"semantic", "feature"}``.
    """

    param_grid = {"lambda_": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0], "space": list(_SPACES)}

    def __init__(self, lambda_: float = 1.0, space: str = "feature", attribute_norm: str | None = "l2"):
        self.lambda_ = lambda_
        self.space = space
        self.attribute_norm = attribute_norm

    def fit(self, X, y, class_attributes, seen_classes) -> SAE:
        X, y, A, seen = self._validate_fit(X, y, class_attributes, seen_classes)
        if self.space not in _SPACES:
            raise ValueError(f"SAE: space must be one of {_SPACES}, got {self.space!r}")
        if not self.lambda_ > 0:
            raise ValueError(f"SAE: lambda_ must be positive, got {self.lambda_!r}")
        A = normalize_attributes(A, self.attribute_norm)
        S = A[y]  # (N, I): each image's class attributes, one row per image
        self.W_ = linalg.solve_sylvester(S.T @ S, self.lambda_ * (X.T @ X), (1.0 + self.lambda_) * S.T @ X)
        if self.space == "semantic":
            self.class_embeddings_ = _unit_rows(A)
        else:
            self.class_embeddings_ = _unit_rows(A @ self.W_)
        return self

    def _embed(self, X: np.ndarray) -> np.ndarray:
        return _unit_rows(X @ self.W_.T if self.space == "semantic" else X)
