"""``attribute_ce``: cross-entropy over all classes of the margin-free class scores.

For each branch with class scores ``y`` ``(B, K)`` (margin ``m`` included),
``L = -(1/B) sum_b log softmax_k(y_b - m)[label_b]``; the term is the sum over
branches. Removing the margin makes it a plain classifier loss; the margin only
shapes the self-calibration and the predictions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zslkit.losses.base import PerBranchLoss
from zslkit.registry import register

__all__ = ["AttributeCrossEntropy"]


@register("loss", "attribute_ce")
class AttributeCrossEntropy(PerBranchLoss):
    """Cross-entropy of every branch (or of ``branches`` only), summed over branches."""

    def branch_loss(self, scores: torch.Tensor, labels: torch.Tensor, classes) -> torch.Tensor:
        return F.cross_entropy(scores - classes.margin, labels)
