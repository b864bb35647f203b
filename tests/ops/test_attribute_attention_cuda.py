"""The op on CUDA (Triton epilogue when Triton imports) against the reference; skipped without a GPU.

Tolerances are issue #5's: float32 relative error < 1e-5, TF32 < 1e-3, bfloat16 < 1e-2.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zslkit.ops as ops
from zslkit.ops.attribute_attention import (
    attention_epilogue,
    attention_epilogue_backward,
    attribute_attention_op,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

AXES = ("regions", "attributes")


def cuda_inputs(batch, channels, regions, attributes, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = F.normalize(torch.randn(batch, channels, regions, generator=generator, dtype=dtype), dim=1)
    query = 3 * torch.randn(attributes, channels, generator=generator, dtype=dtype)
    value = torch.randn(attributes, channels, generator=generator, dtype=dtype)
    return [t.cuda() for t in (features, query, value)]


def scores_maps_grads(backend, features, query, value, softmax_over, autocast_dtype=None):
    leaves = [t.detach().clone().requires_grad_() for t in (features, query, value)]
    with (
        ops.use_backend(backend),
        torch.autocast("cuda", dtype=autocast_dtype, enabled=autocast_dtype is not None),
    ):
        scores, maps = ops.attribute_attention(*leaves, softmax_over, return_maps=True)
    (scores.float().square().sum() + maps.float()[..., 0].sum()).backward()
    return [scores.detach().float(), maps.detach().float()] + [t.grad.float() for t in leaves]


def relative_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def test_triton_kernels_are_registered():
    assert ops.TRITON_KERNELS


@pytest.mark.parametrize("softmax_over", AXES)
@pytest.mark.parametrize(
    ("precision", "tolerance"),
    [("highest", 1e-5), ("high", 1e-3), ("bf16", 1e-2)],
    ids=["fp32", "tf32", "bf16"],
)
def test_cuda_matches_float64_reference(softmax_over, precision, tolerance):
    inputs = cuda_inputs(8, 256, 49, 40)
    expected = scores_maps_grads("reference", *(t.double() for t in inputs), softmax_over)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "bf16" else precision)
    try:
        autocast_dtype = torch.bfloat16 if precision == "bf16" else None
        actual = scores_maps_grads("fused", *inputs, softmax_over, autocast_dtype)
    finally:
        torch.set_float32_matmul_precision(previous)
    for name, a, b in zip(["scores", "maps", "dfeatures", "dquery", "dvalue"], actual, expected):
        assert relative_error(a.double(), b) < tolerance, name


@pytest.mark.parametrize("softmax_over", AXES)
def test_cuda_gradcheck_float64(softmax_over):
    inputs = [t.requires_grad_() for t in cuda_inputs(2, 6, 5, 4, dtype=torch.float64)]
    assert torch.autograd.gradcheck(
        lambda *args: ops.attribute_attention(*args, softmax_over=softmax_over, return_maps=True), inputs
    )


@pytest.mark.parametrize("dim", [1, 2])
def test_cuda_opcheck(dim):
    features, query, value = (t.requires_grad_() for t in cuda_inputs(2, 6, 5, 3))
    torch.library.opcheck(attribute_attention_op, (features, query, value, dim, False))
    projections = torch.randn(2, 6, 5, device="cuda")
    grad_scores, grad_maps = torch.randn(2, 3, device="cuda"), torch.randn(2, 3, 5, device="cuda")
    torch.library.opcheck(attention_epilogue, (projections, dim))
    torch.library.opcheck(attention_epilogue_backward, (projections, grad_scores, grad_maps, dim))
