"""zslkit.attention.dropout: the distribution, the random stream and the gradients, against plain torch."""

import math

import pytest
import torch

from zslkit.attention.dropout import Dropout, keep_mask, relu_dropout


def _lanes(shape, seed):
    """The specified stream: the int16 lanes of full-range int64 draws, in order."""
    torch.manual_seed(seed)
    n = math.prod(shape)
    draws = torch.empty(-(-n // 4), dtype=torch.int64).random_(-(2**63), None)
    return draws.view(torch.int16)[:n].view(shape)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.4, 0.5])
def test_keep_rate_and_scale_are_the_gridded_p_and_unbiased(p):
    threshold = round(p * 65536)
    x = torch.ones(1 << 22)
    torch.manual_seed(1)
    out = Dropout(p).train()(x)
    kept = out != 0
    rate = 1 - threshold / 65536
    sigma = math.sqrt(rate * (1 - rate) / x.numel())
    assert abs(kept.double().mean().item() - rate) < 5 * sigma
    # kept values carry exactly the unbiased scale; the mean is 1 up to sampling
    assert torch.all(out[kept] == torch.tensor(65536 / (65536 - threshold), dtype=torch.float32))
    assert abs(out.double().mean().item() - 1) < 5 * sigma / rate


def test_the_mask_is_the_specified_stream_and_neighbouring_lanes_are_independent():
    shape = (3, 1001, 7)  # not a multiple of 4
    torch.manual_seed(5)
    keep, scale = keep_mask(torch.empty(shape), 0.4)
    assert torch.equal(keep, _lanes(shape, 5) >= 26214 - 32768)
    assert scale == 65536 / (65536 - 26214)
    # the four lanes of one 64-bit draw: the pair rates are the product of the marginals
    torch.manual_seed(6)
    words, _ = keep_mask(torch.empty(1 << 22), 0.5)
    lanes = words.view(-1, 4).double()
    for a, b in ((0, 1), (1, 2), (2, 3), (0, 3)):
        both = (lanes[:, a] * lanes[:, b]).mean().item()
        assert abs(both - 0.25) < 5 * math.sqrt(0.25 * 0.75 / lanes.shape[0])


def test_gradient_is_grad_times_mask_times_scale():
    x = torch.randn(50, 33, requires_grad=True)
    grad = torch.randn(50, 33)
    torch.manual_seed(2)
    Dropout(0.3).train()(x).backward(grad)
    keep = _lanes((50, 33), 2) >= round(0.3 * 65536) - 32768
    scale = 65536 / (65536 - round(0.3 * 65536))
    torch.testing.assert_close(x.grad, grad * keep * scale, rtol=0, atol=0)


def test_relu_dropout_equals_relu_then_dropout_and_its_gradient():
    base = torch.randn(64, 40)
    grad = torch.randn(64, 40)
    x = base.clone().requires_grad_()
    torch.manual_seed(3)
    fused = relu_dropout(x * 1.0, Dropout(0.4).train())  # x * 1.0: a fresh tensor it may overwrite
    fused.backward(grad)
    plain_x = base.clone().requires_grad_()
    keep = _lanes((64, 40), 3) >= 26214 - 32768
    plain = torch.relu(plain_x) * keep * (65536 / (65536 - 26214))
    plain.backward(grad)
    assert torch.equal(fused, plain)
    assert torch.equal(x.grad, plain_x.grad)


def test_eval_zero_and_one():
    x = torch.randn(10, 10)
    assert Dropout(0.4).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros(10, 10))
    # below half a grid step p is 0: identity
    assert Dropout(1e-6).train()(x) is x
    with pytest.raises(ValueError, match=r"dropout p=1e-06 rounds to 0/65536: give 0 < p < 1"):
        keep_mask(x, 1e-6)


def test_the_compiled_branch_keeps_with_the_same_gridded_probability(monkeypatch):
    # under torch.compile the mask comes from rand_like (Dynamo cannot trace random_)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    torch.manual_seed(4)
    x = torch.empty(1 << 22)
    keep, scale = keep_mask(x, 0.4)
    torch.manual_seed(4)
    assert torch.equal(keep, torch.rand_like(x) >= 26214 / 65536)
    rate = 1 - 26214 / 65536
    assert abs(keep.double().mean().item() - rate) < 5 * math.sqrt(rate * (1 - rate) / x.numel())
    assert scale == 65536 / (65536 - 26214)
