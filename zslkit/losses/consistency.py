"""``attribute_consistency`` and ``class_consistency``: two branches agree (TransZero++).

For two branches (the model's first two unless ``branches`` names them):

* ``attribute_consistency``: ``mean_{b,i} (psi_{b,i} - psi'_{b,i})^2`` over their attribute scores ``(B, I)``;
* ``class_consistency``: ``mean_{b,k} (y_{b,k} - y'_{b,k})^2`` over their class scores ``(B, K)``
  (margins included; they cancel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from zslkit.losses.base import select_branches
from zslkit.registry import register

__all__ = ["AttributeConsistency", "ClassConsistency", "Consistency"]


class Consistency(nn.Module):
    """Mean squared difference of one output field between two branches."""

    #: The :class:`~zslkit.models.output.ModelOutput` field compared, and the registered name.
    field: ClassVar[str] = ""
    term: ClassVar[str] = ""

    def __init__(self, branches: Sequence[str] | None = None):
        super().__init__()
        if branches is not None and len(branches) != 2:
            raise ValueError(f"{self.term} takes exactly two branches, got {list(branches)}")
        self.branches = None if branches is None else list(branches)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        values = getattr(output, self.field)
        names = self.branches or list(values)[:2]
        if len(names) < 2:
            raise ValueError(f"{self.term} needs two branches; the model has {list(values)}")
        first, second = select_branches(values, names, self.term)
        return (first - second).square().mean()


@register("loss", "attribute_consistency")
class AttributeConsistency(Consistency):
    """MSE between two branches' attribute scores."""

    field = "attribute_scores"
    term = "attribute_consistency"


@register("loss", "class_consistency")
class ClassConsistency(Consistency):
    """MSE between two branches' class scores."""

    field = "branch_scores"
    term = "class_consistency"
