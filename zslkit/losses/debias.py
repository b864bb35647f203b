"""``debias``: PSVMA's debiasing term -- seen-class scores pulled down to the level and spread of another set of classes.

For each selected branch with margin-free class scores ``y`` ``(B, K)``, per image ``b``:
``mu_S, sd_S`` the mean and standard deviation (unbiased) of ``y_b`` over the seen classes and
``mu_R, sd_R`` over the reference classes;
``L = mean_b relu(mu_S - mu_R) + mean_b relu(sd_S - sd_R)``, summed over branches.

**Which classes are the reference.** ``reference="unseen"`` (PSVMA's term, the default of
``psvma``): the unseen classes -- this reads the *unseen classes' attributes in training*
(the class-attribute matrix of the test classes; no unseen images). ``reference="absent_seen"``:
strictly inductive -- the reference is the seen classes with no image in the batch and the
first set the seen classes that have one (a batch without absent seen classes gives 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from zslkit.losses.base import PerBranchLoss
from zslkit.registry import register

__all__ = ["REFERENCES", "Debias", "debias_loss"]

#: The reference classes :class:`Debias` compares the seen-class scores with.
REFERENCES: tuple[str, ...] = ("unseen", "absent_seen")


def debias_loss(scores: torch.Tensor, first: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``mean_b relu(mean - mean_ref) + mean_b relu(std - std_ref)`` of ``scores`` ``(B, K)`` over the class index sets."""
    if first.numel() < 2 or reference.numel() < 2:
        return scores.sum() * 0.0  # a spread needs two classes on each side
    ours, theirs = scores[:, first], scores[:, reference]
    return F.relu(ours.mean(1) - theirs.mean(1)).mean() + F.relu(ours.std(1) - theirs.std(1)).mean()


@register("loss", "debias")
class Debias(PerBranchLoss):
    """PSVMA's debias term on every branch (or on ``branches``); ``reference``: ``"unseen"`` or ``"absent_seen"``."""

    def __init__(self, branches: Sequence[str] | None = None, reference: str = "unseen"):
        super().__init__(branches)
        if reference not in REFERENCES:
            raise ValueError(f"debias reference must be one of {REFERENCES} (unseen: PSVMA's, reads the unseen classes' "
                             f"attributes; absent_seen: strictly inductive), got {reference!r}")
        self.reference = reference

    def branch_loss(self, scores: torch.Tensor, labels: torch.Tensor, classes) -> torch.Tensor:
        scores = scores - classes.margin
        if self.reference == "unseen":
            return debias_loss(scores, classes.seen, classes.unseen)
        present = torch.zeros(classes.num_classes, dtype=torch.bool, device=scores.device)
        present[labels] = True
        seen = torch.zeros_like(present)
        seen[classes.seen] = True
        return debias_loss(scores, torch.nonzero(present & seen).reshape(-1), torch.nonzero(seen & ~present).reshape(-1))

    def extra_repr(self) -> str:
        return f"reference={self.reference!r}"
