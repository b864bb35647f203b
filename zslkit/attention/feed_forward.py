"""The transformers' position-wise feed-forward sub-layer, post-norm.

For tokens ``x`` ``(..., N, d)``: ``LayerNorm(x + drop(W_2 drop(ReLU(W_1 x + b_1)) + b_2))``
with ``W_1`` ``(d, d_ff)`` and ``W_2`` ``(d_ff, d)``.
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.attention.dropout import Dropout, relu_dropout
from zslkit.ops.recompute import recomputed

__all__ = ["FeedForward"]


class FeedForward(nn.Module):
    """Shapes: ``(..., N, d) -> (..., N, d)``."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0, token_first: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        # token_first: how the reference lays these tensors out (only torch_dropout_draws reads it)
        self.dropout_hidden = Dropout(dropout, token_first=token_first)
        self.dropout = Dropout(dropout, token_first=token_first)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # fc1 on the tokens as rows: its output is no view, so ReLU-dropout can overwrite it
        hidden = relu_dropout(self.fc1(x.flatten(0, -2)), self.dropout_hidden, (*x.shape[:-1], self.fc1.out_features))
        # no name for fc2's output: it is freed as soon as dropout has read it; an active
        # dropout returns a fresh tensor nothing saves, so the residual is added in place
        dropped = self.dropout(self.fc2(hidden).view(x.shape))
        residual = dropped.add_(x) if self.dropout.training and self.dropout.p > 0 else x + dropped
        return recomputed(self.norm, residual)
