"""``precomputed``: the identity backbone for cached region feature maps."""

from __future__ import annotations

import torch
from torch import nn

from zslkit.registry import register

__all__ = ["PrecomputedBackbone"]


@register("backbone", "precomputed")
class PrecomputedBackbone(nn.Module):
    """Passes cached feature maps through unchanged, checking their shape.

    Args:
        feature_dim: channels ``C`` of the cached maps (2048 for ResNet-101).

    ``forward(features (B, C, H, W)) -> (B, C, H, W)``.
    """

    def __init__(self, feature_dim: int = 2048) -> None:
        super().__init__()
        if int(feature_dim) < 1:
            raise ValueError(f"feature_dim must be positive, got {feature_dim}")
        self.feature_dim = int(feature_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4 or features.shape[1] != self.feature_dim:
            raise ValueError(
                f"precomputed backbone expects feature maps (B, {self.feature_dim}, H, W), got shape {tuple(features.shape)}"
            )
        return features

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}"
