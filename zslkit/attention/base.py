"""What every attention block returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class AttentionOutput:
    """Result of an attention block.

    Attributes:
        scores: ``(B, I)`` attribute scores, one per image and attribute.
        maps: ``(B, I, R)`` attention weights over the ``R`` regions, or ``None``
            for blocks without a spatial map.
        extras: name -> a per-image tensor, batch-first ``(B, ...)``, for loss terms that
            need more than scores and maps (e.g. attribute features ``(B, I, C)``). The model
            puts them in ``ModelOutput.extras[branch]``; data-parallel training gathers them
            over processes like the scores.
        constants: name -> an image-independent tensor (e.g. attribute prototypes ``(I, C)``),
            in ``ModelOutput.constants[branch]``; identical on every process, not gathered.
    """

    scores: torch.Tensor
    maps: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    constants: dict[str, torch.Tensor] = field(default_factory=dict)
