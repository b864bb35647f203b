"""zslkit.ops.recompute: marked tensors are saved as recipes, with the same gradients."""

import contextlib

import torch
import torch.nn.functional as F

from zslkit.attention.dropout import Dropout, relu_dropout
from zslkit.ops.recompute import recomputable, recompute_saved


def _step(context):
    torch.manual_seed(0)
    x = torch.randn(4, 30, 16, requires_grad=True)
    weight = torch.randn(16, 16, requires_grad=True)
    drop, saved = Dropout(0.4).train(), []

    def pack(t):
        saved.append(t.numel())
        return t

    with context:
        normed = recomputable(F.layer_norm(x, (16,)), F.layer_norm, x, (16,))
        hidden = relu_dropout(F.linear(normed.flatten(0, 1), weight), drop).view(4, 30, 16)
        out = F.linear(drop.recomputable(hidden.softmax(-1)), weight) + drop(hidden)
        loss = (out * torch.linspace(-1, 1, 16)).sum()
    loss.backward()
    return loss.detach(), x.grad, weight.grad


def _drop(t):
    """Dropout 0.4 as specified: lane ``i`` is the ``i``-th int16 of full-range int64 draws, kept
    when at least ``round(0.4 * 65536) - 32768``, kept ones scaled by ``65536 / (65536 - 26214)``."""
    draws = torch.empty(-(-t.numel() // 4), dtype=torch.int64).random_(-(2**63), None)
    lanes = draws.view(torch.int16)[: t.numel()].view(t.shape)
    return t * (lanes >= 26214 - 32768) * (65536 / (65536 - 26214))


def _plain_step():
    """The same math with torch's own ops (the same draws, ReLU, dropout by product)."""
    torch.manual_seed(0)
    x = torch.randn(4, 30, 16, requires_grad=True)
    weight = torch.randn(16, 16, requires_grad=True)
    normed = F.layer_norm(x, (16,))
    a = F.linear(normed.flatten(0, 1), weight)
    hidden = _drop(torch.relu(a)).view(4, 30, 16)
    w = hidden.softmax(-1)
    out = F.linear(_drop(w), weight) + _drop(hidden)
    loss = (out * torch.linspace(-1, 1, 16)).sum()
    loss.backward()
    return loss.detach(), x.grad, weight.grad


def test_recompute_saved_gives_the_same_loss_and_gradients_bitwise():
    plain = _step(contextlib.nullcontext())
    recomputed = _step(recompute_saved())
    for a, b in zip(plain, recomputed):
        assert torch.equal(a, b)


def test_the_fused_dropouts_match_plain_torch():
    for a, b in zip(_step(recompute_saved()), _plain_step()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_backward_reruns_the_recipe_instead_of_keeping_the_tensor():
    calls = []

    def norm(x):
        calls.append(1)
        return F.layer_norm(x, (128,))

    for context, expected_calls in ((contextlib.nullcontext(), 1), (recompute_saved(), 2)):
        calls.clear()
        x = torch.randn(64, 128, requires_grad=True)
        w = torch.randn(128, 128, requires_grad=True)
        with context:
            out = F.linear(recomputable(norm(x), norm, x), w)
        out.sum().backward()
        assert len(calls) == expected_calls
        torch.testing.assert_close(w.grad, torch.ones(64, 128).T @ F.layer_norm(x.detach(), (128,)))
