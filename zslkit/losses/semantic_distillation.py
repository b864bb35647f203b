"""``semantic_distillation``: two branches teach each other (MSDN's mutual distillation).

For the class scores ``y``, ``y'`` ``(B, K)`` of two branches, ``d = y - y'``:

* weighted difference ``(1/B) sum_b sum_k |d_{b,k}|^3 / ||d_b||_2``
* Jensen-Shannon divergence ``(1/2) KL(p || M) + (1/2) KL(q || M)`` with
  ``p = softmax(y)``, ``q = softmax(y')``, ``M = (p + q) / 2``, KL summed over
  classes and averaged over the batch.

The term is their sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from zslkit.losses.base import select_branches
from zslkit.registry import register

__all__ = ["SemanticDistillation", "jensen_shannon", "weighted_difference"]


def weighted_difference(y: torch.Tensor, y_other: torch.Tensor) -> torch.Tensor:
    """``(1/B) sum_b sum_k |d_{b,k}|^3 / ||d_b||_2`` for ``d = y - y_other`` ``(B, K)``."""
    d = y - y_other
    norm = torch.linalg.vector_norm(d, dim=1, keepdim=True)
    # |d|^3 / ||d|| written as d^2 * (|d| / ||d||): the ratio is at most 1, so this overflows
    # only where d^2 itself would, not |d|^3; a zero row contributes 0.
    ratio = d.abs() / norm.clamp_min(torch.finfo(d.dtype).tiny)
    return (d.square() * ratio).sum(dim=1).mean()


def jensen_shannon(y: torch.Tensor, y_other: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence of ``softmax(y)`` and ``softmax(y_other)`` per row, averaged over rows."""
    log_p, log_q = y.log_softmax(dim=1), y_other.log_softmax(dim=1)
    p, q = log_p.exp(), log_q.exp()
    # log M in log space: (p + q) / 2 underflows to 0 for classes both give ~0 mass,
    # and 0 * log 0 would be NaN.
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    kl_p = (p * (log_p - log_m)).sum(dim=1)
    kl_q = (q * (log_q - log_m)).sum(dim=1)
    return (0.5 * (kl_p + kl_q)).mean()


@register("loss", "semantic_distillation")
class SemanticDistillation(nn.Module):
    """Mutual distillation between two branches, by default the model's first two."""

    def __init__(self, branches: Sequence[str] | None = None):
        super().__init__()
        if branches is not None and len(branches) != 2:
            raise ValueError(f"semantic_distillation takes exactly two branches, got {list(branches)}")
        self.branches = None if branches is None else list(branches)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        names = self.branches or list(output.branch_scores)[:2]
        if len(names) < 2:
            raise ValueError(f"semantic_distillation needs two branches; the model has {list(output.branch_scores)}")
        y, y_other = select_branches(output.branch_scores, names, "semantic_distillation")
        return weighted_difference(y, y_other) + jensen_shannon(y, y_other)
