"""Fused attribute attention (``zslkit::attribute_attention``) and the switch between its backends.

:func:`attribute_attention` computes, for features ``f`` ``(B, C, R)`` and per-attribute query
and value projections ``q_i``, ``u_i`` (rows of ``(I, C)`` matrices)::

    a[b, i, r] = softmax(q_i . f[b, :, r])     over r ("regions") or over i ("attributes")
    scores[b, i] = sum_r a[b, i, r] * (u_i . f[b, :, r])

Backends: ``"fused"`` (default; the custom op, Triton epilogue kernels on CUDA when Triton
imports) and ``"reference"`` (the einsum formulation that materialises ``(B, I, C)``).
Pick one with :func:`set_backend`, :func:`use_backend` or the environment variable
``ZSLKIT_ATTENTION_BACKEND``.
"""

from __future__ import annotations

import contextlib
import os

import torch

from zslkit.ops.attribute_attention import attribute_attention_op, fused_attribute_attention
from zslkit.ops.inputs import SOFTMAX_DIMS, autocast_inputs, check_inputs
from zslkit.ops.reference import reference_attribute_attention
from zslkit.ops.regions import normalize_regions

BACKENDS = ("fused", "reference")
ENV_VAR = "ZSLKIT_ATTENTION_BACKEND"
_backend: str | None = None


def _checked_backend(name: str, source: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{source}: expected one of {list(BACKENDS)}, found {name!r}")
    return name


def get_backend() -> str:
    """The active backend: the last :func:`set_backend`, else ``$ZSLKIT_ATTENTION_BACKEND``, else ``"fused"``."""
    global _backend
    if _backend is None:
        _backend = _checked_backend(os.environ.get(ENV_VAR, "fused"), f"environment variable {ENV_VAR}")
    return _backend


def set_backend(name: str) -> None:
    """Make ``name`` (``"fused"`` or ``"reference"``) the backend of :func:`attribute_attention`."""
    global _backend
    _backend = _checked_backend(name, "backend")


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager: run the enclosed code with backend ``name``, then restore the previous one."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def attribute_attention(
    features: torch.Tensor,
    query: torch.Tensor,
    value: torch.Tensor,
    softmax_over: str = "regions",
    return_maps: bool = False,
    recompute: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attention-pooled attribute scores.

    Args:
        features: ``(B, C, R)`` region features, unit length per region (the caller
            normalises; :func:`normalize_regions` does it in the layout the op reads fastest).
        query: ``(I, C)``; row ``q_i`` gives the attention logits ``q_i . f[b, :, r]``.
        value: ``(I, C)``; row ``u_i`` gives the region scores ``u_i . f[b, :, r]``.
        softmax_over: ``"regions"`` (attribute->visual: each attribute attends over the
            regions) or ``"attributes"`` (visual->attribute: each region spreads over attributes).
        return_maps: also return the attention weights ``a``.
        recompute: fused backend only: backward recomputes the projections (one more matrix
            product) instead of keeping ``2 * B * I * R`` values from forward. The reference
            backend keeps what autograd keeps whatever this flag says.

    Returns:
        scores ``(B, I)``; with ``return_maps`` the pair ``(scores, maps (B, I, R))``.
    """
    features, query, value = autocast_inputs(features, query, value)
    check_inputs(features, query, value)
    if get_backend() == "reference":
        return reference_attribute_attention(features, query, value, softmax_over, return_maps)
    return fused_attribute_attention(features, query, value, softmax_over, return_maps, recompute)


def _register_triton_kernels() -> bool:
    """Give the epilogue ops Triton kernels on CUDA when CUDA is present and Triton imports."""
    if not torch.cuda.is_available():
        return False
    try:
        from zslkit.ops import triton_kernels
    except ImportError:
        return False
    triton_kernels.register_cuda_kernels()
    return True


#: Whether the CUDA epilogue runs Triton kernels (else the plain PyTorch ones).
TRITON_KERNELS = _register_triton_kernels()

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "SOFTMAX_DIMS",
    "TRITON_KERNELS",
    "attribute_attention",
    "attribute_attention_op",
    "fused_attribute_attention",
    "get_backend",
    "normalize_regions",
    "reference_attribute_attention",
    "set_backend",
    "use_backend",
]
