"""``group_head``: SVIP's head, a linear map from each ``g x g`` patch group to attribute scores, pooled over groups.

For patch tokens ``f`` ``(B, D, N)`` on the grid ``(H, W)``, grouped into ``x_{b,G}`` ``(g*g*D,)``
(:mod:`zslkit.ops.patch_groups`), every group scores the attributes ``s_{b,G} = W x_{b,G} + c``
``(I,)``, and the attribute scores pool them over a set ``S_b`` of groups::

    psi_b = pool_{G in S_b} s_{b,G}            (mean, or max)

``S_b``: the groups given as ``keep_index`` (SVIP's source branch: the rollout's top groups);
else in training the ``keep`` groups most similar to the pooled group, ``x_{b,G} . pool_G x_{b,G}``
(SVIP's target branch); else (evaluation) every group. In evaluation the maps ``(B, I, N)`` are
``s_{b,G}`` on each patch of group ``G``; in training there are none (``None``).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from zslkit.attention.base import AttentionOutput
from zslkit.ops.patch_groups import group_patches, ungroup_patches
from zslkit.registry import register

__all__ = ["GroupHead"]


@register("attention", "group_head")
class GroupHead(nn.Module):
    """Group-wise linear attribute head (module docstring).

    Args:
        feature_dim: ``D``; ``embedding_dim``, ``num_attributes``: given by the model (``I`` used).
        group: ``g``. keep: ``|S_b|`` in training. pool: ``"mean"`` (the SVIP scripts) or ``"max"``.
    """

    def __init__(self, feature_dim: int, embedding_dim: int, num_attributes: int, group: int = 2, keep: int = 40,
                 pool: str = "mean") -> None:
        super().__init__()
        if pool not in ("mean", "max"):
            raise ValueError(f"group_head pool must be 'mean' or 'max', got {pool!r}")
        self.group, self.keep, self.pool = int(group), int(keep), pool
        self.head = nn.Linear(self.group * self.group * feature_dim, num_attributes)

    def _pool(self, values: torch.Tensor) -> torch.Tensor:
        return values.mean(dim=1) if self.pool == "mean" else values.amax(dim=1)

    def forward(self, f: torch.Tensor, embeddings: torch.Tensor, grid: tuple[int, int] | None = None,
                keep_index: torch.Tensor | None = None) -> AttentionOutput:
        if grid is None:
            raise ValueError("group_head needs the patch grid: give the patch tokens as (B, D, H, W)")
        groups = group_patches(rearrange(f, "b d n -> b n d"), grid, self.group)  # (B, G, g*g*D)
        if keep_index is None and self.training:
            similarity = torch.einsum("bgc,bc->bg", groups, self._pool(groups))
            keep_index = similarity.topk(self.keep, dim=1).indices.sort(dim=1).values
        if keep_index is None:  # evaluation: every group; its per-group scores are the maps
            per_group = self.head(groups)  # (B, G, I)
            return AttentionOutput(scores=self._pool(per_group), maps=self._maps(per_group.detach(), grid))
        chosen = groups.gather(1, keep_index[..., None].expand(-1, -1, groups.shape[2]))
        return AttentionOutput(scores=self._pool(self.head(chosen)), maps=None)

    def _maps(self, per_group: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``(B, G, I)`` -> ``(B, I, N)``: each group's scores on its ``g x g`` patches."""
        spread = rearrange(per_group, "b g i -> b g 1 i").expand(-1, -1, self.group ** 2, -1).flatten(2)
        return rearrange(ungroup_patches(spread, grid, self.group), "b n i -> b i n")

    def extra_repr(self) -> str:
        return f"group={self.group}, keep={self.keep}, pool={self.pool!r}"
