"""A two-layer MLP whose hidden activations backward recomputes: ``fc2(act(fc1(x)))`` keeping only ``x``.

Autograd keeps, for a timm ``Mlp`` on ``x`` ``(..., D)`` with a ``4 D`` hidden width, ``x``, the
first product's output ``h`` (the activation's backward reads it) and the activation ``act(h)``
(the second product's weight gradient reads it): ``9 D`` floats a token. :func:`mlp_recomputing_hidden`
keeps ``x`` alone (``D``) and reruns the first product and the activation in backward: one more
matrix product (``fc1``'s forward) for ``8 D`` floats a token less. Inside
:func:`zslkit.ops.recompute.recompute_saved` ``x`` itself may be a recipe (a LayerNorm output),
so that nothing of the MLP is kept.

Backward runs the same operations as autograd's on the same inputs (the first product and the
activation rerun and differentiated by autograd; the second product's gradients in the form of
``addmm``'s backward): values and gradients equal the plain MLP's bit for bit.

:func:`gelu_linear_recomputing_activation` is the MLP's second half, ``fc2(gelu(h))``, keeping ``h``
alone (what GELU's backward keeps anyway; ``gelu(h)`` reruns for ``fc2``'s weight gradient, as a
recipe of :func:`~zslkit.ops.recompute.recompute_saved` would). Its backward also holds less at its
peak than autograd's: the rerun ``gelu(h)`` is freed once the weight gradient is made, before the
input gradient is, and GELU's backward writes over that gradient in place. Autograd's holds the
rerun activation, the ``4 D`` gradient of ``fc2``'s input and GELU's ``4 D`` output together: at the
first block backward reaches, where every activation is still held, that is the step's peak.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["gelu_linear_recomputing_activation", "mlp_recomputing_hidden"]


class _HiddenRecomputed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, act, w1, b1, w2, b2):
        ctx.act = act
        ctx.save_for_backward(x, w1, b1, w2)
        return F.linear(act(F.linear(x, w1, b1)), w2, b2)

    @staticmethod
    def backward(ctx, grad):
        x, w1, b1, w2 = ctx.saved_tensors
        needs = ctx.needs_input_grad  # x, act, w1, b1, w2, b2
        leaves = [None if t is None else t.detach().requires_grad_(n) for t, n in zip((x, w1, b1), (needs[0], needs[2], needs[3]))]
        with torch.enable_grad():
            activation = ctx.act(F.linear(*leaves))  # the first product and the activation again
        rows = grad.reshape(-1, grad.shape[-1])
        grad_w2 = rows.t().mm(activation.detach().reshape(-1, activation.shape[-1])) if needs[4] else None
        grad_b2 = rows.sum(0) if needs[5] else None
        wanted = [t for t in leaves if t is not None and t.requires_grad]
        found = iter(torch.autograd.grad(activation, wanted, rows.mm(w2).reshape(activation.shape)) if wanted else ())
        grad_x, grad_w1, grad_b1 = (next(found) if t is not None and t.requires_grad else None for t in leaves)
        return grad_x, None, grad_w1, grad_b1, grad_w2, grad_b2


class _GeluRecomputed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, approximate, w2, b2):
        ctx.approximate = approximate
        ctx.save_for_backward(hidden, w2)
        return F.linear(F.gelu(hidden, approximate=approximate), w2, b2)

    @staticmethod
    def backward(ctx, grad):
        hidden, w2 = ctx.saved_tensors
        needs = ctx.needs_input_grad  # hidden, approximate, w2, b2
        rows = grad.reshape(-1, grad.shape[-1])
        grad_w2 = None
        if needs[2]:  # addmm's backward: (grad^T activation), the activation rerun and freed before the next product
            grad_w2 = rows.t().mm(F.gelu(hidden, approximate=ctx.approximate).reshape(-1, hidden.shape[-1]))
        grad_b2 = rows.sum(0) if needs[3] else None
        grad_hidden = None
        if needs[0]:
            grad_hidden = rows.mm(w2)
            torch.ops.aten.gelu_backward.grad_input(grad_hidden, hidden.reshape(grad_hidden.shape),
                                                    approximate=ctx.approximate, grad_input=grad_hidden)
            grad_hidden = grad_hidden.reshape(hidden.shape)
        return grad_hidden, None, grad_w2, grad_b2


def gelu_linear_recomputing_activation(hidden: torch.Tensor, act: nn.GELU, fc2: nn.Linear) -> torch.Tensor:
    """``fc2(act(hidden))`` for ``hidden`` ``(..., H)`` and a GELU ``act``, keeping only ``hidden`` for backward
    (module docstring); the plain modules when gradients are off."""
    if type(act) is not nn.GELU:
        raise TypeError(f"gelu_linear_recomputing_activation: act must be torch.nn.GELU, got {type(act).__name__}")
    if not torch.is_grad_enabled():
        return fc2(act(hidden))
    return _GeluRecomputed.apply(hidden, act.approximate, fc2.weight, fc2.bias)


def mlp_recomputing_hidden(x: torch.Tensor, fc1: nn.Linear, act: nn.Module, fc2: nn.Linear) -> torch.Tensor:
    """``fc2(act(fc1(x)))`` for ``x`` ``(..., D)``, keeping only ``x`` for backward (module docstring).

    ``act`` must be deterministic and elementwise (GELU, ReLU...): backward reruns it.
    """
    if not torch.is_grad_enabled():
        return fc2(act(fc1(x)))
    return _HiddenRecomputed.apply(x, act, fc1.weight, fc1.bias, fc2.weight, fc2.bias)
