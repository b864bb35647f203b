"""SVIP's patch selector: a classifier of patch groups, trained on targets from the attention rollout.

The classifier reads each ``g x g`` group of patch *embeddings* (the patch projection, before
position embeddings and blocks; :mod:`zslkit.ops.patch_groups`) and gives the probability that
the group is unrelated to the attributes::

    p_{b,G} = sigmoid( w2 . relu(W1 x_{b,G} + c1) + c2 )        x_{b,G}: (g*g*D,)

Its target (:func:`rollout_targets`) comes from the full image's forward: the CLS row of the
attention rollout ``R[b, 0, P:]`` (:mod:`zslkit.ops.attention_rollout`) pooled per group
(:func:`~zslkit.ops.patch_groups.group_scores`); the ``keep`` groups of largest score are
related (target 0), all others unrelated (target 1). At inference the ``keep`` groups of lowest
``p`` are kept (:meth:`PatchSelector.keep_by_probability`).
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.ops.patch_groups import check_grid, group_patches, group_scores, ungroup_patches

__all__ = ["PatchSelector", "rollout_targets", "selection_mask"]


def rollout_targets(rollout: torch.Tensor, num_prefix: int, grid: tuple[int, int], group: int, keep: int,
                    grouping: str = "grid") -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept (B, keep) group indices, ascending; targets (B, G): 0 kept, 1 the others)`` from ``R`` ``(B, T, T)``."""
    scores = group_scores(rollout[:, 0, num_prefix:], grid, group, grouping)
    kept = scores.topk(keep, dim=1).indices.sort(dim=1).values
    targets = torch.ones_like(scores).scatter(1, kept, 0.0)
    return kept, targets


def selection_mask(kept: torch.Tensor, grid: tuple[int, int], group: int) -> torch.Tensor:
    """``(B, N)`` per patch: 1 where its group is not among ``kept`` ``(B, keep)``, else 0."""
    rows, cols = check_grid(grid, group)
    unkept = torch.ones(kept.shape[0], rows * cols, device=kept.device).scatter(1, kept, 0.0)
    return ungroup_patches(unkept[..., None].expand(-1, -1, group * group), grid, group)[..., 0]


class PatchSelector(nn.Module):
    """The group classifier (module docstring): ``forward(patches (B, N, D), grid) -> p (B, G)``.

    Args:
        token_dim: ``D``. group: ``g``. hidden: width of its hidden layer (the authors' 512).
        keep: the number of groups kept (the authors' ``--keep_token``: 40 of 49 on CUB, 45 on SUN and AwA2).
        grouping: how rollout scores are pooled per group for the targets (:data:`~zslkit.ops.patch_groups.GROUPINGS`).
    """

    def __init__(self, token_dim: int, group: int = 2, hidden: int = 512, keep: int = 40, grouping: str = "grid") -> None:
        super().__init__()
        if keep < 1:
            raise ValueError(f"PatchSelector: keep must be a positive number of patch groups, got {keep}")
        self.group, self.keep, self.grouping = int(group), int(keep), grouping
        self.mlp = nn.Sequential(nn.Linear(self.group * self.group * token_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def check_groups(self, grid: tuple[int, int]) -> int:
        """The number of groups ``G`` on ``grid``; an error when ``keep`` exceeds it."""
        rows, cols = check_grid(grid, self.group)
        if self.keep > rows * cols:
            raise ValueError(f"PatchSelector: keep={self.keep} groups, but a {grid[0]} x {grid[1]} patch grid has "
                             f"{rows * cols} groups of {self.group} x {self.group}; lower keep or raise the image size")
        return rows * cols

    def forward(self, patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        self.check_groups(grid)
        return torch.sigmoid(self.mlp(group_patches(patches, grid, self.group)).squeeze(-1))

    def keep_by_probability(self, probabilities: torch.Tensor) -> torch.Tensor:
        """``(B, keep)`` the groups of lowest ``p`` (least likely unrelated), ascending."""
        return probabilities.topk(self.keep, dim=1, largest=False).indices.sort(dim=1).values

    def extra_repr(self) -> str:
        return f"group={self.group}, keep={self.keep}, grouping={self.grouping!r}"
