"""ALE: "Label-Embedding for Image Classification" (Akata, Perronnin, Harchaoui and Schmid, TPAMI 2016).

Bilinear compatibility ``F(x, y) = x^T W a_y`` trained with the weighted
approximate ranking (WARP) loss. With ``l_y = max(0, Delta + F(x_n, y) - F(x_n, y_n))``
(``Delta = margin`` for ``y != y_n``, ``l_{y_n} = 0``), the rank of the true
class ``r_n = #{y : l_y > 0}`` and ``beta_r = sum_{j=1..r} 1/j``::

    loss(x_n, y_n) = beta_{r_n} / r_n * sum_y l_y        (0 when r_n = 0)

so a sample whose true class sits far down the ranking costs more than one
near the top, but less than linearly in the number of violators (the plain sum
of DeViSE). The rank weight ``beta_r / r`` is held constant in the gradient, as
in the paper's SGD. Here the rank is computed exactly over all seen classes
(the paper estimates it by sampling).
"""

from __future__ import annotations

import numpy as np

from zslkit.methods.ranking import RankingEmbedding, hinge_matrix, violation_gradient
from zslkit.registry import register

__all__ = ["ALE", "ale_loss"]


def ale_loss(scores: np.ndarray, target: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    """Mean WARP loss of ``scores (B, Z)`` against true columns ``target (B,)``, and its gradient."""
    hinge = hinge_matrix(scores, target, margin)
    rank = (hinge > 0).sum(axis=1)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, scores.shape[1] + 1))])
    weight = harmonic[rank] / np.maximum(rank, 1)
    return float((weight * hinge.sum(axis=1)).mean()), violation_gradient(hinge, target, weight)


@register("method", "ale")
class ALE(RankingEmbedding):
    """Attribute Label Embedding with the WARP loss (:func:`ale_loss`).

    Grid: ``lr`` in ``{0.003, 0.01, 0.03, 0.1}``; the epoch is chosen on validation.
    """

    param_grid = {"lr": [0.003, 0.01, 0.03, 0.1]}

    def loss(self, scores, target):
        return ale_loss(scores, target, self.margin)
