"""What every attention block returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AttentionOutput:
    """Result of an attention block.

    Attributes:
        scores: ``(B, I)`` attribute scores, one per image and attribute.
        maps: ``(B, I, R)`` attention weights over the ``R`` regions, or ``None``
            for blocks without a spatial map.
    """

    scores: torch.Tensor
    maps: torch.Tensor | None = None
