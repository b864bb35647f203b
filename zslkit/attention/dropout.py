"""Dropout whose mask is drawn with ``torch.rand`` (uniform) instead of ``bernoulli_``.

The same distribution as :class:`torch.nn.Dropout` (each element kept with probability
``1 - p``, kept ones scaled by ``1 / (1 - p)``; identity in eval mode or with ``p = 0``),
with a different random stream: on CPU ``torch.rand_like(x) >= p`` is about three times
faster than ``F.dropout``'s Bernoulli draws, and the transformer blocks of TransZero draw
tens of millions of mask elements per CUB-sized step. Backward saves the boolean mask only.
"""

from __future__ import annotations

import torch
from torch import nn

from zslkit.ops.recompute import recomputable, recomputing

__all__ = ["Dropout", "relu_dropout"]


class Dropout(nn.Dropout):
    """Shapes: any -> the same. A subclass of ``nn.Dropout``: ``p`` and ``train()``/``eval()`` as there."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        return _masked(x, self._keep(x), 1.0 / (1.0 - self.p))

    def _keep(self, x: torch.Tensor) -> torch.Tensor:
        """The mask ``rand_like(x) >= p``, marked recomputable from a bit-packed copy (8 elements a byte)."""
        keep = torch.rand_like(x) >= self.p
        return recomputable(keep, _unpack_bits, _pack_bits(keep), keep.shape) if recomputing() else keep

    def recomputable(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)``, marked so that a product saving it keeps ``x`` and the mask instead (:mod:`zslkit.ops.recompute`)."""
        if not self.training or self.p in (0.0, 1.0):
            return self(x)
        keep = self._keep(x)
        scale = 1.0 / (1.0 - self.p)
        return recomputable(_masked(x, keep, scale), _masked, x, keep, scale)


def _pack_bits(keep: torch.Tensor) -> torch.Tensor:
    """``(ceil(numel / 8),)`` uint8 holding the boolean ``keep``: element ``8 i + j`` is bit ``j`` of byte ``i``."""
    flat = keep.reshape(-1)
    if flat.numel() % 8:
        flat = torch.cat([flat, flat.new_zeros(8 - flat.numel() % 8)])
    # each int64 holds 8 bytes of 0/1; the product gathers byte j's bit at bit 56 + j (no carries)
    octets = flat.view(torch.uint8).view(torch.int64)
    return octets.mul(0x0102040810204080).bitwise_right_shift_(56).to(torch.uint8)


def _unpack_bits(packed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The boolean tensor of ``shape`` that :func:`_pack_bits` packed."""
    bits = _BITS.to(packed.device).index_select(0, packed.int())  # (bytes, 8): one row lookup a byte
    return bits.view(-1)[: shape.numel()].view(shape)


# row b: the 8 bits of the byte b, lowest first
_BITS = (torch.arange(256).unsqueeze(-1).bitwise_right_shift(torch.arange(8)).bitwise_and(1)).to(torch.bool)


def _masked(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    # where, not x * keep: the product would cast the mask to a float copy of x's size
    # (the values are the same, but for the sign of dropped zeros: +0 here)
    return torch.where(keep, x, 0.0).mul_(scale)


class _ReluDropout(torch.autograd.Function):
    """``drop(ReLU(x))`` saving only its output: the gradient passes where the output is > 0."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        dropped = torch.rand_like(x) < p  # the uniform draws are freed before the mask is applied
        # in place, and masked_fill_ rather than a product with the mask (that would cast it to float)
        out = x.relu_().masked_fill_(dropped, 0.0).mul_(1.0 / (1.0 - p))
        ctx.mark_dirty(out)
        ctx.scale = 1.0 / (1.0 - p)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (out,) = ctx.saved_tensors
        # ReLU(x) > 0 and kept <=> out > 0 (the scale is positive): the same product as autograd's
        return (grad * ctx.scale).masked_fill_(out <= 0, 0.0), None


def relu_dropout(x: torch.Tensor, dropout: Dropout) -> torch.Tensor:
    """``dropout(torch.relu(x))`` with the same values and random draws; backward saves the output only.

    In training it overwrites ``x``: give it a tensor nothing else needs and that is no view
    (a 2-D product's output; on a view autograd would copy the gradient in backward).
    """
    if not dropout.training or dropout.p == 0.0 or dropout.p == 1.0 or not torch.is_grad_enabled():
        return dropout(torch.relu(x))
    return _ReluDropout.apply(x, dropout.p)
