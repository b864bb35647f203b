"""``ale_global``: attribute scores of the whole image through one linear map (APN's global ALE branch).

With region features ``f_{b,r}`` ``(C,)`` and ``W`` ``(I, C)``:

* ``psi_{b,i} = pool_r (W_i . f_{b,r})``, ``pool`` the maximum (``"max"``, APN's CUB
  setting) or the mean (``"mean"``, its SUN and AwA2 ``--avg_pool`` setting) over regions.

With ``"mean"`` this is ALE on the average-pooled features, ``W mean_r f_r``; with ``"max"``
it is the max-pooled 1x1 convolution, not ALE on max-pooled features. No map is returned
(a global branch); ``W`` is returned as ``constants["weights"]`` for the attribute
decorrelation term. Initialisation as in the authors' code: ``W ~ U[0, 2e-4)``.
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.attention.attend import region_responses
from zslkit.attention.base import AttentionOutput
from zslkit.registry import register

__all__ = ["ALE_POOLS", "ALEGlobal"]

#: Pooling over regions of :class:`ALEGlobal`.
ALE_POOLS: tuple[str, ...] = ("max", "mean")


@register("attention", "ale_global")
class ALEGlobal(nn.Module):
    """Global ALE branch: ``W`` ``(I, C)``, pooled over regions.

    Shapes: ``forward(features (B, C, R), embeddings (I, D))`` -> :class:`AttentionOutput`
    with ``scores`` ``(B, I)``, ``maps=None`` and ``constants["weights"]`` ``(I, C)``.
    """

    def __init__(
        self,
        feature_dim: int,
        embedding_dim: int | None = None,
        num_attributes: int | None = None,
        pool: str = "max",
        init_scale: float = 2e-4,
    ):
        super().__init__()
        if pool not in ALE_POOLS:
            raise ValueError(f"ale_global pool must be one of {ALE_POOLS}, got {pool!r}")
        if num_attributes is None:
            raise ValueError("ale_global needs num_attributes: W has one row per attribute")
        self.pool = pool
        self.weights = nn.Parameter(init_scale * torch.rand(num_attributes, feature_dim))

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> AttentionOutput:
        responses = region_responses(features, self.weights)
        scores = responses.amax(dim=2) if self.pool == "max" else responses.mean(dim=2)
        return AttentionOutput(scores=scores, maps=None, constants={"weights": self.weights})

    def extra_repr(self) -> str:
        return f"pool={self.pool!r}"
