"""ESZSL: "An embarrassingly simple approach to zero-shot learning" (Romera-Paredes and Torr, ICML 2015).

Objective, with features ``X (d, m)``, labels ``Y in {-1, 1}^{m x z}`` over the
``z`` seen classes and their attribute signatures ``S (a, z)``::

    min_V ||X^T V S - Y||_F^2 + gamma ||V S||_F^2 + lambda ||X^T V||_F^2 + gamma lambda ||V||_F^2

has the closed form ``V = (X X^T + gamma I)^-1 X Y S^T (S S^T + lambda I)^-1``.
A test image scores class ``k`` as ``x^T V a_k``.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from zslkit.methods.base import EmbeddingMethod, normalize_attributes
from zslkit.registry import register


@register("method", "eszsl")
class ESZSL(EmbeddingMethod):
    """Closed-form ESZSL. ``gamma`` regularises the feature side, ``lambda_`` the attribute side.

    Grid (powers of ten, as in the paper): ``gamma``, ``lambda_`` in ``{0.01, 0.1, ..., 1000}``.
    """

    param_grid = {"gamma": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0], "lambda_": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]}

    def __init__(self, gamma: float = 1.0, lambda_: float = 1.0, attribute_norm: str | None = "l2"):
        self.gamma = gamma
        self.lambda_ = lambda_
        self.attribute_norm = attribute_norm

    def fit(self, X, y, class_attributes, seen_classes) -> ESZSL:
        X, y, A, seen = self._validate_fit(X, y, class_attributes, seen_classes)
        A = normalize_attributes(A, self.attribute_norm)
        S = A[seen].T  # (a, z)
        column = {c: j for j, c in enumerate(seen.tolist())}
        Y = -np.ones((X.shape[0], len(seen)))
        Y[np.arange(len(y)), [column[c] for c in y.tolist()]] = 1.0
        d, a = X.shape[1], S.shape[0]
        left = linalg.solve(X.T @ X + self.gamma * np.eye(d), X.T @ Y @ S.T, assume_a="pos")
        self.V_ = linalg.solve((S @ S.T + self.lambda_ * np.eye(a)).T, left.T, assume_a="pos").T
        self.class_embeddings_ = A
        return self

    def _embed(self, X: np.ndarray) -> np.ndarray:
        return X @ self.V_
