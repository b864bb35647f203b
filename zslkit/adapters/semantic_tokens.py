"""``semantic_tokens``: learnt tokens made from the attribute vectors, added to the patches a model selected (SVIP).

From the model's attribute embeddings ``V`` ``(I, E)`` (SVIP: the attributes' word vectors, fixed)
two linear maps make one group's worth of tokens::

    M = p2t( v2p(V)^T )         v2p: E -> D (per attribute), p2t: I -> g*g (per channel);  M is (D, g*g)
    t = M read row-major as one (g*g*D,) vector, i.e. the g*g tokens of a group (zslkit.ops.patch_groups)

(the authors' ``reshape(1, 3072)`` of the ``(768, 4)`` matrix: not ``M^T``). At ``before_block`` of
block 0, for every patch ``n`` with ``context.selection[b, n] = 1`` the token of its place in its
``g x g`` group is added to the patch token: ``x_n <- x_n + t_{s(n)}`` (the authors'
``scatter_add_``: the replaced patches keep their own embedding under the learnt token). Adding
after the position embeddings equals adding before them up to float rounding. Without a
selection (``None``) the tokens pass unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.adapters.tokens import AdapterContext, TokenState
from zslkit.ops.patch_groups import check_grid, ungroup_patches
from zslkit.registry import register

__all__ = ["SemanticTokens"]


@register("adapter", "semantic_tokens")
class SemanticTokens(nn.Module):
    """Adds ``t`` (module docstring) to the selected patches. ``forward(state, context) -> state``.

    Args:
        token_dim: ``D``; ``embedding_dim``: ``E``; ``num_attributes``: ``I`` (given by the model).
        group: ``g``, the side of a patch group.
    """

    def __init__(self, token_dim: int, embedding_dim: int, num_attributes: int, group: int = 2) -> None:
        super().__init__()
        self.group = int(group)
        self.v2p = nn.Linear(embedding_dim, token_dim)
        self.p2t = nn.Linear(num_attributes, self.group * self.group)

    def group_tokens(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(I, E)`` -> ``(g*g*D,)``: ``M = p2t(v2p(V)^T)`` ``(D, g*g)`` read row-major."""
        return self.p2t(self.v2p(embeddings).transpose(0, 1)).reshape(-1)

    def forward(self, state: TokenState, context: AdapterContext) -> TokenState:
        if context.selection is None:
            return state
        patches = state.patches
        if context.selection.shape != patches.shape[:2]:
            raise ValueError(f"semantic_tokens: selection must be (B, N) = {tuple(patches.shape[:2])}, one value per patch "
                             f"token; got {tuple(context.selection.shape)}")
        rows, cols = check_grid(state.grid, self.group)
        tokens = self.group_tokens(context.embeddings.to(patches.dtype))
        laid = ungroup_patches(tokens.expand(1, rows * cols, -1), state.grid, self.group)  # (1, N, D)
        added = patches + context.selection.to(patches.dtype)[..., None] * laid
        return state.replace(tokens=torch.cat([state.prefix, added], dim=1))

    def extra_repr(self) -> str:
        return f"group={self.group}"
