"""Component contracts, checked when a component is registered and when it is first used.

The contracts are documented in ``docs/concepts.md``. A factory that cannot
satisfy its kind's contract is refused with a one-line error that names where
it came from (module or plugin).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["ContractError", "REQUIRED_OPTIONS", "check_factory", "check_attention_output"]


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


def check_attention_output(output: Any, *, batch: int, num_attributes: int, regions: int, name: str) -> None:
    """Check an attention block's forward result: ``.scores`` (B, I), ``.maps`` (B, I, R) or None."""
    scores = getattr(output, "scores", None)
    if scores is None or tuple(scores.shape) != (batch, num_attributes):
        found = None if scores is None else tuple(scores.shape)
        raise ContractError(
            f"attention {name!r}: forward must return an object with .scores of shape "
            f"({batch}, {num_attributes}); found {found}"
        )
    maps = getattr(output, "maps", None)
    if maps is not None and tuple(maps.shape) != (batch, num_attributes, regions):
        raise ContractError(
            f"attention {name!r}: .maps must have shape ({batch}, {num_attributes}, {regions}) or be None; "
            f"found {tuple(maps.shape)}"
        )
