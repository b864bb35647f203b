"""Region features in the layout the fused op reads fastest."""

from __future__ import annotations

import torch
from einops import rearrange


def normalize_regions(features: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale every region's feature vector to unit L2 length over channels.

    Args:
        features: ``(B, C, H, W)`` feature map or ``(B, C, R)`` region features.
        eps: lower bound on the norm (an all-zero region stays zero).

    Returns:
        ``(B, C, R)`` with ``R = H * W``, stored channels-last (``stride(1) == 1``), so that the
        fused op's weight gradient reads it as a ``(B * R, C)`` matrix without a copy.
    """
    if features.dim() not in (3, 4):
        raise ValueError(f"features: expected shape (B, C, H, W) or (B, C, R), found {tuple(features.shape)}")
    rows = rearrange(features, "b c ... -> b (...) c")
    norms = torch.linalg.vector_norm(rows, dim=-1, keepdim=True).clamp_min(eps)
    # one new (B, R, C) buffer, divided in place: peak memory is the input plus one copy
    normalized = rows.clone(memory_format=torch.contiguous_format).div_(norms)
    return rearrange(normalized, "b r c -> b c r")
