"""Argument checks and autocast handling shared by every attribute-attention backend."""

from __future__ import annotations

import torch

#: Softmax axis names and the dimension of a ``(B, I, R)`` logit tensor they normalise.
SOFTMAX_DIMS = {"regions": 2, "attributes": 1}


def softmax_dim(softmax_over: str) -> int:
    """Dimension of ``(B, I, R)`` that ``softmax_over`` names (``"regions"`` -> 2, ``"attributes"`` -> 1)."""
    try:
        return SOFTMAX_DIMS[softmax_over]
    except (KeyError, TypeError):
        raise ValueError(
            f"softmax_over: expected one of {sorted(SOFTMAX_DIMS)}, found {softmax_over!r}"
        ) from None


def check_inputs(features: torch.Tensor, query: torch.Tensor, value: torch.Tensor) -> None:
    """Raise a one-line ``ValueError`` unless features ``(B, C, R)``, query and value ``(I, C)`` agree."""
    if features.dim() != 3:
        raise ValueError(f"features: expected shape (B, C, R), found {tuple(features.shape)}")
    if not features.is_floating_point():
        raise ValueError(f"features: expected a floating-point tensor, found {features.dtype}")
    for name, weight in (("query", query), ("value", value)):
        if weight.dim() != 2 or weight.shape[1] != features.shape[1]:
            raise ValueError(
                f"{name}: expected shape (I, C) with C={features.shape[1]} (the features' channels), "
                f"found {tuple(weight.shape)}"
            )
    if query.shape != value.shape:
        raise ValueError(
            f"value: expected the query's shape {tuple(query.shape)}, found {tuple(value.shape)}"
        )
    for name, tensor in (("query", query), ("value", value)):
        if tensor.dtype != features.dtype or tensor.device != features.device:
            raise ValueError(
                f"{name}: expected dtype {features.dtype} on {features.device} (the features'), "
                f"found {tensor.dtype} on {tensor.device}"
            )


def autocast_inputs(features: torch.Tensor, query: torch.Tensor, value: torch.Tensor):
    """Under autocast (on the features' device), the three inputs in the autocast dtype; else unchanged.

    Mixed dtypes are expected there (``V W`` comes out of an autocast matmul in bfloat16, the
    normalised features stay float32); the op runs its matrix product in the autocast dtype.
    """
    device_type = features.device.type
    if not torch.is_autocast_enabled(device_type):
        return features, query, value
    dtype = torch.get_autocast_dtype(device_type)
    return features.to(dtype), query.to(dtype), value.to(dtype)

