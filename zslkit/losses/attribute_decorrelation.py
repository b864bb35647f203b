"""``attribute_decorrelation``: a group lasso over attribute groups on a branch's per-attribute weights.

Attributes of one group (e.g. CUB's fifteen ``wing_color`` values) compete for the same
channels; attributes of different groups should not share them. For a branch's weights
``w`` ``(I, C)`` (its ``constants[key]``: APN's prototypes or ALE matrix, GEM-ZSL's
attention queries ``v_i W``) and each group ``g`` of attribute indices:

* ``norm="frobenius"`` (APN's ``add_glasso``): ``n_g = sqrt(sum_c (sum_{i in g} w_{i,c}^2 + eps))``
  (``eps`` is added per channel: the authors' ``.sum(dim=0).add(1e-8).sum()``);
* ``norm="channel"`` (GEM-ZSL's ``attr_decorrelation``):
  ``n_g = (1/C) sum_c sqrt(sum_{i in g} w_{i,c}^2 + eps)``;

``L = sum_g n_g`` (``reduction="sum"``) or ``(1/G) sum_g n_g`` (``"mean"``), summed over the
selected branches. The groups are the model's ``classes.attribute_groups`` (from the
dataset), all of them in order or the named ones (``groups=[...]``; a name may repeat, as
in APN's CUB list where ``belly`` appears twice).

``source="attribute_scores"`` reads, instead of a constant, a branch's attribute scores of the
batch transposed, ``w = psi^T`` ``(I, B)`` (SVIP's decorrelation of its predictions: ``norm="channel"``,
``eps=0``, ``reduction="mean"``: per group the mean over images of the norm over the group's attributes).

``merge`` (name -> names of the class space's groups) first unites groups into coarser ones,
which ``groups`` then names: APN's CUB code regroups CUB's 28 attribute groups into its
eight parts (:data:`zslkit.datasets.cub_parts.APN_CUB_PARTS`) and loops over the first seven
of its list ``head, belly, breast, belly, wing, tail, leg, others`` (``belly`` twice,
``back`` and ``others`` never), which ``configs/apn/cub.yaml`` reproduces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
from torch import nn

from zslkit.registry import register

__all__ = ["DECORRELATION_NORMS", "AttributeDecorrelation", "group_norms"]

DECORRELATION_NORMS: tuple[str, ...] = ("frobenius", "channel")


def group_norms(weights: torch.Tensor, groups: Sequence[Sequence[int]], norm: str = "frobenius", eps: float = 1e-8) -> torch.Tensor:
    """``(G,)``: ``n_g`` above for ``weights`` ``(I, C)`` and index lists ``groups``."""
    values = []
    for group in groups:
        per_channel = weights[list(group)].square().sum(dim=0) + eps  # (C,)
        values.append(per_channel.sum().sqrt() if norm == "frobenius" else per_channel.sqrt().mean())
    return torch.stack(values)


@register("loss", "attribute_decorrelation")
class AttributeDecorrelation(nn.Module):
    """Group lasso of ``constants[key]`` of the selected branches (default: every branch that has one).

    Args:
        branches: branch names; ``None``: every branch whose block returns ``constants[key]``.
        key: the constant read (``"weights"`` of ``prototype``/``ale_global``, ``"queries"``
            of ``attribute_to_visual`` with ``pool="max"``).
        groups: names of the class space's attribute groups to use (repeats allowed), or
            ``None`` for all of them; with ``merge``, names of the merged groups.
        merge: merged group name -> the class space's group names it unites (each named
            group must exist); ``None``: the class space's groups as they are.
        source: ``"constants"`` (``constants[key]``) or ``"attribute_scores"`` (``attribute_scores[branch]^T``).
        norm: one of :data:`DECORRELATION_NORMS`.
        reduction: ``"sum"`` or ``"mean"`` over the groups.
        eps: added per channel inside the square root.
    """

    #: The model refuses to build this term without attribute groups.
    needs_attribute_groups: ClassVar[bool] = True

    def __init__(
        self,
        branches: Sequence[str] | None = None,
        key: str = "weights",
        groups: Sequence[str] | None = None,
        norm: str = "frobenius",
        reduction: str = "sum",
        eps: float = 1e-8,
        merge: Mapping[str, Sequence[str]] | None = None,
        source: str = "constants",
    ):
        super().__init__()
        if source not in ("constants", "attribute_scores"):
            raise ValueError(f"attribute_decorrelation source must be 'constants' or 'attribute_scores', got {source!r}")
        self.source = source
        if norm not in DECORRELATION_NORMS:
            raise ValueError(f"attribute_decorrelation norm must be one of {DECORRELATION_NORMS}, got {norm!r}")
        if reduction not in ("sum", "mean"):
            raise ValueError(f"attribute_decorrelation reduction must be 'sum' or 'mean', got {reduction!r}")
        self.branches = None if branches is None else list(branches)
        self.key, self.norm, self.reduction, self.eps = key, norm, reduction, float(eps)
        self.groups = None if groups is None else list(groups)
        self.merge = None if merge is None else {str(k): [str(g) for g in v] for k, v in merge.items()}

    def _groups(self, classes) -> list[Sequence[int]]:
        available = classes.attribute_groups
        if available is None:
            raise ValueError("attribute_decorrelation needs attribute groups; the model's class space has none (attribute_groups=)")
        if self.merge is not None:
            available = self._merged(available)
        if self.groups is None:
            return list(available.values())
        unknown = [name for name in self.groups if name not in available]
        if unknown:
            raise KeyError(f"attribute_decorrelation: no attribute group {unknown[0]!r}; the groups are {list(available)}")
        return [available[name] for name in self.groups]

    def _merged(self, available) -> dict[str, list[int]]:
        """The merged groups: each the class space's named groups' indices, in the order named."""
        merged = {}
        for name, members in self.merge.items():
            unknown = [g for g in members if g not in available]
            if unknown:
                raise KeyError(f"attribute_decorrelation: merge[{name!r}] names group {unknown[0]!r}, which the class space "
                               f"lacks; its groups are {list(available)}")
            merged[name] = [int(i) for g in members for i in available[g]]
        return merged

    def _weights(self, output) -> list[torch.Tensor]:
        if self.source == "attribute_scores":
            names = self.branches or list(output.attribute_scores)
            missing = [n for n in names if n not in output.attribute_scores]
            if missing:
                raise KeyError(f"attribute_decorrelation: no branch {missing[0]!r}; the output has {list(output.attribute_scores)}")
            return [output.attribute_scores[n].transpose(0, 1) for n in names]
        if self.branches is None:
            found = [c[self.key] for c in output.constants.values() if self.key in c]
            if not found:
                raise ValueError(f"attribute_decorrelation: no branch returns constants[{self.key!r}]")
            return found
        for name in self.branches:
            if self.key not in output.constants.get(name, {}):
                raise KeyError(f"attribute_decorrelation: branch {name!r} returns no constants[{self.key!r}]")
        return [output.constants[name][self.key] for name in self.branches]

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        groups = self._groups(classes)
        total = []
        for weights in self._weights(output):
            norms = group_norms(weights, groups, self.norm, self.eps)
            total.append(norms.sum() if self.reduction == "sum" else norms.mean())
        return torch.stack(total).sum()
