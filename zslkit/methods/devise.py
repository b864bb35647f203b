"""DeViSE: "A Deep Visual-Semantic Embedding Model" (Frome et al., NeurIPS 2013).

A linear map of the image feature into the class-embedding space, scored by dot
product, ``F(x, y) = x^T W a_y``, trained with the hinge rank loss summed over
every wrong class::

    loss(x_n, y_n) = sum_{y != y_n} max(0, margin - F(x_n, y_n) + F(x_n, y))

(The paper sums over sampled wrong labels; here all seen classes are used.)
"""

from __future__ import annotations

import numpy as np

from zslkit.methods.ranking import RankingEmbedding, hinge_matrix, violation_gradient
from zslkit.registry import register

__all__ = ["DeViSE", "devise_loss"]


def devise_loss(scores: np.ndarray, target: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    """Mean summed hinge rank loss of ``scores (B, Z)`` against true columns ``target (B,)``, and its gradient."""
    hinge = hinge_matrix(scores, target, margin)
    return float(hinge.sum(axis=1).mean()), violation_gradient(hinge, target, np.ones(len(target)))


@register("method", "devise")
class DeViSE(RankingEmbedding):
    """Linear DeViSE on pooled features (:func:`devise_loss`).

    Grid: ``lr`` in ``{0.001, 0.003, 0.01}``, ``margin`` in ``{0.1, 1}``; the epoch is chosen on validation.
    """

    param_grid = {"lr": [0.001, 0.003, 0.01], "margin": [0.1, 1.0]}

    def loss(self, scores, target):
        return devise_loss(scores, target, self.margin)
