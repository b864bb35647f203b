"""What a zslkit model returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["ModelOutput"]


@dataclass
class ModelOutput:
    """The result of ``model(features)``.

    Attributes:
        scores: ``(B, K)`` prediction scores (margin included): the weighted sum of
            the branch scores, ``-inf`` for classes that are neither seen nor unseen.
        branch_scores: branch name -> ``(B, K)`` class scores ``y`` of that branch
            (margin included).
        attribute_scores: branch name -> ``(B, I)`` attribute scores ``psi``.
        maps: branch name -> ``(B, I, R)`` attention maps, or ``None`` for blocks
            without one.
        grid: ``(H, W)`` of ``(B, C, H, W)`` input, ``None`` for ``(B, C, R)`` input.
    """

    scores: torch.Tensor
    branch_scores: dict[str, torch.Tensor] = field(default_factory=dict)
    attribute_scores: dict[str, torch.Tensor] = field(default_factory=dict)
    maps: dict[str, torch.Tensor | None] = field(default_factory=dict)
    grid: tuple[int, int] | None = None

    def float(self) -> ModelOutput:
        """The same output with every tensor in float32 (loss terms run in full precision after autocast)."""
        return ModelOutput(
            scores=self.scores.float(),
            branch_scores={k: v.float() for k, v in self.branch_scores.items()},
            attribute_scores={k: v.float() for k, v in self.attribute_scores.items()},
            maps={k: (None if v is None else v.float()) for k, v in self.maps.items()},
            grid=self.grid,
        )
