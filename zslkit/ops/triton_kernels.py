"""Triton kernels for the attention epilogue on CUDA.

Importing this module needs Triton; :mod:`zslkit.ops` imports it (and registers the kernels
for the CUDA dispatch key of ``zslkit::attention_epilogue`` and
``zslkit::attention_epilogue_backward``) only when CUDA is available and Triton imports.
The launchers below also run on CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1`` set before ``import triton``), which is how the tests check them.

Tiling. Per image ``b`` the projections are two ``(I, R)`` slabs, logits then values. A
program owns a block of the axis the softmax does *not* run over and loops over the softmax
axis in chunks: a first pass keeps the running maximum and sum of exponentials (online
softmax), a second pass writes the maps and reduces. With the softmax over regions a program
owns attributes ``i`` and the scores are sums along its loop; with the softmax over
attributes a program owns regions ``r`` and writes one partial score sum per attribute, which
the launcher adds up over the region blocks. Everything is computed in float32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from zslkit.ops.attribute_attention import (
    attention_epilogue,
    attention_epilogue_backward,
    new_grad_projections,
)

_MASKED = tl.constexpr(-1.0e30)  # stands in for -inf on padded lanes: exp(_MASKED - m) == 0


@triton.jit
def _chunk(own, own_mask, start, n_loop, stride_own, stride_loop, BLOCK_LOOP: tl.constexpr):
    """Loop-axis indices, the tile mask and the in-slab offsets of the chunk at ``start``."""
    loop = start + tl.arange(0, BLOCK_LOOP)
    mask = own_mask[:, None] & (loop < n_loop)[None, :]
    return loop, mask, own[:, None] * stride_own + loop[None, :] * stride_loop


@triton.jit
def _load(ptr, offsets, mask, COMPUTE: tl.constexpr):
    return tl.load(ptr + offsets, mask=mask, other=0.0).to(COMPUTE)


@triton.jit
def _grad_attention(values_ptr, grad_ptr, grad_maps_ptr, offsets, attr_offsets, mask,
                    HAS_GRAD_MAPS: tl.constexpr, COMPUTE: tl.constexpr):  # fmt: skip
    """``(g, da)`` on a tile: the score gradient ``g`` and ``da = g * s + dmaps``."""
    g = _load(grad_ptr, attr_offsets, mask, COMPUTE)
    grad_attention = g * _load(values_ptr, offsets, mask, COMPUTE)
    if HAS_GRAD_MAPS:
        grad_attention += _load(grad_maps_ptr, offsets, mask, COMPUTE)
    return g, grad_attention


@triton.jit
def _epilogue_forward_kernel(
    proj_ptr, scores_ptr, maps_ptr,
    n_own, n_loop, stride_own, stride_loop, n_attr, slab,
    OWN_ATTRIBUTES: tl.constexpr, COMPUTE: tl.constexpr, BLOCK_OWN: tl.constexpr, BLOCK_LOOP: tl.constexpr,
):  # fmt: skip
    b = tl.program_id(0)
    block = tl.program_id(1)
    own = block * BLOCK_OWN + tl.arange(0, BLOCK_OWN)
    own_mask = own < n_own
    logits_ptr = proj_ptr + b * 2 * slab
    values_ptr = logits_ptr + slab
    # pass 1: running max m and sum of exp(x - m) along the softmax axis
    m = tl.full([BLOCK_OWN], _MASKED, COMPUTE)
    total = tl.zeros([BLOCK_OWN], COMPUTE)
    for start in range(0, n_loop, BLOCK_LOOP):
        loop, mask, offsets = _chunk(own, own_mask, start, n_loop, stride_own, stride_loop, BLOCK_LOOP)
        x = tl.where(mask, _load(logits_ptr, offsets, mask, COMPUTE), _MASKED)
        m_new = tl.maximum(m, tl.max(x, axis=1))
        total = total * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new[:, None]), axis=1)
        m = m_new
    # pass 2: maps and the attention-weighted sums of the values
    acc = tl.zeros([BLOCK_OWN], COMPUTE)
    for start in range(0, n_loop, BLOCK_LOOP):
        loop, mask, offsets = _chunk(own, own_mask, start, n_loop, stride_own, stride_loop, BLOCK_LOOP)
        x = tl.where(mask, _load(logits_ptr, offsets, mask, COMPUTE), _MASKED)
        a = tl.exp(x - m[:, None]) / total[:, None]
        tl.store(maps_ptr + b * slab + offsets, a.to(maps_ptr.dtype.element_ty), mask=mask)
        weighted = tl.where(mask, a * _load(values_ptr, offsets, mask, COMPUTE), 0.0)
        if OWN_ATTRIBUTES:
            acc += tl.sum(weighted, axis=1)
        else:  # partial sums over this program's regions, one per attribute of the chunk
            partial = scores_ptr + (b * tl.num_programs(1) + block) * n_attr
            tl.store(partial + loop, tl.sum(weighted, axis=0), mask=loop < n_loop)
    if OWN_ATTRIBUTES:
        tl.store(scores_ptr + b * n_attr + own, acc.to(scores_ptr.dtype.element_ty), mask=own_mask)


@triton.jit
def _epilogue_backward_kernel(
    proj_ptr, grad_scores_ptr, grad_maps_ptr, out_ptr,
    n_own, n_loop, stride_own, stride_loop, n_attr, slab, attr_own, attr_loop,
    out_stride_b, out_own, out_loop, out_values,
    HAS_GRAD_MAPS: tl.constexpr, COMPUTE: tl.constexpr, BLOCK_OWN: tl.constexpr, BLOCK_LOOP: tl.constexpr,
):  # fmt: skip
    b = tl.program_id(0)
    own = tl.program_id(1) * BLOCK_OWN + tl.arange(0, BLOCK_OWN)
    own_mask = own < n_own
    logits_ptr = proj_ptr + b * 2 * slab
    values_ptr = logits_ptr + slab
    grad_ptr = grad_scores_ptr + b * n_attr
    grad_maps_ptr = grad_maps_ptr + b * slab
    # pass 1: softmax statistics and t = sum exp(x - m) * da along the softmax axis
    m = tl.full([BLOCK_OWN], _MASKED, COMPUTE)
    total = tl.zeros([BLOCK_OWN], COMPUTE)
    t = tl.zeros([BLOCK_OWN], COMPUTE)
    for start in range(0, n_loop, BLOCK_LOOP):
        loop, mask, offsets = _chunk(own, own_mask, start, n_loop, stride_own, stride_loop, BLOCK_LOOP)
        x = tl.where(mask, _load(logits_ptr, offsets, mask, COMPUTE), _MASKED)
        attr_offsets = own[:, None] * attr_own + loop[None, :] * attr_loop
        _, grad_attention = _grad_attention(
            values_ptr, grad_ptr, grad_maps_ptr, offsets, attr_offsets, mask, HAS_GRAD_MAPS, COMPUTE
        )
        m_new = tl.maximum(m, tl.max(x, axis=1))
        e = tl.exp(x - m_new[:, None])
        scale = tl.exp(m - m_new)
        total = total * scale + tl.sum(e, axis=1)
        t = t * scale + tl.sum(e * grad_attention, axis=1)
        m = m_new
    mean = t / total  # sum of a * da along the softmax axis
    # pass 2: dlogits = a * (da - mean), dvalues = g * a
    for start in range(0, n_loop, BLOCK_LOOP):
        loop, mask, offsets = _chunk(own, own_mask, start, n_loop, stride_own, stride_loop, BLOCK_LOOP)
        x = tl.where(mask, _load(logits_ptr, offsets, mask, COMPUTE), _MASKED)
        a = tl.exp(x - m[:, None]) / total[:, None]
        attr_offsets = own[:, None] * attr_own + loop[None, :] * attr_loop
        g, grad_attention = _grad_attention(
            values_ptr, grad_ptr, grad_maps_ptr, offsets, attr_offsets, mask, HAS_GRAD_MAPS, COMPUTE
        )
        out = out_ptr + b * out_stride_b + own[:, None] * out_own + loop[None, :] * out_loop
        tl.store(out, (a * (grad_attention - mean[:, None])).to(out_ptr.dtype.element_ty), mask=mask)
        tl.store(out + out_values, (g * a).to(out_ptr.dtype.element_ty), mask=mask)


def _own_loop(dim: int, attribute_value, region_value):
    """``(own, loop)``: which of an attribute-axis and a region-axis quantity the programs own.

    With the softmax over regions (``dim == 2``) programs own attributes and loop over
    regions; with the softmax over attributes (``dim == 1``) the other way round.
    """
    if dim not in (1, 2):
        raise ValueError(f"dim: expected 1 (attributes) or 2 (regions), found {dim}")
    return (attribute_value, region_value) if dim == 2 else (region_value, attribute_value)


def _layout(attributes: int, regions: int, dim: int, block_own: int | None, block_loop: int | None):
    """Loop geometry over a contiguous ``(I, R)`` slab for softmax dimension ``dim`` of ``(B, I, R)``.

    Returns ``(n_own, n_loop, stride_own, stride_loop, attr_own, attr_loop, BLOCK_OWN,
    BLOCK_LOOP)``; the attribute index of a tile element is ``own * attr_own + loop * attr_loop``.
    """
    n_own, n_loop = _own_loop(dim, attributes, regions)
    stride_own, stride_loop = _own_loop(dim, regions, 1)
    attr_own, attr_loop = _own_loop(dim, 1, 0)
    block_own = block_own or min(triton.next_power_of_2(n_own), 32)
    block_loop = block_loop or min(triton.next_power_of_2(n_loop), 128)
    return n_own, n_loop, stride_own, stride_loop, attr_own, attr_loop, block_own, block_loop


def _compute(dtype: torch.dtype):
    """The kernels' arithmetic type: float64 for float64 input, else float32."""
    return tl.float64 if dtype == torch.float64 else tl.float32


def epilogue_forward(
    projections: torch.Tensor, dim: int, block_own: int | None = None, block_loop: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton version of :func:`zslkit.ops.attribute_attention.attention_epilogue`.

    ``block_own`` and ``block_loop`` (powers of two) override the tile; tests use small tiles
    so that every loop runs several chunks and every mask is exercised.
    """
    projections = projections.contiguous()
    batch, rows, regions = projections.shape
    attributes = rows // 2
    n_own, n_loop, stride_own, stride_loop, _, _, block_own, block_loop = _layout(
        attributes, regions, dim, block_own, block_loop
    )
    maps = projections.new_empty(batch, attributes, regions)
    n_blocks = triton.cdiv(n_own, block_own)
    own_attributes = dim == 2
    if own_attributes:
        scores = projections.new_empty(batch, attributes)
    else:
        partial_dtype = torch.promote_types(projections.dtype, torch.float32)
        scores = projections.new_zeros(batch, n_blocks, attributes, dtype=partial_dtype)
    if batch and attributes and regions:
        _epilogue_forward_kernel[(batch, n_blocks)](
            projections, scores, maps,
            n_own, n_loop, stride_own, stride_loop, attributes, attributes * regions,
            OWN_ATTRIBUTES=own_attributes, COMPUTE=_compute(projections.dtype),
            BLOCK_OWN=block_own, BLOCK_LOOP=block_loop,
        )  # fmt: skip
    if not own_attributes:
        scores = scores.sum(dim=1).to(projections.dtype)
    return scores, maps


def epilogue_backward(
    projections: torch.Tensor,
    grad_scores: torch.Tensor,
    grad_maps: torch.Tensor | None,
    dim: int,
    block_own: int | None = None,
    block_loop: int | None = None,
) -> torch.Tensor:
    """Triton version of :func:`zslkit.ops.attribute_attention.attention_epilogue_backward`."""
    projections = projections.contiguous()
    grad_scores = grad_scores.contiguous()
    batch, rows, regions = projections.shape
    attributes = rows // 2
    n_own, n_loop, stride_own, stride_loop, attr_own, attr_loop, block_own, block_loop = _layout(
        attributes, regions, dim, block_own, block_loop
    )
    grad = new_grad_projections(projections)
    out_stride_b, out_stride_attr, out_stride_region = grad.stride()
    has_grad_maps = grad_maps is not None
    if batch and attributes and regions:
        _epilogue_backward_kernel[(batch, triton.cdiv(n_own, block_own))](
            projections, grad_scores, grad_maps.contiguous() if has_grad_maps else grad_scores, grad,
            n_own, n_loop, stride_own, stride_loop, attributes, attributes * regions, attr_own, attr_loop,
            out_stride_b, *_own_loop(dim, out_stride_attr, out_stride_region), attributes * out_stride_attr,
            HAS_GRAD_MAPS=has_grad_maps, COMPUTE=_compute(projections.dtype),
            BLOCK_OWN=block_own, BLOCK_LOOP=block_loop,
        )  # fmt: skip
    return grad


def register_cuda_kernels() -> None:
    """Use the Triton kernels for CUDA tensors in both epilogue ops."""

    @attention_epilogue.register_kernel("cuda")
    def _forward(projections, dim):
        return epilogue_forward(projections, dim)

    @attention_epilogue_backward.register_kernel("cuda")
    def _backward(projections, grad_scores, grad_maps, dim):
        return epilogue_backward(projections, grad_scores, grad_maps, dim)
