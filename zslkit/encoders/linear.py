"""``linear_encoder``: the same linear map applied to every region, optionally followed by a ReLU.

With region features ``f_{b,r}`` ``(C,)``, ``W`` ``(C', C)`` and bias ``c`` ``(C',)``:

* ``e_{b,r} = W f_{b,r} + c``, then ``max(e, 0)`` with ``relu=True``.

A 1x1 convolution over the region grid, written over the flattened regions. ``W`` and ``c``
take :class:`torch.nn.Linear`'s initialisation.
"""

from __future__ import annotations

import torch
from einops import einsum
from torch import nn

from zslkit.registry import register

__all__ = ["LinearEncoder"]


@register("encoder", "linear_encoder")
class LinearEncoder(nn.Module):
    """Per-region linear map ``C -> output_dim`` (``relu``: then a ReLU).

    Shapes: ``forward(features (B, C, R), grid)`` -> ``(B, output_dim, R)``; ``grid`` is not used.
    """

    def __init__(self, feature_dim: int, output_dim: int = 256, relu: bool = False, bias: bool = True):
        super().__init__()
        if int(output_dim) < 1:
            raise ValueError(f"linear_encoder output_dim must be at least 1, got {output_dim}")
        self.output_dim = int(output_dim)
        self.relu = bool(relu)
        self.proj = nn.Linear(int(feature_dim), self.output_dim, bias=bias)

    def forward(self, features: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        encoded = einsum(self.proj.weight, features, "out channel, batch channel region -> batch out region")
        if self.proj.bias is not None:
            encoded = encoded + self.proj.bias[:, None]
        return encoded.relu() if self.relu else encoded

    def extra_repr(self) -> str:
        return f"output_dim={self.output_dim}, relu={self.relu}"
