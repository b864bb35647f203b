"""Turning the ``branches=`` and ``losses=`` options of a model into parts to build.

Both options map an entry name to a spec:

* a registered component name (``"attribute_to_visual"``), weight 1;
* for losses also a bare number: the weight of the loss registered under the entry name;
* a dict ``{"attention" | "loss": name, "weight": w, **options}``; the component
  name defaults to the entry name, the weight to 1, the rest are options for the
  component's factory.

The ``encoder=`` option is one spec, read by :mod:`zslkit.attention.encoder_spec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

__all__ = ["Part", "parse_parts"]


@dataclass(frozen=True)
class Part:
    """One branch or loss term: ``entry`` name, registered ``component``, ``weight``, factory ``options``."""

    entry: str
    component: str
    weight: float
    options: dict[str, Any] = field(default_factory=dict)

    def to_spec(self, key: str) -> dict[str, Any]:
        """The dict form of the spec (JSON-friendly), e.g. for checkpoints."""
        return {key: self.component, "weight": self.weight, **self.options}


def parse_parts(specs: Mapping[str, Any], *, key: str, option: str) -> list[Part]:
    """Parse ``specs`` (see the module docstring); ``key`` is ``"attention"`` or ``"loss"``.

    ``option`` names the model option in error messages.
    """
    if not isinstance(specs, Mapping) or not specs:
        raise ValueError(f"{option} must be a non-empty dict of name -> spec, got {specs!r}")
    parts = []
    for entry, spec in specs.items():
        if isinstance(spec, str):
            parts.append(Part(entry, spec, 1.0))
        elif isinstance(spec, Real) and not isinstance(spec, bool) and key == "loss":
            parts.append(Part(entry, entry, float(spec)))
        elif isinstance(spec, Mapping):
            options = dict(spec)
            component = options.pop(key, entry)
            weight = options.pop("weight", 1.0)
            if not isinstance(component, str):
                raise ValueError(f"{option}[{entry!r}][{key!r}] must be a registered name, got {component!r}")
            if not isinstance(weight, Real) or isinstance(weight, bool):
                raise ValueError(f"{option}[{entry!r}]['weight'] must be a number, got {weight!r}")
            parts.append(Part(entry, component, float(weight), options))
        else:
            expected = "a registered name, a weight or a dict" if key == "loss" else "a registered name or a dict"
            raise ValueError(f"{option}[{entry!r}] must be {expected}, got {spec!r}")
    return parts
