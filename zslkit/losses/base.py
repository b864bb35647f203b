"""Shared by the loss terms: picking the branches a term applies to.

A loss term is an ``nn.Module`` built as ``factory(**options)`` whose
``forward(output, labels, classes)`` returns a scalar tensor; ``output`` is a
:class:`~zslkit.models.output.ModelOutput`, ``labels`` ``(B,)`` class indices and
``classes`` a :class:`~zslkit.models.class_space.ClassSpace`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["select_branches"]


def select_branches(branch_scores: dict[str, torch.Tensor], names: Sequence[str] | None, term: str) -> list[torch.Tensor]:
    """The ``(B, K)`` scores of the branches ``names`` (all branches, in order, when ``None``)."""
    if names is None:
        return list(branch_scores.values())
    missing = [n for n in names if n not in branch_scores]
    if missing:
        raise KeyError(f"loss {term!r}: no branch {missing[0]!r}; the model has {list(branch_scores)}")
    return [branch_scores[n] for n in names]
