"""``reembed``: the backbone's own prefix tokens and position embedding, put back on the tokens.

``tokens <- [c ; x_patches] + e``: the prefix tokens ``c`` ``(1, P, D)`` as they entered block 0
(the learnt CLS token, before any block) replace the current prefix tokens, and the position
embedding ``e`` of the input is added again to every token (to the patch tokens only for a model
whose prefix tokens take none). Both come from the backbone through the context
(:class:`~zslkit.adapters.AdapterContext` ``prefix_tokens``, ``position_embedding``). PSVMA does
this after its first semantic-visual module, before the last block (:mod:`zslkit.models.psvma`).
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.adapters.tokens import AdapterContext, TokenState
from zslkit.registry import register

__all__ = ["Reembed"]


@register("adapter", "reembed")
class Reembed(nn.Module):
    """``forward(state, context) -> state`` with ``tokens = [c; patches] + e`` (see the module docstring)."""

    def __init__(self, token_dim: int, embedding_dim: int, num_attributes: int) -> None:
        super().__init__()

    def forward(self, state: TokenState, context: AdapterContext) -> TokenState:
        prefix, position = context.prefix_tokens, context.position_embedding
        if state.num_prefix and (prefix is None or prefix.shape[1] != state.num_prefix):
            raise ValueError(f"reembed: the backbone gave {None if prefix is None else prefix.shape[1]} initial prefix "
                             f"tokens for {state.num_prefix}; it needs a timm_tokens backbone's context")
        batch = state.tokens.shape[0]
        patches = state.patches
        if position is not None and position.shape[1] == patches.shape[1]:  # no_embed_class: the patches only
            patches, position = patches + position, None
        parts = [prefix.expand(batch, -1, -1).to(patches.dtype), patches] if state.num_prefix else [patches]
        tokens = torch.cat(parts, dim=1)
        if position is not None:
            if position.shape[1] != tokens.shape[1]:
                raise ValueError(f"reembed: a position embedding for {position.shape[1]} tokens, the state has "
                                 f"{tokens.shape[1]} (tokens were dropped or merged before it)")
            tokens = tokens + position
        return state.replace(tokens=tokens)
