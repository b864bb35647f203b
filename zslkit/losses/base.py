"""Shared by the loss terms: picking branches, and terms applied to each branch.

A loss term is an ``nn.Module`` built as ``factory(**options)`` whose
``forward(output, labels, classes)`` returns a scalar tensor; ``output`` is a
:class:`~zslkit.models.output.ModelOutput`, ``labels`` ``(B,)`` class indices and
``classes`` a :class:`~zslkit.models.class_space.ClassSpace`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["PerBranchLoss", "select_branches"]


def select_branches(branch_scores: dict[str, torch.Tensor], names: Sequence[str] | None, term: str) -> list[torch.Tensor]:
    """The ``(B, K)`` scores of the branches ``names`` (all branches, in order, when ``None``)."""
    if names is None:
        return list(branch_scores.values())
    missing = [n for n in names if n not in branch_scores]
    if missing:
        raise KeyError(f"loss {term!r}: no branch {missing[0]!r}; the model has {list(branch_scores)}")
    return [branch_scores[n] for n in names]


class PerBranchLoss(nn.Module):
    """A term computed on each branch's class scores ``(B, K)`` and summed over branches.

    ``branches`` limits it to the named branches (default: all). Subclasses define
    :meth:`branch_loss`.
    """

    def __init__(self, branches: Sequence[str] | None = None):
        super().__init__()
        self.branches = None if branches is None else list(branches)

    def branch_loss(self, scores: torch.Tensor, labels: torch.Tensor, classes) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        # the registered name, recorded by zslkit.create (the class name for a term built from its class)
        selected = select_branches(output.branch_scores, self.branches, getattr(self, "component_name", type(self).__name__))
        return torch.stack([self.branch_loss(scores, labels, classes) for scores in selected]).sum()
