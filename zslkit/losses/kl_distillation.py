"""``kl_distillation``: one branch's class distribution distilled into another's, at a temperature (SVIP).

For the class scores ``y^s`` (student) and ``y^t`` (teacher) ``(B, K)`` of two branches and a
temperature ``T``, with ``p^t = softmax(y^t / T)`` and ``log q^s = log_softmax(y^s / T)``::

    L = T^2 * reduce_{b,k}( p^t_{b,k} (log p^t_{b,k} - log q^s_{b,k}) )

``reduction="mean"``: the mean over all ``B*K`` entries (``torch.nn.KLDivLoss()``'s default, which
SVIP's code uses); ``"batchmean"``: the sum over classes averaged over the batch (the KL divergence
per image). ``classes="seen"``: over the seen classes only (SVIP scores its training images
against the seen classes). The teacher is not detached unless ``detach_teacher`` (SVIP's
gradient reaches both branches). Not MSDN's ``semantic_distillation``, which is the
Jensen-Shannon divergence without temperature plus a weighted difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zslkit.losses.base import select_branches
from zslkit.registry import register

__all__ = ["KLDistillation", "kl_distillation"]


def kl_distillation(student: torch.Tensor, teacher: torch.Tensor, temperature: float, reduction: str = "mean") -> torch.Tensor:
    """``L`` above for scores ``(B, K)`` (``torch.nn.functional.kl_div`` of the two at ``temperature``, times ``T^2``)."""
    log_q = F.log_softmax(student / temperature, dim=1)
    p = F.softmax(teacher / temperature, dim=1)
    pointwise = F.kl_div(log_q, p, reduction="none")  # torch's "mean" is this .mean(), without its deprecation warning
    value = pointwise.mean() if reduction == "mean" else pointwise.sum() / student.shape[0]
    return value * (temperature * temperature)


@register("loss", "kl_distillation")
class KLDistillation(nn.Module):
    """KL of the ``branches = [student, teacher]`` class distributions at ``temperature`` (module docstring)."""

    def __init__(self, branches: Sequence[str] = ("source", "target"), temperature: float = 20.0, reduction: str = "mean",
                 classes: str = "seen", detach_teacher: bool = False):
        super().__init__()
        if len(branches) != 2:
            raise ValueError(f"kl_distillation takes two branches [student, teacher], got {list(branches)}")
        if reduction not in ("mean", "batchmean"):
            raise ValueError(f"kl_distillation reduction must be 'mean' or 'batchmean', got {reduction!r}")
        if classes not in ("all", "seen"):
            raise ValueError(f"kl_distillation classes must be 'all' or 'seen', got {classes!r}")
        if temperature <= 0:
            raise ValueError(f"kl_distillation temperature must be positive, got {temperature}")
        self.branches, self.temperature, self.reduction = list(branches), float(temperature), reduction
        self.over, self.detach_teacher = classes, bool(detach_teacher)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        student, teacher = select_branches(output.branch_scores, self.branches, "kl_distillation")
        student, teacher = student - classes.margin, teacher - classes.margin
        if self.over == "seen":
            student, teacher = student[:, classes.seen], teacher[:, classes.seen]
        return kl_distillation(student, teacher.detach() if self.detach_teacher else teacher, self.temperature, self.reduction)
