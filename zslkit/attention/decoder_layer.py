"""One post-norm transformer decoder layer (``nn.TransformerDecoderLayer``'s structure).

For queries ``t`` ``(..., Q, d)`` and a memory ``m`` ``(..., K, d)``:

1. optional self-attention: ``t = LN_1(t + drop(SelfAttn(t, t)))``;
2. cross-attention: ``t = LN_2(t + drop(CrossAttn(t, m)))``, weights ``a`` ``(..., Q, K)``;
3. feed-forward: ``z = LN_3(t + drop(FFN(t)))``.

Queries shared by the batch (``(Q, d)``, e.g. attribute tokens) run the self-attention
and their projections once when no dropout acts on them (evaluation, ``dropout=0``); the
memory then brings the batch axis. In training with dropout they are repeated per image
first, as ``nn.TransformerDecoderLayer`` receives them, so that each image draws its own
masks: one mask shared by the batch has the same expectation but makes the dropout's
gradient noise several times larger (issue 28, ``docs/transzero.md``).
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.attention.dropout import Dropout
from zslkit.attention.feed_forward import FeedForward
from zslkit.attention.multihead_attention import MultiHeadAttention
from zslkit.ops.recompute import recomputed

__all__ = ["DecoderLayer"]


class DecoderLayer(nn.Module):
    """Shapes: ``forward(queries (..., Q, d), memory (..., K, d))`` -> ``z (B, Q, d)``, ``maps (B, Q, K)``."""

    def __init__(self, dim: int, heads: int = 1, ffn_dim: int = 2048, dropout: float = 0.0, self_attention: bool = True):
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, heads, dropout) if self_attention else None
        self.norm_self = nn.LayerNorm(dim) if self_attention else None
        self.cross_attn = MultiHeadAttention(dim, heads, dropout)
        self.norm_cross = nn.LayerNorm(dim)
        # the reference (nn.TransformerDecoderLayer) holds its tensors as (token, batch, dim)
        self.ffn = FeedForward(dim, ffn_dim, dropout, token_first=True)
        self.dropout_self = Dropout(dropout, token_first=True)
        self.dropout_cross = Dropout(dropout, token_first=True)

    def _drops_on_queries(self) -> bool:
        """Whether a dropout acts on the queries before the cross-attention (the self-attention's)."""
        return self.self_attn is not None and (self.dropout_self._active() or self.self_attn.dropout._active())

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = queries
        if queries.ndim < memory.ndim and self._drops_on_queries():
            t = queries.expand(*memory.shape[:-2], *queries.shape)  # one mask per image, as the reference draws
        if self.self_attn is not None:
            t = self.norm_self(t + self.dropout_self(self.self_attn(t, t)[0]))
        attended, maps = self.cross_attn(t, memory)
        residual = t + self.dropout_cross(attended)
        del attended  # nothing saves it: free it before the feed-forward's activations
        return self.ffn(recomputed(self.norm_cross, residual)), maps
