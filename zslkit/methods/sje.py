"""SJE: "Evaluation of Output Embeddings for Fine-Grained Image Classification" (Akata et al., CVPR 2015).

Structured joint embedding: a bilinear compatibility ``F(x, y) = x^T W a_y``
trained with the structured SVM loss, which only penalises the most violating
class::

    loss(x_n, y_n) = max_y [Delta(y_n, y) + F(x_n, y)] - F(x_n, y_n),
    Delta(y_n, y) = margin * [y != y_n]

(always >= 0 since ``y = y_n`` is among the candidates). The paper also
combines several output embeddings; here one attribute embedding is used.
"""

from __future__ import annotations

import numpy as np

from zslkit.methods.ranking import RankingEmbedding
from zslkit.registry import register

__all__ = ["SJE", "sje_loss"]


def sje_loss(scores: np.ndarray, target: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    """Mean structured hinge loss of ``scores (B, Z)`` against true columns ``target (B,)``, and its gradient."""
    rows = np.arange(len(target))
    augmented = scores + margin
    augmented[rows, target] = scores[rows, target]
    worst = augmented.argmax(axis=1)
    loss = augmented[rows, worst] - scores[rows, target]
    grad = np.zeros_like(scores)
    np.add.at(grad, (rows, worst), 1.0 / len(target))
    np.add.at(grad, (rows, target), -1.0 / len(target))
    return float(loss.mean()), grad


@register("method", "sje")
class SJE(RankingEmbedding):
    """Structured joint embedding (:func:`sje_loss`).

    Grid: ``lr`` in ``{0.003, 0.01, 0.03, 0.1}``, ``margin`` in ``{1, 2}``; the epoch is chosen on validation.
    """

    param_grid = {"lr": [0.003, 0.01, 0.03, 0.1], "margin": [1.0, 2.0]}

    def loss(self, scores, target):
        return sje_loss(scores, target, self.margin)
