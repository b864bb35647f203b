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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["mlp_recomputing_hidden"]


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
        grad_w2 = activation.detach().reshape(-1, activation.shape[-1]).t().mm(rows).t() if needs[4] else None
        grad_b2 = rows.sum(0) if needs[5] else None
        wanted = [t for t in leaves if t is not None and t.requires_grad]
        found = iter(torch.autograd.grad(activation, wanted, rows.mm(w2).reshape(activation.shape)) if wanted else ())
        grad_x, grad_w1, grad_b1 = (next(found) if t is not None and t.requires_grad else None for t in leaves)
        return grad_x, None, grad_w1, grad_b1, grad_w2, grad_b2


def mlp_recomputing_hidden(x: torch.Tensor, fc1: nn.Linear, act: nn.Module, fc2: nn.Linear) -> torch.Tensor:
    """``fc2(act(fc1(x)))`` for ``x`` ``(..., D)``, keeping only ``x`` for backward (module docstring).

    ``act`` must be deterministic and elementwise (GELU, ReLU...): backward reruns it.
    """
    if not torch.is_grad_enabled():
        return fc2(act(fc1(x)))
    return _HiddenRecomputed.apply(x, act, fc1.weight, fc1.bias, fc2.weight, fc2.bias)
