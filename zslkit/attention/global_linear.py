"""``global_linear``: attribute scores of the global (CLS) token through one linear map (ZSLViT's head).

With the global token ``g`` ``(B, D)`` of a model that owns a token backbone (its CLS token after
the final norm) and ``W`` ``(I, D)``, ``b`` ``(I,)``:

* ``psi_b = W g_b + b`` (``bias=False``: no ``b``);
* ``maps_{b,i,n} = W_i . f_{b,:,n} + b_i``: the same map on every patch token ``f_{b,:,n}``
  (``maps=False``: none), what ``viz attention`` and the localisation metrics read; the scores do not
  depend on them.

``W`` and ``b`` start as PyTorch's ``nn.Linear`` (the authors' ``mlp_g``). Only models that hand
their branches a global token (:class:`~zslkit.models.TokenAttentionModel`) can use it.
"""

from __future__ import annotations

import torch
from einops import einsum
from torch import nn

from zslkit.attention.base import AttentionOutput
from zslkit.registry import register

__all__ = ["GlobalLinear"]


@register("attention", "global_linear")
class GlobalLinear(nn.Module):
    """``psi = W g + b`` on the global token ``g``; maps: the same map on each patch token.

    Shapes: ``forward(features (B, D, R), embeddings (I, D_e), global_token (B, D))`` ->
    :class:`AttentionOutput` with ``scores`` ``(B, I)`` and ``maps`` ``(B, I, R)`` (or ``None``).
    """

    def __init__(self, feature_dim: int, embedding_dim: int | None = None, num_attributes: int | None = None,
                 bias: bool = True, maps: bool = True) -> None:
        super().__init__()
        if num_attributes is None:
            raise ValueError("global_linear needs num_attributes: W has one row per attribute")
        self.linear = nn.Linear(feature_dim, num_attributes, bias=bias)
        self.maps = bool(maps)

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor,
                global_token: torch.Tensor | None = None) -> AttentionOutput:
        if global_token is None:
            raise ValueError("global_linear scores the global (CLS) token: use it in a model that owns a ViT backbone "
                             "(TokenAttentionModel), which hands it to its branches")
        maps = None
        if self.maps:
            maps = einsum(self.linear.weight, features, "attribute dim, batch dim region -> batch attribute region")
            maps = maps if self.linear.bias is None else maps + self.linear.bias[:, None]
        return AttentionOutput(scores=self.linear(global_token), maps=maps)

    def extra_repr(self) -> str:
        return f"bias={self.linear.bias is not None}, maps={self.maps}"
