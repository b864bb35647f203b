"""Fused attribute attention as the custom op ``zslkit::attribute_attention``.

For features ``f`` ``(B, C, R)`` and projections ``Q``, ``U`` ``(I, C)`` one matrix product
with the stacked weight ``[Q; U]`` ``(2I, C)`` gives the projections ``P`` ``(B, 2I, R)``:
logits ``P[:, :I]`` and per-region values ``P[:, I:]``. The *epilogue* then takes the softmax
of the logits over regions or attributes, multiplies by the values and sums over regions::

    a[b, i, r] = softmax(P[b, :I])[i, r]        scores[b, i] = sum_r a[b, i, r] * P[b, I + i, r]

Backward needs only ``P`` (saved, or recomputed with ``recompute=True``): the epilogue's
gradient ``dP`` ``(B, 2I, R)`` followed by ``d[Q; U] = sum_b dP_b f_b^T`` and
``df = [Q; U]^T dP``. No ``(B, I, C)`` tensor is ever built.

The epilogue and its gradient are custom ops of their own (``zslkit::attention_epilogue``,
``zslkit::attention_epilogue_backward``) so that :mod:`zslkit.ops.triton_kernels` can give
them Triton kernels on CUDA; the plain PyTorch kernels here run everywhere else.
"""

import torch
from einops import rearrange

from zslkit.ops.inputs import autocast_inputs, softmax_dim


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the epilogue computes in: float32 for half types, else ``dtype`` itself."""
    return torch.promote_types(dtype, torch.float32)


def stacked_projections(features: torch.Tensor, query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``(B, 2I, R)``: rows ``[0, I)`` hold ``q_i . f_{b,r}``, rows ``[I, 2I)`` hold ``u_i . f_{b,r}``."""
    return torch.matmul(torch.cat([query, value]), features).contiguous()


def new_grad_projections(projections: torch.Tensor) -> torch.Tensor:
    """An uninitialised ``dP`` shaped like ``projections`` ``(B, 2I, R)`` but stored attribute-major
    (``(2I, B, R)`` in memory), so that the weight gradient reads it as a ``(2I, B R)`` matrix."""
    batch, rows, regions = projections.shape
    return projections.new_empty(rows, batch, regions).permute(1, 0, 2)


def projection_grads(
    grad_projections: torch.Tensor,
    features: torch.Tensor,
    weight: torch.Tensor,
    need_features: bool,
    need_weight: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``P = weight @ features`` given ``dP`` ``(B, 2I, R)``.

    Returns ``(df (B, C, R), dweight (2I, C))``, each ``None`` when not needed. The weight
    gradient is one matrix product over all ``B * R`` regions; it copies nothing when ``dP`` is
    attribute-major (as :func:`new_grad_projections` makes it) and the features are stored
    channels-last (as :func:`zslkit.ops.normalize_regions` makes them).
    """
    grad_weight = None
    if need_weight:
        rows = rearrange(features, "b c r -> (b r) c")
        grad_weight = rearrange(grad_projections, "b j r -> j (b r)") @ rows
    grad_features = torch.matmul(weight.T, grad_projections) if need_features else None
    return grad_features, grad_weight


# --- the epilogue: softmax, product and sum over regions -----------------------------------


@torch.library.custom_op("zslkit::attention_epilogue", mutates_args=())
def attention_epilogue(projections: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``(B, I)`` and maps ``(B, I, R)`` from projections ``(B, 2I, R)``; softmax over ``dim``."""
    logits, values = projections.to(compute_dtype(projections.dtype)).chunk(2, dim=1)
    maps = logits.softmax(dim)
    scores = torch.linalg.vecdot(maps, values)
    return scores.to(projections.dtype), maps.to(projections.dtype)


@attention_epilogue.register_fake
def _attention_epilogue_fake(projections, dim):
    batch, rows, regions = projections.shape
    return projections.new_empty(batch, rows // 2), projections.new_empty(batch, rows // 2, regions)


@torch.library.custom_op("zslkit::attention_epilogue_backward", mutates_args=())
def attention_epilogue_backward(
    projections: torch.Tensor, grad_scores: torch.Tensor, grad_maps: torch.Tensor | None, dim: int
) -> torch.Tensor:
    """``dP`` ``(B, 2I, R)``, attribute-major, from ``dscores`` ``(B, I)`` and, if given, ``dmaps``.

    With ``a = softmax(logits)``, ``s`` the values and ``g`` the score gradient:
    ``ds = g a``; ``da = g s + dmaps``; ``dlogits = a * (da - sum_dim(a * da))``.
    """
    work = compute_dtype(projections.dtype)
    logits, values = projections.to(work).chunk(2, dim=1)
    maps = logits.softmax(dim)
    grad = grad_scores.to(work).unsqueeze(-1)
    grad_attention = grad * values
    if grad_maps is not None:
        grad_attention += grad_maps
    grad_attention -= torch.linalg.vecdot(maps, grad_attention, dim=dim).unsqueeze(dim)
    # written straight into the result: besides it only maps and da are alive, (B, I, R) each
    grad_projections = new_grad_projections(projections)
    grad_logits, grad_values = grad_projections.chunk(2, dim=1)
    torch.mul(maps, grad_attention, out=grad_logits)
    torch.mul(grad, maps, out=grad_values)
    return grad_projections


@attention_epilogue_backward.register_fake
def _attention_epilogue_backward_fake(projections, grad_scores, grad_maps, dim):
    return new_grad_projections(projections)


# --- the op ----------------------------------------------------------------------------------


@torch.library.custom_op("zslkit::attribute_attention", mutates_args=())
def attribute_attention_op(
    features: torch.Tensor, query: torch.Tensor, value: torch.Tensor, dim: int, recompute: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(scores (B, I), maps (B, I, R), projections (B, 2I, R))``; softmax over ``dim`` of ``(B, I, R)``.

    ``recompute`` only changes what backward keeps: the inputs alone (the projections are
    recomputed, one more matrix product) or the projections as well.
    """
    projections = stacked_projections(features, query, value)
    scores, maps = attention_epilogue(projections, dim)
    return scores, maps, projections


@attribute_attention_op.register_fake
def _attribute_attention_fake(features, query, value, dim, recompute):
    batch, _, regions = features.shape
    attributes = query.shape[0]
    return (
        features.new_empty(batch, attributes),
        features.new_empty(batch, attributes, regions),
        features.new_empty(batch, 2 * attributes, regions),
    )


def _setup_context(ctx, inputs, output):
    features, query, value, dim, recompute = inputs
    ctx.dim = dim
    ctx.set_materialize_grads(False)  # unused outputs (often the maps) get None, not zeros
    kept = (features, query, value) if recompute else (features, query, value, output[2])
    ctx.save_for_backward(*kept)


def _backward(ctx, grad_scores, grad_maps, grad_projections):
    features, query, value, *kept = ctx.saved_tensors
    projections = kept[0] if kept else stacked_projections(features, query, value)
    if grad_scores is None:
        grad_scores = projections.new_zeros(projections.shape[0], query.shape[0])
    grad = attention_epilogue_backward(projections, grad_scores, grad_maps, ctx.dim)
    if grad_projections is not None:
        grad = grad + grad_projections
    need_features, need_query, need_value = ctx.needs_input_grad[:3]
    grad_features, grad_weight = projection_grads(
        grad, features, torch.cat([query, value]), need_features, need_query or need_value
    )
    grad_query, grad_value = grad_weight.chunk(2) if grad_weight is not None else (None, None)
    return grad_features, grad_query, grad_value, None, None


attribute_attention_op.register_autograd(_backward, setup_context=_setup_context)


def fused_attribute_attention(
    features: torch.Tensor,
    query: torch.Tensor,
    value: torch.Tensor,
    softmax_over: str = "regions",
    return_maps: bool = False,
    recompute: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attribute attention through ``zslkit::attribute_attention`` (arguments as the public function).

    Under autocast the inputs are cast to the autocast dtype and the op runs with autocast
    off: the matrix product in that dtype, the epilogue in float32.
    """
    dim = softmax_dim(softmax_over)
    device_type = features.device.type
    if torch.is_autocast_enabled(device_type):
        features, query, value = autocast_inputs(features, query, value)
        with torch.autocast(device_type, enabled=False):
            scores, maps, _ = attribute_attention_op(features, query, value, dim, recompute)
    else:
        scores, maps, _ = attribute_attention_op(features, query, value, dim, recompute)
    return (scores, maps) if return_maps else scores
