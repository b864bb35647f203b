"""Saved activations that backward recomputes from tensors it keeps anyway.

Autograd saves the inputs of a matrix product for its weight gradient. Some of those
inputs are cheap functions of tensors autograd saves in any case: a LayerNorm's output
(of its saved input), the normalised region features (of the raw features, alive as the
batch), the attention weights after dropout (of the softmax output and the dropout mask).
Inside :func:`recompute_saved`, a tensor marked with :func:`recomputable` is not kept:
autograd stores the recipe instead, and backward reruns it (the same operations on the
same inputs, so the same bits) when the product's gradient needs it.

    with recompute_saved():
        y = recomputable(layer_norm(x), layer_norm, x)   # saved by the next product as a recipe
        out = linear(y)                                  # (recomputed(layer_norm, x) says the same)

Outside the context :func:`recomputable` returns its tensor and changes nothing.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["recomputable", "recompute_saved", "recomputed", "recomputing"]

_state = threading.local()


def _registry() -> dict[int, tuple[weakref.ref, Callable[..., torch.Tensor], tuple[Any, ...]]] | None:
    return getattr(_state, "registry", None)


def recomputing() -> bool:
    """Whether marks are taken now: inside :func:`recompute_saved`, grad on, not under ``torch.compile``."""
    return not torch.compiler.is_compiling() and _registry() is not None and torch.is_grad_enabled()


def recomputable(tensor: torch.Tensor, fn: Callable[..., torch.Tensor], *inputs: Any) -> torch.Tensor:
    """Mark ``tensor`` (``== fn(*inputs)``, deterministically) as recomputable; returns ``tensor``.

    ``inputs`` must be tensors that stay alive until backward anyway (autograd saves them,
    or the caller holds them): the recipe keeps a reference to them.
    """
    if recomputing() and tensor.numel() > 0:
        registry = _registry()
        # a weak reference: the registry must not keep the tensor alive (that is the point);
        # once it is gone its address may be reused, and the dead reference says so
        registry[tensor.untyped_storage().data_ptr()] = (weakref.ref(tensor), fn, inputs)
    return tensor


def recomputed(fn: Callable[..., torch.Tensor], *inputs: Any) -> torch.Tensor:
    """``fn(*inputs)``, marked :func:`recomputable` by the same call (a norm or an activation of a tensor that
    autograd keeps anyway): ``recomputed(norm, x)`` is ``recomputable(norm(x), norm, x)``."""
    return recomputable(fn(*inputs), fn, *inputs)


def _pack(saved: torch.Tensor) -> Any:
    registry = _registry()
    entry = None if registry is None or saved.numel() == 0 else registry.get(saved.untyped_storage().data_ptr())
    tensor = None if entry is None else entry[0]()
    if tensor is None or tensor.dtype != saved.dtype or tensor.device != saved.device:
        return saved
    _, fn, inputs = entry
    return (fn, inputs, tensor.stride(), saved.size(), saved.stride(), saved.storage_offset() - tensor.storage_offset())


def _unpack(packed: Any) -> torch.Tensor:
    if isinstance(packed, torch.Tensor):
        return packed
    fn, inputs, base_stride, size, stride, offset = packed
    with torch.no_grad():
        base = fn(*inputs)
    if base.stride() != base_stride:
        raise RuntimeError(f"recomputed tensor has strides {base.stride()}, the marked one had {base_stride}")
    return base.as_strided(size, stride, base.storage_offset() + offset)


@contextlib.contextmanager
def recompute_saved() -> Iterator[None]:
    """Within it, tensors marked :func:`recomputable` are saved for backward as recipes (reentrant).

    A no-op under ``torch.compile`` (the hooks would split the graph): compiled code saves as usual.
    """
    if torch.compiler.is_compiling() or _registry() is not None:
        yield
        return
    _state.registry = {}
    try:
        with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack):
            yield
    finally:
        _state.registry = None
