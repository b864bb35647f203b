"""``keep_attended``: keep the patch tokens the prefix token attends to most (token reorganisation).

At the place ``attention`` of block ``k``, with that block's attention weights
``a`` ``(B, heads, T, T)``: the attention of prefix token ``cls_index`` to patch ``n``,
averaged over heads, ``s_n = mean_h a[h, cls_index, P + n]``; the ``ceil(keep * N)`` patch
tokens of largest ``s`` stay, in their input order. With ``fuse=True`` the others are merged
into one token appended after them, ``sum_n s_n x_n / sum_n s_n`` over the dropped ``n``
(``normalize_fused=False``: ``sum_n s_n x_n``, as EViT's and ZSLViT's code fuse them); its
``source`` is ``-1``: it stands for no single patch. As in EViT (Liang et al., ICLR 2022).

It reads only the prefix rows of the attention (``attention_rows = "prefix"``), so the backbone
computes those rows alone and keeps its fused attention for the block's output.
"""

from __future__ import annotations

import math

import torch
from einops import reduce
from torch import nn

from zslkit.adapters.tokens import AdapterContext, TokenState
from zslkit.registry import register

__all__ = ["KeepAttended"]


@register("adapter", "keep_attended")
class KeepAttended(nn.Module):
    """Keeps a fraction ``keep`` of the patch tokens by prefix attention; ``fuse``: merge the rest into one token
    (weighted by their normalised attention, or ``normalize_fused=False``: by the attention itself)."""

    #: reads the prefix rows of the attention weights only (see :mod:`zslkit.backbones.adapted_block`)
    attention_rows = "prefix"

    def __init__(self, token_dim: int, embedding_dim: int, num_attributes: int, keep: float = 0.5, fuse: bool = True,
                 cls_index: int = 0, normalize_fused: bool = True) -> None:
        super().__init__()
        if not 0 < keep <= 1:
            raise ValueError(f"keep_attended: keep must be a fraction in (0, 1], got {keep}")
        self.keep, self.fuse, self.cls_index = float(keep), bool(fuse), int(cls_index)
        self.normalize_fused = bool(normalize_fused)

    def forward(self, state: TokenState, context: AdapterContext) -> TokenState:
        if state.attention is None:
            raise ValueError("keep_attended runs at the place 'attention' (it reads the block's attention weights)")
        prefix = state.num_prefix
        scores = reduce(state.attention[:, :, self.cls_index, prefix:], "batch head patch -> batch patch", "mean")
        patches, sources = state.patches, state.sources()
        count = math.ceil(self.keep * patches.shape[1])
        chosen = scores.topk(count, dim=1).indices.sort(dim=1).values  # (B, n) kept, in input order
        kept = patches.gather(1, chosen[..., None].expand(-1, -1, patches.shape[2]))
        tokens, source = [state.prefix, kept], [sources.gather(1, chosen)]
        if self.fuse and count < patches.shape[1]:
            dropped = torch.ones_like(scores, dtype=torch.bool).scatter(1, chosen, False)
            weights = scores * dropped
            if self.normalize_fused:
                weights = weights / weights.sum(dim=1, keepdim=True)
            tokens.append(torch.einsum("bn,bnd->bd", weights, patches)[:, None])
            source.append(torch.full_like(source[0][:, :1], -1))
        return state.replace(tokens=torch.cat(tokens, dim=1), source=torch.cat(source, dim=1))

    def extra_repr(self) -> str:
        return f"keep={self.keep}, fuse={self.fuse}, cls_index={self.cls_index}, normalize_fused={self.normalize_fused}"
