"""Multi-head scaled dot-product attention whose queries or keys may be shared by the whole batch.

With queries ``x`` ``(..., Q, d)``, keys/values ``y`` ``(..., K, d)`` and ``h`` heads of
width ``d / h``:

* ``q = x W_q + b_q``, ``k = y W_k + b_k``, ``v = y W_v + b_v``, split into heads;
* logits ``l_{n,q,k} = q_{n,q} . k_{n,k} / sqrt(d / h) - bias_{q,k}`` (``bias`` optional,
  e.g. TransZero's relative-geometry term, the same for every head);
* weights ``a = softmax_k(l)``, dropout on ``a``; ``out = concat_n(a_n v_n) W_o + b_o``.

Initialisation (``init``), as the reference modules of TransZero's released code do it:
``"torch_mha"`` (default) is ``nn.MultiheadAttention``'s -- ``W_q, W_k, W_v`` from one Xavier-uniform
draw over the packed ``(3d, d)`` matrix, ``W_o`` as ``nn.Linear``, every bias zero; ``"xavier"`` is
the geometry encoder's -- each of the four ``(d, d)`` weights Xavier-uniform, every bias zero.

The leading ``...`` axes broadcast: attribute queries ``(I, d)`` against encoded regions
``(B, R, d)`` project the queries once, not once per image. ``forward`` also returns
the weights averaged over the heads (before dropout) -- the attention maps.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from zslkit.attention.dropout import Dropout

__all__ = ["ATTENTION_INITS", "MultiHeadAttention"]

#: The ``init`` schemes of :class:`MultiHeadAttention`.
ATTENTION_INITS: tuple[str, ...] = ("torch_mha", "xavier")


class MultiHeadAttention(nn.Module):
    """Shapes: ``forward(queries (..., Q, d), keys (..., K, d), values=keys, bias (Q, K) | None)``
    -> ``out (..., Q, d)``, ``maps (..., Q, K)`` (heads averaged), ``...`` broadcast."""

    def __init__(self, dim: int, heads: int = 1, dropout: float = 0.0, init: str = "torch_mha"):
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"heads must divide the width: dim={dim}, heads={heads}")
        if init not in ATTENTION_INITS:
            raise ValueError(f"init must be one of {ATTENTION_INITS}, got {init!r}")
        self.heads = heads
        self.to_q, self.to_k, self.to_v, self.to_out = (nn.Linear(dim, dim) for _ in range(4))
        self.dropout = Dropout(dropout)
        self._initialise(init)

    @torch.no_grad()
    def _initialise(self, init: str) -> None:
        projections = (self.to_q, self.to_k, self.to_v)
        if init == "xavier":
            for linear in (*projections, self.to_out):
                nn.init.xavier_uniform_(linear.weight)
        else:  # one draw over the packed (3d, d) in-projection, as nn.MultiheadAttention
            packed = nn.init.xavier_uniform_(torch.empty(3 * self.to_q.out_features, self.to_q.in_features))
            for linear, rows in zip(projections, packed.chunk(3)):
                linear.weight.copy_(rows)
        for linear in (*projections, self.to_out):
            nn.init.zeros_(linear.bias)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        values = keys if values is None else values
        split = "... token (head width) -> ... head token width"
        q = rearrange(self.to_q(queries), split, head=self.heads)
        k = rearrange(self.to_k(keys), split, head=self.heads)
        v = rearrange(self.to_v(values), split, head=self.heads)
        # (..., head, Q, width) @ (..., head, width, K): the leading axes broadcast
        logits = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        if bias is not None:
            logits = logits - bias
        weights = logits.softmax(dim=-1)
        # the product saves the dropped weights as a recipe from the softmax output and the mask
        out = torch.matmul(self.dropout.recomputable(weights), v)
        out = self.to_out(rearrange(out, "... head token width -> ... token (head width)"))
        # one head: the weights themselves (a view; the mean of one value is that value)
        return out, weights.squeeze(-3) if self.heads == 1 else weights.mean(dim=-3)
