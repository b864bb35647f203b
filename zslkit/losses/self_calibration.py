"""``self_calibration``: keep probability mass on the unseen classes.

For each branch with class scores ``y`` ``(B, K)`` (margin included),
``L = -log( (1/B) sum_b sum_{k unseen} softmax_k(y_b) )``; the term is the sum
over branches, computed in log space (``logsumexp``) so that it stays finite when
the unseen mass underflows. Without it a model trained on seen classes only gives the unseen
ones almost no mass, and GZSL predicts seen classes for everything.
"""

from __future__ import annotations

import math

import torch

from zslkit.losses.base import PerBranchLoss
from zslkit.registry import register

__all__ = ["SelfCalibration"]


@register("loss", "self_calibration")
class SelfCalibration(PerBranchLoss):
    """Self-calibration of every branch (or of ``branches`` only), summed over branches."""

    def branch_loss(self, scores: torch.Tensor, labels: torch.Tensor, classes) -> torch.Tensor:
        if classes.unseen.numel() == 0:
            raise ValueError("self_calibration needs unseen classes; the model's class space has none")
        # log of the mean unseen mass, in log space: the mass can underflow to 0 in float32
        # when scores are large (log 0 = -inf), its log cannot.
        log_unseen_mass = scores[:, classes.unseen].logsumexp(dim=1) - scores.logsumexp(dim=1)
        return -(log_unseen_mass.logsumexp(dim=0) - math.log(scores.shape[0]))
