"""Patches in groups of ``g x g`` neighbours (SVIP's 2 x 2 groups), and back.

For patch tokens on a grid ``(H, W)`` (row-major, ``H`` and ``W`` multiples of ``g``) the
groups are the ``(H/g) x (W/g)`` blocks of ``g x g`` patches, numbered row-major; a group's
vector is its patches' vectors concatenated, row ``i`` then column ``j`` of the block:
``group[(a, b)] = [x(a g + i, b g + j) for i in range(g) for j in range(g)]``.
"""

from __future__ import annotations

import torch
from einops import rearrange, reduce

__all__ = ["GROUPINGS", "check_grid", "group_patches", "group_scores", "ungroup_patches"]

#: How :func:`group_scores` pools per-patch scores into group scores: ``grid`` over each group's
#: ``g x g`` block; ``raster`` over ``g*g`` consecutive patches in row-major order (the SVIP code's
#: ``view(B, 1, 7, 7, 4).mean(-1)`` of the rollout row: runs of four along the rows, not the 2 x 2 blocks).
GROUPINGS: tuple[str, ...] = ("grid", "raster")


def check_grid(grid: tuple[int, int], group: int) -> tuple[int, int]:
    """``(H/g, W/g)``; a clear error when ``g`` does not divide the grid."""
    height, width = grid
    if group < 1 or height % group or width % group:
        raise ValueError(f"patch groups of {group} x {group} need a patch grid divisible by {group}; got {height} x {width} "
                         "(choose an image size that gives one, or another group size)")
    return height // group, width // group


def group_patches(patches: torch.Tensor, grid: tuple[int, int], group: int) -> torch.Tensor:
    """``(B, H*W, D)`` row-major patches -> ``(B, G, g*g*D)`` groups (see the module docstring)."""
    rows, cols = check_grid(grid, group)
    return rearrange(patches, "b (gh i gw j) d -> b (gh gw) (i j d)", gh=rows, i=group, gw=cols, j=group)


def ungroup_patches(groups: torch.Tensor, grid: tuple[int, int], group: int) -> torch.Tensor:
    """Inverse of :func:`group_patches`: ``(B, G, g*g*D)`` -> ``(B, H*W, D)``."""
    rows, cols = check_grid(grid, group)
    return rearrange(groups, "b (gh gw) (i j d) -> b (gh i gw j) d", gh=rows, gw=cols, i=group, j=group)


def group_scores(scores: torch.Tensor, grid: tuple[int, int], group: int, grouping: str = "grid") -> torch.Tensor:
    """``(B, H*W)`` per-patch scores -> ``(B, G)`` their mean per group, by ``grouping`` (:data:`GROUPINGS`)."""
    rows, cols = check_grid(grid, group)
    if grouping == "grid":
        return reduce(scores, "b (gh i gw j) -> b (gh gw)", "mean", gh=rows, i=group, gw=cols, j=group)
    if grouping == "raster":
        return reduce(scores, "b (g n) -> b g", "mean", n=group * group)
    raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
