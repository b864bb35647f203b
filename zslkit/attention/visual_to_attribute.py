"""``visual_to_attribute``: each region picks the attributes it shows (MSDN's V->A branch).

With region features ``f_{b,r}`` ``(C,)``, attribute embeddings ``v_i`` ``(D,)``,
``U1`` ``(C, D)`` and ``U2`` ``(D, C)``:

* ``s'_{b,i,r} = f_{b,r}^T U1 v_i^T``
* ``a'_{b,i,r} = softmax_i(v_i U2 f_{b,r})``  (softmax over the *attributes*, per region)
* ``psi'_{b,i} = sum_r a'_{b,i,r} s'_{b,i,r}``

Initialisation as in the paper's code: ``U1 = U2 = 0``.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from zslkit.attention.attend import attend, project_queries
from zslkit.attention.base import AttentionOutput
from zslkit.registry import register

__all__ = ["VisualToAttribute"]


@register("attention", "visual_to_attribute")
class VisualToAttribute(nn.Module):
    """Visual-to-attribute attention.

    Shapes: ``forward(features (B, C, R), embeddings (I, D))`` ->
    :class:`AttentionOutput` with ``scores`` ``(B, I)`` and ``maps`` ``(B, I, R)``
    (softmax over attributes: ``maps.sum(1) == 1``).
    """

    def __init__(self, feature_dim: int, embedding_dim: int, num_attributes: int | None = None):
        super().__init__()
        self.U1 = nn.Parameter(torch.zeros(feature_dim, embedding_dim))
        self.U2 = nn.Parameter(torch.zeros(embedding_dim, feature_dim))

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> AttentionOutput:
        score_queries = project_queries(embeddings, rearrange(self.U1, "channel embed -> embed channel"))
        attention_queries = project_queries(embeddings, self.U2)
        return AttentionOutput(*attend(features, score_queries, attention_queries, softmax_over="attributes"))
