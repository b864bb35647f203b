"""LATEM: "Latent Embeddings for Zero-shot Classification" (Xian et al., CVPR 2016).

A piecewise-bilinear compatibility: ``n_latent`` maps ``W_1 .. W_L`` and, for
every image-class pair, the one that scores highest::

    F(x, y) = max_l x^T W_l a_y

trained with the ranking loss summed over wrong classes (as DeViSE,
:func:`zslkit.methods.devise.devise_loss`)::

    loss(x_n, y_n) = sum_{y != y_n} max(0, margin + F(x_n, y) - F(x_n, y_n))

A gradient step only moves, for each image-class pair involved, the map that
wins the ``max``.
"""

from __future__ import annotations

import numpy as np

from zslkit.methods.devise import devise_loss
from zslkit.methods.ranking import RankingEmbedding
from zslkit.registry import register

__all__ = ["LATEM"]


@register("method", "latem")
class LATEM(RankingEmbedding):
    """Latent embeddings; ``n_latent`` bilinear maps, see the module docstring.

    Grid: ``lr`` in ``{0.001, 0.003, 0.01}``, ``n_latent`` in ``{2, 4, 6}``; the epoch is chosen on validation.
    """

    param_grid = {"lr": [0.001, 0.003, 0.01], "n_latent": [2, 4, 6]}

    def __init__(
        self,
        n_latent: int = 4,
        lr: float = 0.01,
        epochs: int = 20,
        batch_size: int = 64,
        margin: float = 1.0,
        weight_decay: float = 0.0,
        attribute_norm: str | None = "l2",
        seed: int = 0,
    ):
        super().__init__(lr, epochs, batch_size, margin, weight_decay, attribute_norm, seed)
        self.n_latent = n_latent

    def init_weights(self, feature_dim, num_attributes, rng):
        """``W (L, d, I)``, entries ``N(0, 0.01 / d)``: the maps start close, and they specialise as they win pairs."""
        if not (int(self.n_latent) == self.n_latent and self.n_latent >= 1):
            raise ValueError(f"LATEM: n_latent must be a positive integer, got {self.n_latent!r}")
        shape = (int(self.n_latent), feature_dim, num_attributes)
        return rng.standard_normal(shape) * (0.1 / np.sqrt(feature_dim))

    def forward(self, x, weight, attributes):
        """``x (B, d)``, ``W (L, d, I)``, ``attributes (Z, I)`` -> ``(B, Z)`` scores, max over the ``L`` maps.

        The context is the ``(B, Z)`` index of the winning map of every pair.
        """
        latent = (x[None] @ weight) @ attributes.T  # (L, B, Z)
        winner = latent.argmax(axis=0)
        return np.take_along_axis(latent, winner[None], axis=0)[0], winner

    def weight_gradient(self, x, attributes, grad_scores, winner):
        """Each map ``l`` receives the score gradient of the pairs it wins: ``(L, d, I)``."""
        maps = np.arange(int(self.n_latent))[:, None, None]
        routed = grad_scores[None] * (winner[None] == maps)  # (L, B, Z)
        return x.T[None] @ (routed @ attributes)

    def loss(self, scores, target):
        return devise_loss(scores, target, self.margin)
