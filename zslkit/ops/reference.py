"""The straightforward attribute attention, written the way the MSDN paper's code does.

It materialises the per-attribute features ``(B, I, C)`` and leaves the backward pass to
autograd. It is the ground truth the fused op is tested against and the ``"reference"``
backend of :func:`zslkit.ops.attribute_attention`.
"""

from __future__ import annotations

import torch
from einops import einsum

from zslkit.ops.inputs import softmax_dim


def reference_attribute_attention(
    features: torch.Tensor,
    query: torch.Tensor,
    value: torch.Tensor,
    softmax_over: str = "regions",
    return_maps: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attribute attention by einsum.

    Args:
        features: ``(B, C, R)`` region features, unit length per region.
        query: ``(I, C)`` query projection ``q_i`` of each attribute.
        value: ``(I, C)`` value projection ``u_i`` of each attribute.
        softmax_over: ``"regions"`` (softmax over ``R``) or ``"attributes"`` (over ``I``).
        return_maps: also return the attention maps.

    Returns:
        scores ``(B, I)`` with ``scores[b, i] = sum_r a[b, i, r] * (u_i . f[b, :, r])``, and the
        maps ``a`` ``(B, I, R)`` when ``return_maps``.
    """
    logits = einsum(query, features, "i c, b c r -> b i r")
    maps = logits.softmax(dim=softmax_dim(softmax_over))
    attended = einsum(maps, features, "b i r, b c r -> b i c")  # per-attribute features
    scores = einsum(attended, value, "b i c, i c -> b i")
    return (scores, maps) if return_maps else scores
