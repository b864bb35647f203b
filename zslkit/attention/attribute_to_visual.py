"""``attribute_to_visual``: each attribute attends over the image regions (MSDN's A->V branch, DAZLE's core).

With region features ``f_{b,r}`` ``(C,)``, attribute embeddings ``v_i`` ``(D,)`` and
parameters ``W1``, ``W2`` of shape ``(D, C)``:

* ``s_{b,i,r} = v_i W1 f_{b,r}``  (how much region r shows attribute i)
* ``a_{b,i,r} = softmax_r(v_i W2 f_{b,r})``  (where attribute i is)
* ``psi_{b,i} = sum_r a_{b,i,r} s_{b,i,r}``

Initialisation as in the paper's code: ``W1 ~ N(0, 1)`` elementwise, ``W2 = 0``
(uniform attention at the start).

``pool="max"`` (GEM-ZSL's attention module): the score of an attribute is the peak of its
attention, ``psi_{b,i} = max_r a_{b,i,r}``; there is no ``W1``. ``attention_init="normal"``
starts ``W2 ~ N(0, 1)`` (GEM-ZSL's ``W``).
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.attention.attend import attend, project_queries, region_responses
from zslkit.attention.base import AttentionOutput
from zslkit.registry import register

__all__ = ["ATTENTION_INITS", "ATTENTION_POOLS", "AttributeToVisual"]

#: ``weighted``: ``sum_r a s``; ``max``: ``max_r a``.
ATTENTION_POOLS: tuple[str, ...] = ("weighted", "max")
#: Initial ``W2``: ``zeros`` (MSDN, DAZLE) or ``normal`` (GEM-ZSL).
ATTENTION_INITS: tuple[str, ...] = ("zeros", "normal")


@register("attention", "attribute_to_visual")
class AttributeToVisual(nn.Module):
    """Attribute-to-visual attention.

    Shapes: ``forward(features (B, C, R), embeddings (I, D))`` ->
    :class:`AttentionOutput` with ``scores`` ``(B, I)`` and ``maps`` ``(B, I, R)``
    (softmax over regions); with ``pool="max"`` also ``constants["queries"]`` ``(I, C)``,
    the attention queries ``v_i W2`` (GEM-ZSL's decorrelation acts on them).

    ``num_attributes`` is part of the block contract; this block has no
    per-attribute parameter and does not need it.
    """

    def __init__(
        self,
        feature_dim: int,
        embedding_dim: int,
        num_attributes: int | None = None,
        pool: str = "weighted",
        attention_init: str = "zeros",
    ):
        super().__init__()
        if pool not in ATTENTION_POOLS:
            raise ValueError(f"attribute_to_visual pool must be one of {ATTENTION_POOLS}, got {pool!r}")
        if attention_init not in ATTENTION_INITS:
            raise ValueError(f"attribute_to_visual attention_init must be one of {ATTENTION_INITS}, got {attention_init!r}")
        self.pool = pool
        if pool == "weighted":
            self.W1 = nn.Parameter(torch.randn(embedding_dim, feature_dim))
        init = torch.zeros if attention_init == "zeros" else torch.randn
        self.W2 = nn.Parameter(init(embedding_dim, feature_dim))

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> AttentionOutput:
        attention_queries = project_queries(embeddings, self.W2)
        if self.pool == "max":
            logits = region_responses(features, attention_queries)
            maps = logits.softmax(dim=2)
            return AttentionOutput(scores=maps.amax(dim=2), maps=maps, constants={"queries": attention_queries})
        score_queries = project_queries(embeddings, self.W1)
        return AttentionOutput(*attend(features, score_queries, attention_queries, softmax_over="regions"))
