"""``attribute_regression``: attribute scores regressed onto the label's class attributes (TransZero).

For each selected branch with attribute scores ``psi`` ``(B, I)`` and the model's unit-row
class attributes ``A`` ``(K, I)``: ``L_b = mean_{n,i} (psi_{n,i} - A_{y_n,i})^2`` (mean over
batch and attributes); the term is the sum over the branches (all of them by default).
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
    """Mean squared error between each branch's attribute scores and ``A[labels]``, summed over branches."""

    def __init__(self, branches: Sequence[str] | None = None):
        super().__init__()
        self.branches = None if branches is None else list(branches)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        target = classes.attributes[labels]  # (B, I)
        selected = select_branches(output.attribute_scores, self.branches, "attribute_regression")
        return torch.stack([(scores - target).square().mean() for scores in selected]).sum()
