"""``identity``: an adapter that changes nothing, at any place (a placeholder, and the test of the plumbing)."""

from __future__ import annotations

from torch import nn

from zslkit.adapters.tokens import AdapterContext, TokenState
from zslkit.registry import register

__all__ = ["IdentityAdapter"]


@register("adapter", "identity")
class IdentityAdapter(nn.Module):
    """Returns the state it is given. ``forward(state, context) -> state``.

    At ``queries`` or ``attention`` it still makes the backbone compute that block's
    attention itself (see :mod:`zslkit.backbones.adapted_block`).
    """

    def __init__(self, token_dim: int, embedding_dim: int, num_attributes: int) -> None:
        super().__init__()

    def forward(self, state: TokenState, context: AdapterContext) -> TokenState:
        return state
