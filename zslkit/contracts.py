"""Component contracts, checked when a component is registered and when it is first used.

The contracts are documented in ``docs/concepts.md``. A factory that cannot
satisfy its kind's contract is refused with a one-line error that names where
it came from (module or plugin).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = [
    "ContractError",
    "REQUIRED_OPTIONS",
    "check_attention_output",
    "check_backbone_output",
    "check_factory",
    "check_loss_output",
    "describe_component",
]


class ContractError(TypeError):
    """A component does not follow the contract of its kind."""


#: Keyword options each kind's factory must accept.
REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {
    "attention": ("feature_dim", "embedding_dim", "num_attributes"),
}


def check_factory(kind: str, name: str, factory: Callable[..., Any], *, source: str = "") -> None:
    """Refuse a factory whose signature cannot take the options its kind is built with."""
    required = REQUIRED_OPTIONS.get(kind, ())
    if not required:
        return
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    missing = [opt for opt in required if opt not in params]
    if missing:
        where = f" ({source})" if source else ""
        raise ContractError(
            f"{kind} {name!r}{where}: factory must accept keyword options "
            f"{', '.join(required)}; missing {', '.join(missing)}"
        )


def describe_component(kind: str, name: str) -> str:
    """``"<module>.<Class> (plugin <dist> <version>)"``: where the registered component came from."""
    from zslkit.registry import ComponentNotFoundError, component_info

    try:
        return str(component_info(kind, name).origin)
    except ComponentNotFoundError:
        return "not registered"


def _where(source: str) -> str:
    return f" ({source})" if source else ""


def check_attention_output(
    output: Any, *, batch: int, num_attributes: int, regions: int, name: str, source: str = ""
) -> None:
    """Check an attention block's forward result: ``.scores`` (B, I), ``.maps`` (B, I, R) or None.

    ``source`` (e.g. :func:`describe_component`'s answer) is named in the error, so a
    faulty plugin block is blamed on its plugin.
    """
    scores = getattr(output, "scores", None)
    if scores is None or tuple(scores.shape) != (batch, num_attributes):
        found = None if scores is None else tuple(scores.shape)
        raise ContractError(
            f"attention {name!r}{_where(source)}: forward must return an object with .scores of shape "
            f"({batch}, {num_attributes}); found {found}"
        )
    maps = getattr(output, "maps", None)
    if maps is not None and tuple(maps.shape) != (batch, num_attributes, regions):
        raise ContractError(
            f"attention {name!r}{_where(source)}: .maps must have shape ({batch}, {num_attributes}, {regions}) "
            f"or be None; found {tuple(maps.shape)}"
        )


def check_loss_output(value: Any, *, name: str, source: str = "") -> None:
    """A loss term's forward must return a scalar floating-point tensor."""
    import torch

    if not isinstance(value, torch.Tensor) or value.ndim != 0 or not value.is_floating_point():
        found = f"tensor of shape {tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise ContractError(f"loss {name!r}{_where(source)}: forward must return a scalar float tensor; found {found}")


def check_backbone_output(features: Any, *, batch: int, feature_dim: int | None, name: str, source: str = "") -> None:
    """A backbone maps ``(B, 3, S, S)`` images to a ``(B, C, H, W)`` map with ``C == .feature_dim``."""
    shape = tuple(getattr(features, "shape", ()))
    if len(shape) != 4 or shape[0] != batch or (feature_dim is not None and shape[1] != feature_dim):
        channels = "C" if feature_dim is None else str(feature_dim)
        raise ContractError(
            f"backbone {name}{_where(source)}: forward must return feature maps of shape ({batch}, {channels}, H, W); "
            f"found {shape if shape else type(features).__name__}"
        )
