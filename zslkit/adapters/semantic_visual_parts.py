"""The blocks of the dual semantic-visual module (:mod:`zslkit.adapters.dual_semantic_visual`), one small class each.

* :class:`RectifiedAttention`: single-head attention with pre-normalised inputs and rectified logits,
  ``q = LN_q(x_q) W_q + b_q`` (and ``k``, ``v`` alike), ``s = relu(q k^T) / sqrt(D)``,
  ``out = softmax_keys(s) v W_o + b_o``; returns ``(s, out)``: the logits themselves are what
  PSVMA reads as the attention of each query to each key.
* :class:`GroupGate`: ``x * sigmoid(W_2 gelu(W_1 max_D(x))) + x`` over ``(B, I, D)`` attribute tokens,
  the hidden width ``I // groups`` (one unit per attribute group).
* :class:`TokenMixer`: ``x + MLP_N(LN(x))``, an MLP across the ``N`` patch tokens (channels fixed),
  ``N -> h -> h -> N`` with GELU.
* :class:`NormMLP`: ``W_2 gelu(W_1 LN(x))``, Xavier-uniform weights.

Inside :func:`zslkit.ops.recompute.recompute_saved` the LayerNorm outputs and the GELU outputs that a
product reads are marked recomputable (from the norm's input, the GELU's input: both kept for backward
anyway), as in the ViT's blocks: backward reruns them instead of keeping them, with the same bits.
"""

from __future__ import annotations

import math

import torch
from einops import einsum, rearrange, reduce
from torch import nn

from zslkit.ops.recompute import recomputed

__all__ = ["GroupGate", "NormMLP", "RectifiedAttention", "TokenMixer"]


class RectifiedAttention(nn.Module):
    """``forward(queries (B, Q, D), keys (B, K, D), values (B, K, D))`` -> ``(logits (B, Q, K), out (B, Q, D))``."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm_q, self.norm_k, self.norm_v = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.scale = dim ** -0.5

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = (self.to_q(recomputed(self.norm_q, queries)), self.to_k(recomputed(self.norm_k, keys)),
                   self.to_v(recomputed(self.norm_v, values)))
        logits = einsum(q, k, "b q d, b k d -> b q k").relu() * self.scale
        out = einsum(logits.softmax(dim=-1), v, "b q k, b k d -> b q d")
        return logits, self.proj(out)


class GroupGate(nn.Module):
    """``forward(x (B, I, D))`` -> ``(B, I, D)``: each attribute token rescaled by ``1 + gate_i`` (see the module)."""

    def __init__(self, num_attributes: int, groups: int):
        super().__init__()
        if not 1 <= groups <= num_attributes:
            raise ValueError(f"group gate: groups must be in [1, {num_attributes}] (the attribute groups), got {groups}")
        hidden = num_attributes // groups
        self.fc1, self.fc2, self.act = nn.Linear(num_attributes, hidden), nn.Linear(hidden, num_attributes), nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = reduce(x, "b i d -> b i", "max")
        gate = self.fc2(self.act(self.fc1(pooled))).sigmoid()
        return x * gate[..., None] + x


class TokenMixer(nn.Module):
    """``forward(x (B, N, D))`` -> ``(B, N, D)``: ``x + MLP_N(LN(x))`` across the ``num_patches`` tokens."""

    def __init__(self, dim: int, num_patches: int, hidden: int = 512):
        super().__init__()
        self.num_patches = int(num_patches)
        self.norm = nn.LayerNorm(dim)
        self.net = nn.Sequential(nn.Linear(num_patches, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, num_patches))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.num_patches:
            raise ValueError(f"token mixer: built for {self.num_patches} patch tokens, got {x.shape[1]}; set the "
                             "adapter's num_patches to the patch grid of the input (or token_mixer=False)")
        net = self.net
        hidden = net[0](recomputed(self._channels_first, x))
        hidden = net[2](recomputed(net[1], hidden))
        mixed = net[4](recomputed(net[3], hidden))
        return x + rearrange(mixed, "b d n -> b n d")

    def _channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """``LN(x)`` as ``(B, D, N)``, contiguous: the first product's input (what it keeps for backward)."""
        return rearrange(self.norm(x), "b n d -> b d n").contiguous()


class NormMLP(nn.Module):
    """``forward(x (..., D))`` -> ``(..., D)``: ``fc2(gelu(fc1(LN(x))))``, hidden width ``hidden``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm, self.fc1, self.act, self.fc2 = nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        for layer in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.uniform_(layer.bias, -1 / math.sqrt(layer.in_features), 1 / math.sqrt(layer.in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(recomputed(self.act, self.fc1(recomputed(self.norm, x))))

