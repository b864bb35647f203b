"""``gated_attribute_to_visual``: DAZLE's block, attribute-to-visual attention plus attention over attributes.

DAZLE (Huynh & Elhamifar, CVPR 2020) weighs each attribute score by how present
the attribute looks in its attended feature: with the attribute-to-visual
quantities ``a``, ``psi`` (see :mod:`zslkit.attention.attribute_to_visual`) and
``W3`` ``(D, C)``,

* attended feature ``e_{b,i} = sum_r a_{b,i,r} f_{b,r}``  ``(C,)``
* gate ``g_{b,i} = sigmoid(v_i W3 e_{b,i})``
* attribute score ``g_{b,i} psi_{b,i}``

``W3`` starts at zero (every gate 1/2), as in the authors' code.
"""

from __future__ import annotations

import torch
from einops import einsum
from torch import nn

from zslkit.attention.attend import project_queries, region_responses
from zslkit.attention.attribute_to_visual import AttributeToVisual
from zslkit.attention.base import AttentionOutput
from zslkit.registry import register

__all__ = ["GatedAttributeToVisual"]


@register("attention", "gated_attribute_to_visual")
class GatedAttributeToVisual(AttributeToVisual):
    """Attribute-to-visual attention gated per attribute (DAZLE).

    Shapes: ``forward(features (B, C, R), embeddings (I, D))`` ->
    :class:`AttentionOutput` with gated ``scores`` ``(B, I)`` and ``maps`` ``(B, I, R)``.
    """

    def __init__(self, feature_dim: int, embedding_dim: int, num_attributes: int | None = None):
        super().__init__(feature_dim, embedding_dim, num_attributes)
        self.W3 = nn.Parameter(torch.zeros(embedding_dim, feature_dim))

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> AttentionOutput:
        ungated = super().forward(features, embeddings)
        gate_queries = project_queries(embeddings, self.W3)
        # v_i W3 e_{b,i} = sum_r a_{b,i,r} (v_i W3 f_{b,r}): no (B, I, C) tensor e is formed
        responses = region_responses(features, gate_queries)
        gate_logits = einsum(ungated.maps, responses, "batch attribute region, batch attribute region -> batch attribute")
        return AttentionOutput(scores=torch.sigmoid(gate_logits) * ungated.scores, maps=ungated.maps)
