"""Dropout whose mask comes from 16-bit lanes of random 64-bit words.

The distribution of :class:`torch.nn.Dropout` with ``p`` on a 1/65536 grid: with
``T = round(65536 p)``, each element is kept with probability ``1 - T / 65536`` and kept
ones are scaled by ``65536 / (65536 - T)``, so the expectation is the input exactly
(``p = 0.4`` keeps with probability 0.6000061; identity in eval mode or with ``p = 0``).
The random stream differs from torch's: one 64-bit draw of the generator gives four mask
elements. On 2 CPU cores that is about three times faster than ``torch.rand_like(x) >= p``
and seven times faster than ``F.dropout``'s Bernoulli draws; the transformer blocks of
TransZero draw tens of millions of mask elements per CUB-sized step.

Under ``torch.compile`` the mask is ``torch.rand_like(x) >= T / 65536`` (the same keep
probability; compiled code draws from its own random stream in any case).

Backward saves the boolean mask only, and inside :func:`zslkit.ops.recompute.recompute_saved`
that mask is kept bit-packed (8 elements a byte).

For checking only, :func:`torch_dropout_draws` makes every mask the one ``torch.nn.Dropout``
draws on the CPU: ``torch.empty(shape).bernoulli_(1 - p)`` from the default generator, the exact
``p`` and scale ``1 / (1 - p)``, and -- for a module marked ``token_first`` -- drawn in the
``(token, batch, ...)`` layout of ``nn.TransformerDecoderLayer`` and transposed to zslkit's
``(batch, token, ...)``. With it, a model whose modules draw in the authors' order reproduces
the authors' training step (``docs/transzero.md``, "Training mode").
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator

import torch
from torch import nn

from zslkit.ops.recompute import recomputable, recomputing

__all__ = ["Dropout", "keep_mask", "relu_dropout", "torch_dropout_draws"]

_LANES = 65536  # values of one 16-bit lane
_TORCH_DRAWS = contextvars.ContextVar("torch_dropout_draws", default=False)


@contextlib.contextmanager
def torch_dropout_draws() -> Iterator[None]:
    """Checking only: inside, every active dropout draws its mask as ``torch.nn.Dropout`` on the
    CPU does (``bernoulli_(1 - p)`` on a tensor of the reference's shape, default generator, the
    exact ``p``). Slower; not for training."""
    token = _TORCH_DRAWS.set(True)
    try:
        yield
    finally:
        _TORCH_DRAWS.reset(token)


def _torch_keep(x: torch.Tensor, p: float, token_first: bool) -> tuple[torch.Tensor, float]:
    """``nn.Dropout``'s CPU draw for ``x`` (of its ``(token, batch, ...)`` transpose if ``token_first``)."""
    if not 0 < p < 1:
        raise ValueError(f"dropout p={p}: give 0 < p < 1")
    shape = (x.shape[1], x.shape[0], *x.shape[2:]) if token_first else x.shape
    keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1 - p).ne_(0).to(torch.bool)
    return (keep.transpose(0, 1).contiguous() if token_first else keep), 1.0 / (1.0 - p)


def keep_mask(x: torch.Tensor, p: float, token_first: bool = False) -> tuple[torch.Tensor, float]:
    """``(keep, scale)``: a boolean mask shaped like ``x``, each element ``True`` with
    probability ``1 - T / 65536`` (``T = round(65536 p)``, ``0 < p < 1``), and the scale
    ``65536 / (65536 - T)`` that makes ``x * keep * scale`` unbiased.

    Inside :func:`torch_dropout_draws`: ``nn.Dropout``'s mask and scale ``1 / (1 - p)``
    (``token_first``: drawn for ``x`` with its first two axes swapped).
    """
    if _TORCH_DRAWS.get():
        return _torch_keep(x, p, token_first)
    threshold = round(p * _LANES)
    if not 0 < threshold < _LANES:
        raise ValueError(f"dropout p={p} rounds to {threshold}/65536: give 0 < p < 1 (p = 0 and p = 1 are handled by Dropout)")
    scale = _LANES / (_LANES - threshold)
    if torch.compiler.is_compiling():
        # Dynamo cannot trace the in-place random_ (a graph break per mask), and a compiled graph
        # draws from its own generator anyway; u >= T / 65536 has the same keep probability
        return torch.rand_like(x) >= threshold / _LANES, scale
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), None)
    # a lane read as int16 is uniform on [-32768, 32767]: keep the 65536 - T values at or above T - 32768
    lanes = words.view(torch.int16)[:n].view(x.shape)
    return lanes >= threshold - _LANES // 2, scale


class Dropout(nn.Dropout):
    """Shapes: any -> the same. A subclass of ``nn.Dropout``: ``p`` and ``train()``/``eval()`` as there.

    ``token_first``: the reference implementation holds this tensor as ``(token, batch, ...)``
    (``nn.TransformerDecoderLayer``); only :func:`torch_dropout_draws` reads it.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, token_first: bool = False):
        super().__init__(p, inplace)
        self.token_first = bool(token_first)

    def _active(self) -> bool:
        return self.training and 0 < round(self.p * _LANES) < _LANES

    def _keep(self, x: torch.Tensor) -> tuple[torch.Tensor, float, torch.Tensor | None]:
        """:func:`keep_mask` and, when recomputing, its bit-packed copy (the mask is then marked
        recomputable from it, so a product saving the mask keeps the copy instead)."""
        keep, scale = keep_mask(x, self.p, self.token_first)
        if not recomputing():
            return keep, scale, None
        packed = _pack_bits(keep)
        return recomputable(keep, _unpack_bits, packed, keep.shape), scale, packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and round(self.p * _LANES) >= _LANES:
            return torch.zeros_like(x)
        if not self._active():
            return x
        keep, scale, _ = self._keep(x)
        return _masked(x, keep, scale)

    def recomputable(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)``, marked so that a product saving it keeps ``x`` and the packed mask instead (:mod:`zslkit.ops.recompute`)."""
        if not self._active():
            return self(x)
        keep, scale, packed = self._keep(x)
        out = _masked(x, keep, scale)
        # the recipe holds the packed copy, not the boolean mask: that one is freed after the forward
        return out if packed is None else recomputable(out, _masked_packed, x, packed, keep.shape, scale)


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
    bits = _bits_on(packed.device).index_select(0, packed.int())  # (bytes, 8): one row lookup a byte
    return bits.view(-1)[: shape.numel()].view(shape)


@functools.lru_cache
def _bits_on(device: torch.device) -> torch.Tensor:
    """``(256, 8)`` bool: row ``b`` holds the 8 bits of the byte ``b``, lowest first (one copy per device)."""
    return torch.arange(256, device=device).unsqueeze(-1).bitwise_right_shift(torch.arange(8, device=device)).bitwise_and(1).to(torch.bool)


def _masked_packed(x: torch.Tensor, packed: torch.Tensor, shape: torch.Size, scale: float) -> torch.Tensor:
    return _masked(x, _unpack_bits(packed, shape), scale)


def _masked(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    # autograd's product saves the boolean mask (not a float copy): the gradient is grad * keep * scale
    return (x * keep).mul_(scale)


class _ReluDropout(torch.autograd.Function):
    """``drop(ReLU(x))`` saving only its output: the gradient passes where the output is > 0."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float, shape: torch.Size, token_first: bool) -> torch.Tensor:
        keep, scale = keep_mask(x.view(shape), p, token_first)
        keep = keep.reshape(x.shape)
        out = x.relu_().mul_(keep).mul_(scale)  # in place: x is a product's output nothing else reads
        del keep
        ctx.mark_dirty(out)
        ctx.scale = scale
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (out,) = ctx.saved_tensors
        # ReLU(x) > 0 and kept <=> out > 0 (the scale is positive): ReLU's own backward on the output
        return torch.ops.aten.threshold_backward(grad, out, 0.0).mul_(ctx.scale), None, None, None


def relu_dropout(x: torch.Tensor, dropout: Dropout, shape: torch.Size | None = None) -> torch.Tensor:
    """``dropout(torch.relu(x))`` with the same values and random draws; backward saves the output only.

    In training it overwrites ``x``: give it a tensor nothing else needs and that is no view
    (a 2-D product's output; on a view autograd would copy the gradient in backward).
    ``shape``: the shape the mask is drawn for (``x`` viewed so, e.g. tokens before flattening).
    """
    shape = x.shape if shape is None else torch.Size(shape)
    if not dropout._active() or not torch.is_grad_enabled():
        return dropout(torch.relu(x).view(shape)).view(x.shape)
    return _ReluDropout.apply(x, dropout.p, shape, dropout.token_first)
