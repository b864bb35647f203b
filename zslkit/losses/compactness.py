"""``compactness``: attention maps concentrated around their peak (CPT of APN and GEM-ZSL).

For a branch's maps ``M`` ``(B, I, R)`` over an ``(H, W)`` grid (region ``r`` at row
``r // W``, column ``r % W``), with ``p_{b,i} = argmax_r M_{b,i,r}`` the peak:

* ``d_{b,i,r} = (row_r - row_p)^2 + (col_r - col_p)^2``  (squared distance to the peak)
* ``L = reduce_{b,i,r} act(M_{b,i,r}) d_{b,i,r}``

``act`` is the identity (``activation="none"``, GEM-ZSL: its maps are softmax attention)
or the sigmoid (``"sigmoid"``, APN: its maps are raw prototype responses); ``reduce`` is
the mean (``reduction="mean"``, GEM-ZSL) or the sum (``"sum"``, APN) over images,
attributes and regions. Summed over the selected branches (default: every branch with
maps). The peak is not differentiated through (an index).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from zslkit.losses.base import select_branches
from zslkit.registry import register

__all__ = ["Compactness", "peak_distances"]


def peak_distances(maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(B, I, R)`` squared grid distance of every region to the map's peak (``R = H * W``)."""
    height, width = grid
    if height * width != maps.shape[2]:
        raise ValueError(f"compactness: grid {grid} does not hold the maps' {maps.shape[2]} regions")
    regions = torch.arange(maps.shape[2], device=maps.device)
    rows, cols = regions // width, regions % width
    peak = maps.argmax(dim=2, keepdim=True)  # (B, I, 1)
    return ((rows - peak // width).square() + (cols - peak % width).square()).to(maps.dtype)


@register("loss", "compactness")
class Compactness(nn.Module):
    """CPT on the maps of the selected branches; needs the maps and the region grid.

    Args:
        branches: branch names; ``None``: every branch that returns maps.
        activation: ``"none"`` or ``"sigmoid"``, applied to the maps.
        reduction: ``"mean"`` or ``"sum"``.
    """

    needs_maps: ClassVar[bool] = True
    needs_grid: ClassVar[bool] = True

    def __init__(self, branches: Sequence[str] | None = None, activation: str = "none", reduction: str = "mean"):
        super().__init__()
        if activation not in ("none", "sigmoid"):
            raise ValueError(f"compactness activation must be 'none' or 'sigmoid', got {activation!r}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"compactness reduction must be 'mean' or 'sum', got {reduction!r}")
        self.branches = None if branches is None else list(branches)
        self.activation, self.reduction = activation, reduction

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        if output.grid is None:
            raise ValueError("compactness needs the region grid: give the features as (B, C, H, W), not (B, C, R)")
        maps = {name: m for name, m in output.maps.items() if m is not None}
        selected = select_branches(maps, self.branches, "compactness")
        if not selected:
            raise ValueError("compactness: no branch returns attention maps")
        total = []
        for m in selected:
            weighted = (torch.sigmoid(m) if self.activation == "sigmoid" else m) * peak_distances(m, output.grid)
            total.append(weighted.sum() if self.reduction == "sum" else weighted.mean())
        return torch.stack(total).sum()
