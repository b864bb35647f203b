"""Temperature-scaled dot-product attention over regions.

One shared projection ``W (D, C)`` both scores and places each attribute:
``s_{b,i,r} = v_i W f_{b,r}``, ``a_{b,i,r} = softmax_r(s_{b,i,r} / tau)``,
``psi_{b,i} = sum_r a_{b,i,r} s_{b,i,r}``. With a small ``tau`` this is close to
max-pooling the attribute's response over regions.
"""

from __future__ import annotations

import torch
from einops import einsum
from torch import nn

from zslkit.attention import AttentionOutput


class TemperatureAttention(nn.Module):
    """Shapes: features ``(B, C, R)``, embeddings ``(I, D)`` -> scores ``(B, I)``, maps ``(B, I, R)``."""

    def __init__(self, feature_dim: int, embedding_dim: int, num_attributes: int, temperature: float = 0.5):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.weight = nn.Parameter(torch.randn(embedding_dim, feature_dim) / feature_dim**0.5)

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> AttentionOutput:
        query = embeddings @ self.weight  # (I, C)
        response = einsum(query, features, "i c, b c r -> b i r")
        maps = torch.softmax(response / self.temperature, dim=-1)
        scores = (maps * response).sum(dim=-1)
        return AttentionOutput(scores=scores, maps=maps)
