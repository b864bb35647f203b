"""``prototype``: attribute prototypes applied as a 1x1 convolution, scored by their strongest region (APN's local branch).

With region features ``f_{b,r}`` ``(C,)`` (APN: the raw last feature map, built with
``normalize_features=False``) and one prototype ``p_i`` ``(C,)`` per attribute:

* attribute map ``M_{b,i,r} = p_i . f_{b,r}``  (the 1x1 convolution of the map with ``p_i``)
* attribute score ``psi_{b,i} = max_r M_{b,i,r}``

The maps ``M`` (not a softmax: raw responses) are returned for the compactness term and
for pictures; the prototypes ``P`` ``(I, C)`` are returned as ``constants["weights"]`` for
the attribute decorrelation term. Initialisation as in the authors' code:
``P ~ U[0, 2e-4)`` elementwise.
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.attention.attend import region_responses
from zslkit.attention.base import AttentionOutput
from zslkit.registry import register

__all__ = ["Prototype"]


@register("attention", "prototype")
class Prototype(nn.Module):
    """Attribute prototypes ``P`` ``(I, C)``, max over regions.

    Shapes: ``forward(features (B, C, R), embeddings (I, D))`` -> :class:`AttentionOutput`
    with ``scores`` ``(B, I)``, ``maps`` ``(B, I, R)`` (raw responses) and
    ``constants["weights"]`` ``(I, C)``. The embeddings are not used (APN has none).

    Args:
        init_scale: prototypes start as ``init_scale * U[0, 1)`` (the authors' ``2e-4``).
    """

    def __init__(self, feature_dim: int, embedding_dim: int | None = None, num_attributes: int | None = None, init_scale: float = 2e-4):
        super().__init__()
        if num_attributes is None:
            raise ValueError("prototype needs num_attributes: it holds one prototype per attribute")
        self.prototypes = nn.Parameter(init_scale * torch.rand(num_attributes, feature_dim))

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> AttentionOutput:
        maps = region_responses(features, self.prototypes)
        return AttentionOutput(scores=maps.amax(dim=2), maps=maps, constants={"weights": self.prototypes})
