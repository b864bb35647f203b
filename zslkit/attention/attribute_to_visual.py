"""``attribute_to_visual``: each attribute attends over the image regions (MSDN's A->V branch, DAZLE's core).

With region features ``f_{b,r}`` ``(C,)``, attribute embeddings ``v_i`` ``(D,)`` and
parameters ``W1``, ``W2`` of shape ``(D, C)``:

* ``s_{b,i,r} = v_i W1 f_{b,r}``  (how much region r shows attribute i)
* ``a_{b,i,r} = softmax_r(v_i W2 f_{b,r})``  (where attribute i is)
* ``psi_{b,i} = sum_r a_{b,i,r} s_{b,i,r}``

Initialisation as in the paper's code: ``W1 ~ N(0, 1)`` elementwise, ``W2 = 0``
(uniform attention at the start).
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.attention.attend import attend, project_queries
from zslkit.attention.base import AttentionOutput
from zslkit.registry import register

__all__ = ["AttributeToVisual"]


@register("attention", "attribute_to_visual")
class AttributeToVisual(nn.Module):
    """Attribute-to-visual attention.

    Shapes: ``forward(features (B, C, R), embeddings (I, D))`` ->
    :class:`AttentionOutput` with ``scores`` ``(B, I)`` and ``maps`` ``(B, I, R)``
    (softmax over regions).

    ``num_attributes`` is part of the block contract; this block has no
    per-attribute parameter and does not need it.
    """

    def __init__(self, feature_dim: int, embedding_dim: int, num_attributes: int | None = None):
        super().__init__()
        self.W1 = nn.Parameter(torch.randn(embedding_dim, feature_dim))
        self.W2 = nn.Parameter(torch.zeros(embedding_dim, feature_dim))

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> AttentionOutput:
        score_queries, attention_queries = project_queries(embeddings, self.W1), project_queries(embeddings, self.W2)
        return AttentionOutput(*attend(features, score_queries, attention_queries, softmax_over="regions"))
