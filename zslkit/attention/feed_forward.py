"""The transformers' position-wise feed-forward sub-layer, post-norm.

For tokens ``x`` ``(..., N, d)``: ``LayerNorm(x + drop(W_2 drop(ReLU(W_1 x + b_1)) + b_2))``
with ``W_1`` ``(d, d_ff)`` and ``W_2`` ``(d_ff, d)``.
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.attention.dropout import Dropout

__all__ = ["FeedForward"]


class FeedForward(nn.Module):
    """Shapes: ``(..., N, d) -> (..., N, d)``."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.dropout_hidden = Dropout(dropout)
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(self.dropout_hidden(torch.relu(self.fc1(x))))
        return self.norm(x + self.dropout(out))
