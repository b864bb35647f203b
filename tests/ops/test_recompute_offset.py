"""Recomputed views with a storage offset: the marked tensor is itself a slice of a larger buffer
(offset != 0), and the product saves a further slice of it. Backward must rebuild exactly that
view: the gradients equal plain autograd's, and the recipe did run."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from zslkit.ops.recompute import recomputable, recompute_saved


@pytest.mark.parametrize(("marked_from", "saved_from"), [(0, 2), (1, 0), (1, 3)])
def test_a_view_with_an_offset_is_rebuilt_from_the_recipe(marked_from, saved_from):
    calls = []

    def normed_rows(x):  # a view into a fresh buffer, starting at row `marked_from`
        calls.append(1)
        return F.layer_norm(x, (16,))[marked_from:]

    torch.manual_seed(0)
    x = torch.randn(9, 16)
    w0 = torch.randn(8, 16)
    grads = []
    for context in (contextlib.nullcontext(), recompute_saved()):
        calls.clear()
        w = w0.clone().requires_grad_()
        with context:
            y = normed_rows(x)
            assert y.storage_offset() == 16 * marked_from
            out = F.linear(recomputable(y, normed_rows, x)[saved_from:], w)  # saves a view at a further offset
        (out * torch.arange(out.numel(), dtype=out.dtype).view(out.shape)).sum().backward()
        grads.append((w.grad, len(calls)))
    (plain, plain_calls), (recomputed, recomputed_calls) = grads
    assert (plain_calls, recomputed_calls) == (1, 2)  # the recipe ran in backward
    weight = torch.arange(out.numel(), dtype=out.dtype).view(out.shape)
    expected = weight.T @ F.layer_norm(x, (16,))[marked_from + saved_from:]  # by hand: dL/dW = G^T Y
    torch.testing.assert_close(plain, expected)
    torch.testing.assert_close(recomputed, plain, rtol=0, atol=0)  # the same bits as keeping the view
