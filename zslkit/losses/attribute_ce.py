"""``attribute_ce``: cross-entropy over all classes of the margin-free class scores.

For each branch with class scores ``y`` ``(B, K)`` (margin ``m`` included),
``L = -(1/B) sum_b log softmax_k(y_b - m)[label_b]``; the term is the sum over
branches. Removing the margin makes it a plain classifier loss; the margin only
shapes the self-calibration and the predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zslkit.losses.base import select_branches
from zslkit.registry import register

__all__ = ["AttributeCrossEntropy"]


@register("loss", "attribute_ce")
class AttributeCrossEntropy(nn.Module):
    """Cross-entropy of every branch (or of ``branches`` only), summed over branches."""

    def __init__(self, branches: Sequence[str] | None = None):
        super().__init__()
        self.branches = None if branches is None else list(branches)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        terms = [
            F.cross_entropy(scores - classes.margin, labels)
            for scores in select_branches(output.branch_scores, self.branches, "attribute_ce")
        ]
        return torch.stack(terms).sum()
