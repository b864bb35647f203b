"""``attribute_regression``: attribute scores regressed onto the class attributes of the label.

For each selected branch with attribute scores ``psi`` ``(B, I)`` and the class-attribute
rows ``A`` of the model's :class:`~zslkit.models.ClassSpace` (``classes.attributes``, as
the class space holds them: unit rows by default, the raw rows with
``class_attributes_norm="none"`` or ``"scores"``):

``L = (1/(B I)) sum_b sum_i (psi_{b,i} - A_{y_b,i})^2``

summed over the branches (default: all). APN regresses both of its branches, GEM-ZSL its
attention branch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zslkit.losses.base import select_branches
from zslkit.registry import register

__all__ = ["AttributeRegression"]


@register("loss", "attribute_regression")
class AttributeRegression(nn.Module):
    """Mean squared error of every branch's (or ``branches``') attribute scores against ``A_y``."""

    def __init__(self, branches: Sequence[str] | None = None):
        super().__init__()
        self.branches = None if branches is None else list(branches)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        targets = classes.attributes[labels]
        selected = select_branches(output.attribute_scores, self.branches, "attribute_regression")
        return torch.stack([(psi - targets).square().mean() for psi in selected]).sum()
