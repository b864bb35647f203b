"""``self_calibration``: keep probability mass on the unseen classes.

For each branch with class scores ``y`` ``(B, K)`` (margin included),
``L = -log( (1/B) sum_b sum_{k unseen} softmax_k(y_b) )``; the term is the sum
over branches. Without it a model trained on seen classes only gives the unseen
ones almost no mass, and GZSL predicts seen classes for everything.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zslkit.losses.base import select_branches
from zslkit.registry import register

__all__ = ["SelfCalibration"]


@register("loss", "self_calibration")
class SelfCalibration(nn.Module):
    """Self-calibration of every branch (or of ``branches`` only), summed over branches."""

    def __init__(self, branches: Sequence[str] | None = None):
        super().__init__()
        self.branches = None if branches is None else list(branches)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        if classes.unseen.numel() == 0:
            raise ValueError("self_calibration needs unseen classes; the model's class space has none")
        terms = []
        for scores in select_branches(output.branch_scores, self.branches, "self_calibration"):
            unseen_mass = scores.softmax(dim=1)[:, classes.unseen].sum(dim=1)
            terms.append(-torch.log(unseen_mass.mean()))
        return torch.stack(terms).sum()
