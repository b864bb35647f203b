"""``attribute_ce``: cross-entropy over all classes of the margin-free class scores.

For each branch with class scores ``y`` ``(B, K)`` (margin ``m`` included),
``L = -(1/B) sum_b log softmax_k(y_b - m)[label_b]``; the term is the sum over
branches. Removing the margin makes it a plain classifier loss; the margin only
shapes the self-calibration and the predictions.

Options for APN and GEM-ZSL:

* ``classes="seen"``: the softmax runs over the seen classes only (both train against
  the seen classes' attributes alone); every label must be a seen class.
* ``on_probabilities=True``: the cross-entropy of ``softmax_k(y_b - m)`` taken as logits,
  ``-log softmax(softmax(y_b - m))[label_b]`` (APN's ``nn.CrossEntropyLoss`` applied to the
  class probabilities its model returns).
* ``scale``: the logits are ``scale * (y_b - m)`` (SVIP: 5 times its cosine scores); 1 by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from zslkit.losses.base import PerBranchLoss
from zslkit.registry import register

__all__ = ["AttributeCrossEntropy"]


@register("loss", "attribute_ce")
class AttributeCrossEntropy(PerBranchLoss):
    """Cross-entropy of every branch (or of ``branches`` only), summed over branches."""

    def __init__(self, branches: Sequence[str] | None = None, classes: str = "all", on_probabilities: bool = False,
                 scale: float = 1.0):
        super().__init__(branches)
        self.scale = float(scale)
        if classes not in ("all", "seen"):
            raise ValueError(f"attribute_ce classes must be 'all' or 'seen', got {classes!r}")
        self.over, self.on_probabilities = classes, bool(on_probabilities)

    def branch_loss(self, scores: torch.Tensor, labels: torch.Tensor, classes) -> torch.Tensor:
        logits = scores - classes.margin
        if self.scale != 1.0:
            logits = logits * self.scale
        if self.over == "seen":
            # position of each class among the seen ones (-1 for the others: cross_entropy refuses it)
            position = torch.full((classes.num_classes,), -1, dtype=torch.long, device=labels.device)
            position[classes.seen] = torch.arange(classes.seen.numel(), device=labels.device)
            logits, labels = logits[:, classes.seen], position[labels]
        if self.on_probabilities:
            logits = logits.softmax(dim=1)
        return F.cross_entropy(logits, labels)
