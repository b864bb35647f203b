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

    #: The :class:`~zslkit.models.output.ModelOutput` field compared.
    field: ClassVar[str] = ""

    def __init__(self, branches: Sequence[str] | None = None):
        super().__init__()
        if branches is not None and len(branches) != 2:
            raise ValueError(f"{self._name} takes exactly two branches, got {list(branches)}")
        self.branches = None if branches is None else list(branches)

    @property
    def _name(self) -> str:
        """The registered name (recorded by ``zslkit.create``), else the class name."""
        return getattr(self, "component_name", type(self).__name__)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        values = getattr(output, self.field)
        names = self.branches or list(values)[:2]
        if len(names) < 2:
            raise ValueError(f"{self._name} needs two branches; the model has {list(values)}")
        first, second = select_branches(values, names, self._name)
        return (first - second).square().mean()


@register("loss", "attribute_consistency")
class AttributeConsistency(Consistency):
    """MSE between two branches' attribute scores."""

    field = "attribute_scores"


@register("loss", "class_consistency")
class ClassConsistency(Consistency):
    """MSE between two branches' class scores."""

    field = "branch_scores"
