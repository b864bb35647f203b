"""Dropout whose mask is drawn with ``torch.rand`` (uniform) instead of ``bernoulli_``.

The same distribution as :class:`torch.nn.Dropout` (each element kept with probability
``1 - p``, kept ones scaled by ``1 / (1 - p)``; identity in eval mode or with ``p = 0``),
with a different random stream: on CPU ``torch.rand_like(x) >= p`` is about three times
faster than ``F.dropout``'s Bernoulli draws, and the transformer blocks of TransZero draw
tens of millions of mask elements per CUB-sized step. Backward saves the boolean mask only.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Dropout"]


class Dropout(nn.Dropout):
    """Shapes: any -> the same. A subclass of ``nn.Dropout``: ``p`` and ``train()``/``eval()`` as there."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        keep = torch.rand_like(x) >= self.p
        return (x * keep).mul_(1.0 / (1.0 - self.p))
