"""Mini-batch SGD shared by the ranking-loss embedding methods (ALE, DeViSE, SJE, LATEM).

Each of them learns a compatibility ``F(x, k)`` between a pooled image feature
``x (d,)`` and the attribute vector ``a_k (I,)`` of class ``k`` by minimising a
ranking loss over the seen classes; they differ only in ``F`` and in the loss.
The objective is::

    mean_n loss(F(x_n, .), y_n) + weight_decay / 2 * ||W||^2

A subclass supplies :meth:`RankingEmbedding.loss`, which returns the batch
loss and its gradient with respect to the scores; for a compatibility other
than the bilinear ``x^T W a_k`` it also overrides :meth:`~RankingEmbedding.init_weights`,
:meth:`~RankingEmbedding.forward` and :meth:`~RankingEmbedding.weight_gradient`.
Plain numpy, float64: small problems run fastest single-threaded, and training
is deterministic given ``seed`` (it seeds the initial weights and the order of
the mini-batches).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zslkit.methods.base import EmbeddingMethod, normalize_attributes

__all__ = ["RankingEmbedding", "hinge_matrix", "violation_gradient"]


def hinge_matrix(scores: np.ndarray, target: np.ndarray, margin: float) -> np.ndarray:
    """``(B, Z)`` margin violations ``max(0, margin + F(x, y) - F(x, y_n))``, zero at ``y = y_n``.

    ``scores`` is ``(B, Z)`` compatibilities with the seen classes, ``target``
    ``(B,)`` the column of each sample's true class.
    """
    rows = np.arange(len(target))
    hinge = np.maximum(0.0, margin + scores - scores[rows, target][:, None])
    hinge[rows, target] = 0.0
    return hinge


def violation_gradient(hinge: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Gradient w.r.t. the scores of ``mean_n weight_n * sum_y hinge_{n,y}`` (``weight`` held constant).

    Each violating class ``y`` gets ``+weight_n / B``; the true class gets minus their sum.
    """
    grad = (hinge > 0) * (weight[:, None] / len(target))
    grad[np.arange(len(target)), target] = -grad.sum(axis=1)
    return grad


class RankingEmbedding(EmbeddingMethod):
    """Base of the SGD-trained methods; see the module docstring.

    Args:
        lr: SGD learning rate.
        epochs: passes over the training images.
        batch_size: images per SGD step.
        margin: the ranking margin ``Delta(y_n, y)`` for ``y != y_n``.
        weight_decay: L2 penalty on the weights (``0``: none, as in the papers).
        attribute_norm: ``"l2"`` (unit-length class rows) or ``None``.
        seed: seeds the initial weights and the mini-batch order.
    """

    iterative = True

    def __init__(
        self,
        lr: float = 0.01,
        epochs: int = 20,
        batch_size: int = 64,
        margin: float = 1.0,
        weight_decay: float = 0.0,
        attribute_norm: str | None = "l2",
        seed: int = 0,
    ):
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.margin = margin
        self.weight_decay = weight_decay
        self.attribute_norm = attribute_norm
        self.seed = seed

    # ------------------------------------------------------------- subclass API
    def loss(self, scores: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean batch loss of ``scores (B, Z)`` against true columns ``target (B,)``, and its ``(B, Z)`` gradient."""
        raise NotImplementedError

    def init_weights(self, feature_dim: int, num_attributes: int, rng: np.random.Generator) -> np.ndarray:
        """Initial ``W (d, I)``: small, entries ``N(0, 0.01 / d)``, so training starts near a neutral ``F``."""
        return rng.standard_normal((feature_dim, num_attributes)) * (0.1 / np.sqrt(feature_dim))

    def forward(self, x: np.ndarray, weight: np.ndarray, attributes: np.ndarray) -> tuple[np.ndarray, Any]:
        """Bilinear ``F(x, k) = x^T W a_k``: ``x (B, d)``, ``W (d, I)``, ``attributes (Z, I)`` -> ``(B, Z)``.

        Also returns what :meth:`weight_gradient` needs from the forward pass (here nothing).
        """
        return (x @ weight) @ attributes.T, None

    def weight_gradient(self, x: np.ndarray, attributes: np.ndarray, grad_scores: np.ndarray, context: Any) -> np.ndarray:
        """Chain rule through :meth:`forward`: ``(B, Z)`` score gradient -> ``(d, I)`` weight gradient."""
        return x.T @ (grad_scores @ attributes)

    def compatibility(self, x: np.ndarray, weight: np.ndarray, attributes: np.ndarray) -> np.ndarray:
        """``(B, Z)`` scores ``F(x_b, z)``."""
        return self.forward(x, weight, attributes)[0]

    # ----------------------------------------------------------------- fitting
    def _check_sgd_params(self) -> None:
        for name in ("lr", "epochs", "batch_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{type(self).__name__}: {name} must be positive, got {getattr(self, name)!r}")
        for name in ("margin", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{type(self).__name__}: {name} must be >= 0, got {getattr(self, name)!r}")

    def fit(self, X, y, class_attributes, seen_classes, on_epoch: Callable[[int, RankingEmbedding], object] | None = None):
        """Train ``epochs`` epochs; ``on_epoch(epoch, self)`` runs after each (the estimator is usable then)."""
        X, y, A, seen = self._validate_fit(X, y, class_attributes, seen_classes)
        self._check_sgd_params()
        A = normalize_attributes(A, self.attribute_norm)
        column = {c: j for j, c in enumerate(seen.tolist())}
        target = np.array([column[c] for c in y.tolist()], dtype=np.int64)
        attributes = A[seen]
        rng = np.random.default_rng(int(self.seed))
        weight = self.init_weights(X.shape[1], A.shape[1], rng)
        self.class_embeddings_ = A
        batch = int(self.batch_size)
        for epoch in range(1, int(self.epochs) + 1):
            order = rng.permutation(len(X))
            for start in range(0, len(X), batch):
                idx = order[start : start + batch]
                scores, context = self.forward(X[idx], weight, attributes)
                _, grad_scores = self.loss(scores, target[idx])
                grad = self.weight_gradient(X[idx], attributes, grad_scores, context) + self.weight_decay * weight
                weight = weight - self.lr * grad
            self.W_ = weight
            self.epochs_trained_ = epoch
            if on_epoch is not None:
                on_epoch(epoch, self)
        return self

    def decision_function(self, X) -> np.ndarray:
        """``(N, K)`` compatibilities of every image with every class."""
        return self.compatibility(np.asarray(X, dtype=np.float64), self.W_, self.class_embeddings_)
