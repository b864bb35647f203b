"""``geometry_encoder``: TransZero's region encoder, self-attention biased by the regions' relative geometry.

For normalised region features ``f`` ``(B, C, R)`` on an ``H x W`` grid:

1. region tokens ``h_{b,r} = W_cv f_{b,r} + b_cv`` (``C -> d``);
2. geometry term ``g_{r,r'} = ReLU(w_g . E_{r,r'} + c_g)`` with the cached grid embedding
   ``E`` ``(R, R, 64)`` of :mod:`zslkit.encoders.geometry` -- once per forward, never per image;
3. per layer: single-head attention with logits ``q_r . k_r' / sqrt(d) - g_{r,r'}``,
   dropout ``attention_dropout`` on the weights (the authors' code fixes it at 0.1),
   output projection, ``a = LN_1(h + drop(attn))``, ``a = LN_2(h + drop(a))`` (the released
   code's double residual), then the feed-forward ``LN_3(a + drop(FFN(a)))``.

``forward`` returns the encoded regions ``(B, d, R)``; :meth:`tokens` and :meth:`encode`
give the two stages (TransZero++'s region-query branch reads both).
"""

from __future__ import annotations

import torch
from einops import einsum, rearrange
from torch import nn

from zslkit.attention.dropout import Dropout
from zslkit.attention.feed_forward import FeedForward
from zslkit.attention.multihead_attention import MultiHeadAttention
from zslkit.encoders.geometry import GEOMETRY_DIM, relative_geometry_embedding
from zslkit.ops.recompute import recomputed
from zslkit.registry import register

__all__ = ["GeometryEncoder", "GeometryEncoderLayer"]


class GeometryEncoderLayer(nn.Module):
    """Shapes: ``forward(tokens (B, R, d), geometry (R, R))`` -> ``(B, R, d)``."""

    def __init__(self, dim: int, ffn_dim: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.attn = MultiHeadAttention(dim, heads=1, dropout=attention_dropout, init="xavier")  # the released code's init
        self.dropout_attn = Dropout(dropout)
        self.norm_attn = nn.LayerNorm(dim)
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_dim, dropout)

    def forward(self, tokens: torch.Tensor, geometry: torch.Tensor) -> torch.Tensor:
        attended = self.attn(tokens, tokens, bias=geometry)[0]
        attended = self.norm_attn(tokens + self.dropout_attn(attended))
        residual = tokens + self.dropout(attended)
        return self.ffn(recomputed(self.norm, residual))


@register("encoder", "geometry_encoder")
class GeometryEncoder(nn.Module):
    """Region encoder with the relative-geometry term (TransZero, Chen et al., AAAI 2022).

    Args:
        feature_dim: ``C``, channels of the region features.
        dim: ``d``, width of the tokens (``output_dim``); 300 for CUB.
        ffn_dim: hidden width of the feed-forward sub-layer.
        dropout: dropout after every sub-layer.
        attention_dropout: dropout on the attention weights (0.1 in the authors' code
            whatever their config says).
        layers: number of encoder layers (they share the geometry term).

    Shapes: ``forward(features (B, C, R), grid (H, W))`` -> ``(B, d, R)``, ``R = H W``.
    """

    def __init__(
        self,
        feature_dim: int,
        dim: int = 300,
        ffn_dim: int = 512,
        dropout: float = 0.4,
        attention_dropout: float = 0.1,
        layers: int = 1,
    ):
        super().__init__()
        self.output_dim = int(dim)
        self.embed = nn.Linear(feature_dim, dim)
        self.geometry = nn.Linear(GEOMETRY_DIM, 1)
        self.layers = nn.ModuleList(GeometryEncoderLayer(dim, ffn_dim, dropout, attention_dropout) for _ in range(layers))

    def tokens(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C, R) -> (B, R, d)``: the region tokens ``h`` before the encoder layers."""
        return self.embed(rearrange(features, "batch channel region -> batch region channel"))

    def geometry_bias(self, grid: tuple[int, int] | None, regions: int) -> torch.Tensor:
        """``g`` ``(R, R)`` for the grid (its embedding ``E`` is cached)."""
        if grid is None or int(grid[0]) * int(grid[1]) != regions:
            raise ValueError(
                f"geometry_encoder needs the region grid of its {regions} regions, got grid={grid!r}; "
                "give the features as (B, C, H, W)"
            )
        embedding = relative_geometry_embedding(grid, device=self.geometry.weight.device, dtype=self.geometry.weight.dtype)
        logits = einsum(embedding, self.geometry.weight[0], "query key geometry, geometry -> query key")
        return torch.relu(logits + self.geometry.bias[0])

    def encode(self, tokens: torch.Tensor, grid: tuple[int, int] | None) -> torch.Tensor:
        """``(B, R, d) -> (B, R, d)``: the encoder layers over region tokens."""
        geometry = self.geometry_bias(grid, tokens.shape[1])
        for layer in self.layers:
            tokens = layer(tokens, geometry)
        return tokens

    def forward(self, features: torch.Tensor, grid: tuple[int, int] | None) -> torch.Tensor:
        encoded = self.encode(self.tokens(features), grid)
        return rearrange(encoded, "batch region dim -> batch dim region")
