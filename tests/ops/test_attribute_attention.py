"""The fused attribute-attention op against the reference formulation and a direct computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import zslkit.ops as ops
from zslkit.ops.attribute_attention import (
    attention_epilogue,
    attention_epilogue_backward,
    attribute_attention_op,
)

AXES = ("regions", "attributes")


def make_inputs(batch, channels, regions, attributes, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = F.normalize(torch.randn(batch, channels, regions, generator=generator, dtype=dtype), dim=1)
    query = 3 * torch.randn(attributes, channels, generator=generator, dtype=dtype)
    value = torch.randn(attributes, channels, generator=generator, dtype=dtype)
    return features, query, value


def direct(features, query, value, softmax_over):
    """The definition, image by image: a = softmax(Q f_b), scores = sum_r a * (U f_b)."""
    axis = 1 if softmax_over == "regions" else 0
    scores, maps = [], []
    for f in features:
        logits = query @ f
        weights = torch.exp(logits - logits.amax(dim=axis, keepdim=True))
        weights = weights / weights.sum(dim=axis, keepdim=True)
        maps.append(weights)
        scores.append((weights * (value @ f)).sum(dim=1))
    return torch.stack(scores), torch.stack(maps)


def relative_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def run(backend, features, query, value, softmax_over, recompute=False, autocast_dtype=None):
    """Scores, maps and the gradients of a loss that uses both, on copies of the inputs."""
    leaves = [t.detach().clone().requires_grad_() for t in (features, query, value)]
    autocast = torch.autocast(features.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)
    with ops.use_backend(backend), autocast:
        scores, maps = ops.attribute_attention(*leaves, softmax_over, return_maps=True, recompute=recompute)
    scores, maps = scores.to(features.dtype), maps.to(features.dtype)
    weights = torch.linspace(-1, 1, maps.numel(), dtype=maps.dtype, device=maps.device).view_as(maps)
    (scores.square().sum() + (weights * maps).sum()).backward()
    return [scores.detach(), maps.detach()] + [t.grad for t in leaves]


@pytest.mark.parametrize("softmax_over", AXES)
def test_both_backends_match_the_definition(softmax_over):
    features, query, value = make_inputs(3, 16, 10, 7, dtype=torch.float64)
    expected_scores, expected_maps = direct(features, query, value, softmax_over)
    for backend in ops.BACKENDS:
        with ops.use_backend(backend):
            scores, maps = ops.attribute_attention(features, query, value, softmax_over, return_maps=True)
        torch.testing.assert_close(scores, expected_scores, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(maps, expected_maps, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("softmax_over", AXES)
@pytest.mark.parametrize("recompute", [False, True])
def test_fused_equals_reference_in_float32(softmax_over, recompute):
    inputs = make_inputs(4, 64, 49, 24)
    fused = run("fused", *inputs, softmax_over, recompute)
    reference = run("reference", *inputs, softmax_over)
    for name, a, b in zip(["scores", "maps", "dfeatures", "dquery", "dvalue"], fused, reference):
        assert relative_error(a, b) < 1e-5, name


@pytest.mark.parametrize(
    "shape", [(1, 8, 5, 4), (3, 8, 1, 4), (3, 8, 5, 1), (1, 1, 1, 1)], ids=["B=1", "R=1", "I=1", "all=1"]
)
@pytest.mark.parametrize("softmax_over", AXES)
def test_odd_sizes(shape, softmax_over):
    inputs = make_inputs(*shape, dtype=torch.float64)
    for a, b in zip(run("fused", *inputs, softmax_over), run("reference", *inputs, softmax_over)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("softmax_over", AXES)
def test_non_contiguous_inputs(softmax_over):
    generator = torch.Generator().manual_seed(1)
    wide = torch.randn(2, 5, 12, 9, generator=generator, dtype=torch.float64)
    features = F.normalize(wide[:, ::2, 3:11, 4], dim=2).transpose(1, 2)  # (B, C=8, R=3), strided
    query = torch.randn(8, 6, generator=generator, dtype=torch.float64).T  # (I=6, C=8), transposed
    value = torch.randn(6, 16, generator=generator, dtype=torch.float64)[:, ::2]
    assert not (features.is_contiguous() or query.is_contiguous() or value.is_contiguous())
    fused = run("fused", features, query, value, softmax_over)
    reference = run("reference", features.contiguous(), query.contiguous(), value.contiguous(), softmax_over)
    for a, b in zip(fused, reference):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("softmax_over", AXES)
@pytest.mark.parametrize("recompute", [False, True])
def test_gradcheck_float64(softmax_over, recompute):
    inputs = [t.requires_grad_() for t in make_inputs(2, 6, 5, 4, dtype=torch.float64)]

    def scores_and_maps(features, query, value):
        return ops.attribute_attention(
            features, query, value, softmax_over, return_maps=True, recompute=recompute
        )

    assert torch.autograd.gradcheck(scores_and_maps, inputs)
    assert torch.autograd.gradcheck(
        lambda *args: ops.attribute_attention(*args, softmax_over=softmax_over), inputs
    )


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(dim, dtype):
    features, query, value = (t.requires_grad_() for t in make_inputs(2, 6, 5, 3, dtype=dtype))
    for recompute in (False, True):
        torch.library.opcheck(attribute_attention_op, (features, query, value, dim, recompute))
    projections = torch.randn(2, 6, 5, dtype=dtype)
    grad_scores, grad_maps = torch.randn(2, 3, dtype=dtype), torch.randn(2, 3, 5, dtype=dtype)
    torch.library.opcheck(attention_epilogue, (projections, dim))
    for maybe_grad_maps in (grad_maps, None):
        torch.library.opcheck(attention_epilogue_backward, (projections, grad_scores, maybe_grad_maps, dim))


class _LargestTensor(TorchDispatchMode):
    """Records the largest storage (in elements) behind any tensor an aten op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor):
                elements = tensor.untyped_storage().nbytes() // tensor.element_size()
                self.largest = max(self.largest, elements)
        return out


@pytest.mark.parametrize("softmax_over", AXES)
def test_fused_never_builds_per_attribute_features(softmax_over):
    batch, channels, regions, attributes = 4, 50, 3, 6  # B*I*C = 1200 exceeds every other tensor
    inputs = make_inputs(batch, channels, regions, attributes)
    largest = {}
    for backend in ops.BACKENDS:
        with _LargestTensor() as mode:
            run(backend, *inputs, softmax_over)
        largest[backend] = mode.largest
    assert largest["reference"] >= batch * attributes * channels  # the check can see (B, I, C)
    assert largest["fused"] < batch * attributes * channels


def _saved_elements(recompute):
    features, query, value = make_inputs(2, 7, 5, 3)
    query.requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        ops.attribute_attention(features, query, value, recompute=recompute)
    return sum(saved)


def test_recompute_keeps_only_the_inputs():
    inputs_only = 2 * 7 * 5 + 2 * 3 * 7  # features, query, value
    assert _saved_elements(recompute=True) == inputs_only
    assert _saved_elements(recompute=False) == inputs_only + 2 * (2 * 3) * 5  # + projections (B, 2I, R)


def test_autocast_runs_in_the_low_precision_dtype():
    features, query, value = make_inputs(3, 32, 9, 5)
    expected, _ = direct(features, query, value, "regions")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = ops.attribute_attention(features, query, value)
    assert scores.dtype == torch.bfloat16
    assert relative_error(scores.float(), expected) < 3e-2


def test_torch_compile_fullgraph_step(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))  # compile this code, not a cached graph
    features, query, value = make_inputs(3, 8, 6, 5)
    weight = torch.randn(5, 5, requires_grad=True)

    def loss(features, weight):
        scores, maps = ops.attribute_attention(features, weight @ query, value, "regions", return_maps=True)
        other = ops.attribute_attention(features, query, weight @ value, "attributes", recompute=True)
        return (scores - other).square().sum() + maps[..., 0].sum()

    compiled = torch.compile(loss, fullgraph=True)
    expected = loss(features, weight)
    (expected_grad,) = torch.autograd.grad(expected, weight)
    actual = compiled(features, weight)
    (actual_grad,) = torch.autograd.grad(actual, weight)
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(actual_grad, expected_grad)


@settings(max_examples=12, deadline=None)
@given(
    batch=st.integers(1, 4),
    channels=st.integers(1, 12),
    regions=st.integers(1, 9),
    attributes=st.integers(1, 7),
    softmax_over=st.sampled_from(AXES),
    seed=st.integers(0, 2**16),
)
def test_property_fused_matches_reference(batch, channels, regions, attributes, softmax_over, seed):
    inputs = make_inputs(batch, channels, regions, attributes, dtype=torch.float64, seed=seed)
    for a, b in zip(run("fused", *inputs, softmax_over), run("reference", *inputs, softmax_over)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_normalize_regions_gives_unit_channels_last_regions():
    features = torch.randn(2, 6, 3, 4)
    normalized = ops.normalize_regions(features)
    assert normalized.shape == (2, 6, 12) and normalized.stride(1) == 1
    torch.testing.assert_close(
        normalized, features.flatten(2) / features.flatten(2).norm(dim=1, keepdim=True)
    )
    torch.testing.assert_close(ops.normalize_regions(features.flatten(2)), normalized)
    with pytest.raises(ValueError, match=r"features: expected shape \(B, C, H, W\) or \(B, C, R\)"):
        ops.normalize_regions(torch.randn(2, 6))


def test_backend_switch(monkeypatch):
    monkeypatch.delenv(ops.ENV_VAR, raising=False)
    monkeypatch.setattr(ops, "_backend", None)
    features, query, value = make_inputs(2, 4, 3, 2)
    query.requires_grad_()
    assert ops.get_backend() == "fused"
    with ops.use_backend("reference"):
        assert ops.get_backend() == "reference"
        reference_node = ops.attribute_attention(features, query, value).grad_fn
    fused_node = ops.attribute_attention(features, query, value).grad_fn
    assert "zslkit" not in type(reference_node).__name__
    assert "zslkit_attribute_attention" in type(fused_node).__name__
    with pytest.raises(ValueError, match="backend: expected one of"):
        ops.set_backend("fast")
    monkeypatch.setattr(ops, "_backend", None)
    monkeypatch.setenv(ops.ENV_VAR, "reference")
    assert ops.get_backend() == "reference"
    monkeypatch.setattr(ops, "_backend", None)
    monkeypatch.setenv(ops.ENV_VAR, "nope")
    with pytest.raises(ValueError, match="environment variable ZSLKIT_ATTENTION_BACKEND: expected"):
        ops.get_backend()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f, q, u: (f[0], q, u), r"features: expected shape \(B, C, R\), found \(4, 3\)"),
        (lambda f, q, u: (f, q[:, :3], u), r"query: expected shape \(I, C\) with C=4"),
        (lambda f, q, u: (f, q, u[:1]), r"value: expected the query's shape \(2, 4\), found \(1, 4\)"),
        (lambda f, q, u: (f, q.double(), u), "query: expected dtype torch.float32"),
        (lambda f, q, u: (f.long(), q, u), "features: expected a floating-point tensor"),
    ],
)
def test_bad_inputs_raise_one_line_errors(change, message):
    with pytest.raises(ValueError, match=message):
        ops.attribute_attention(*change(*make_inputs(2, 4, 3, 2)))


def test_bad_softmax_axis():
    with pytest.raises(ValueError, match=r"softmax_over: expected one of \['attributes', 'regions'\]"):
        ops.attribute_attention(*make_inputs(2, 4, 3, 2), softmax_over="channels")


# --- on CUDA (the Triton epilogue when Triton imports); skipped without a GPU ----------------

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@requires_cuda
def test_cuda_uses_the_triton_kernels():
    assert ops.TRITON_KERNELS


@requires_cuda
@pytest.mark.parametrize("softmax_over", AXES)
@pytest.mark.parametrize(
    ("precision", "tolerance"), [("fp32", 1e-5), ("tf32", 1e-3), ("bf16", 1e-2)]
)  # issue #5's tolerances
def test_cuda_matches_the_float64_reference(softmax_over, precision, tolerance):
    inputs = [t.cuda() for t in make_inputs(8, 256, 49, 40)]
    expected = run("reference", *(t.double() for t in inputs), softmax_over)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest" if precision == "fp32" else "high")
    try:
        actual = run(
            "fused", *inputs, softmax_over, autocast_dtype=torch.bfloat16 if precision == "bf16" else None
        )
    finally:
        torch.set_float32_matmul_precision(previous)
    for name, a, b in zip(["scores", "maps", "dfeatures", "dquery", "dvalue"], actual, expected):
        assert relative_error(a.double(), b) < tolerance, name


@requires_cuda
@pytest.mark.parametrize("softmax_over", AXES)
def test_cuda_gradcheck_float64(softmax_over):
    inputs = [t.cuda().requires_grad_() for t in make_inputs(2, 6, 5, 4, dtype=torch.float64)]
    assert torch.autograd.gradcheck(
        lambda *args: ops.attribute_attention(*args, softmax_over=softmax_over, return_maps=True), inputs
    )


@requires_cuda
@pytest.mark.parametrize("dim", [1, 2])
def test_cuda_opcheck(dim):
    features, query, value = (t.cuda().requires_grad_() for t in make_inputs(2, 6, 5, 3))
    torch.library.opcheck(attribute_attention_op, (features, query, value, dim, False))
    projections = torch.randn(2, 6, 5, device="cuda")
    grad_scores, grad_maps = torch.randn(2, 3, device="cuda"), torch.randn(2, 3, 5, device="cuda")
    torch.library.opcheck(attention_epilogue, (projections, dim))
    torch.library.opcheck(attention_epilogue_backward, (projections, grad_scores, grad_maps, dim))
