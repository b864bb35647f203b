"""The one computation every built-in attention block shares.

Given region features ``f`` ``(B, C, R)`` and two per-attribute queries in
feature space, ``q^s`` (scores) and ``q^a`` (attention), both ``(I, C)``:

* region responses ``s_{b,i,r} = q^s_i . f_{b,r}``
* attention logits ``l_{b,i,r} = q^a_i . f_{b,r}``, turned into weights ``a`` by a
  softmax over the regions ``r`` (each attribute looks *somewhere* in the image)
  or over the attributes ``i`` (each region says *which* attribute it shows)
* attribute scores ``psi_{b,i} = sum_r a_{b,i,r} s_{b,i,r}``

:func:`attend` runs the ``zslkit::attribute_attention`` custom op
(:func:`zslkit.ops.attribute_attention`): one matrix product per projection and
a fused softmax-product-sum, with a backward that never builds the ``(B, I, C)``
per-attribute features. ``zslkit.ops.set_backend("reference")`` (or
``ZSLKIT_ATTENTION_BACKEND=reference``) switches every block to the
straightforward einsum formulation for comparison.
"""

from __future__ import annotations

from typing import Literal

import torch
from einops import einsum

from zslkit.ops import attribute_attention

__all__ = ["SOFTMAX_AXES", "attend", "project_queries", "region_responses"]

#: Axis of the attention softmax: ``"regions"`` (per attribute, over r) or ``"attributes"`` (per region, over i).
SOFTMAX_AXES: tuple[str, ...] = ("regions", "attributes")


def project_queries(embeddings: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``(I, D) x (D, C) -> (I, C)``: attribute embeddings mapped into feature space."""
    return einsum(embeddings, weight, "attribute embed, embed channel -> attribute channel")


def region_responses(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(B, C, R) x (I, C) -> (B, I, R)``: ``weights_i . f_{b,r}``, a 1x1 convolution of the feature map."""
    return einsum(weights, features, "attribute channel, batch channel region -> batch attribute region")


def attend(
    features: torch.Tensor,
    score_queries: torch.Tensor,
    attention_queries: torch.Tensor,
    softmax_over: Literal["regions", "attributes"] = "regions",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention-pooled attribute scores.

    Args:
        features: ``(B, C, R)`` region features.
        score_queries: ``(I, C)``, ``q^s`` above.
        attention_queries: ``(I, C)``, ``q^a`` above.
        softmax_over: ``"regions"`` or ``"attributes"``.

    Returns:
        ``scores`` ``(B, I)`` and ``maps`` ``(B, I, R)`` (the attention weights ``a``).
    """
    if softmax_over not in SOFTMAX_AXES:
        raise ValueError(f"softmax_over must be one of {SOFTMAX_AXES}, got {softmax_over!r}")
    return attribute_attention(
        features, query=attention_queries, value=score_queries, softmax_over=softmax_over, return_maps=True
    )
