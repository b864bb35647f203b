"""Encoder specs, as the ``encoder=`` option of models and branches takes them.

A spec is ``None`` (no encoder), a registered ``encoder`` name, or a dict
``{"encoder": name, **options}``. :func:`build_encoder` calls the registered factory as
``factory(feature_dim=C, **options)``; the module has an ``output_dim`` and maps
``forward(features (B, C, R), grid)`` to ``(B, output_dim, R)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from zslkit.registry import create

__all__ = ["build_encoder", "parse_encoder_spec"]


def parse_encoder_spec(spec: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``None``, ``"name"`` or ``{"encoder": name, **options}`` -> ``None`` or the dict form."""
    if spec is None:
        return None
    if isinstance(spec, str):
        return {"encoder": spec}
    if isinstance(spec, Mapping) and isinstance(spec.get("encoder"), str):
        return dict(spec)
    raise ValueError(
        f"encoder must be None, a registered encoder name or {{'encoder': name, **options}}, got {spec!r}"
    )


def build_encoder(spec: str | Mapping[str, Any] | None, feature_dim: int) -> nn.Module | None:
    """The encoder a spec names, built for ``feature_dim`` input channels (``None`` for no encoder)."""
    parsed = parse_encoder_spec(spec)
    if parsed is None:
        return None
    options = {k: v for k, v in parsed.items() if k != "encoder"}
    return create("encoder", parsed["encoder"], feature_dim=feature_dim, **options)
