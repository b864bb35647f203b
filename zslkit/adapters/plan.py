"""The ``adapters=`` option of a model that owns its backbone, and the adapters it builds.

The option maps an entry name to a spec ``{"adapter": name, "place": place, "block": k, **options}``
(``adapter`` defaults to the entry name): the registered adapter ``name`` runs at ``place``
(one of :data:`~zslkit.adapters.tokens.PLACES`) of block ``k`` (from 0; negative counts from
the last block), built as ``factory(token_dim=D, embedding_dim=D_e, num_attributes=I, **options)``.
Several adapters at one place run in the order the option lists them.

``{"share": other_entry, "place": ..., "block": k}`` runs the module of ``other_entry`` (same
weights, e.g. one module applied after two blocks) at another place; such an entry takes no
options of its own, and records its extras under its own entry name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from zslkit.adapters.tokens import PLACES, AdapterContext, TokenState
from zslkit.contracts import ContractError, describe_component
from zslkit.registry import create

__all__ = ["AdapterPlan", "AdapterSpec", "parse_adapter_specs"]


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter: ``entry`` name, registered ``component``, ``place``, ``block`` and factory ``options``."""

    entry: str
    component: str
    place: str
    block: int
    options: dict[str, Any] = field(default_factory=dict)
    #: the entry whose module (weights) this one runs, or ``None`` for its own
    share: str | None = None

    def to_spec(self) -> dict[str, Any]:
        """The dict form (JSON-friendly), as checkpoints record it."""
        if self.share is not None:
            return {"share": self.share, "place": self.place, "block": self.block}
        return {"adapter": self.component, "place": self.place, "block": self.block, **self.options}


def parse_adapter_specs(specs: Mapping[str, Any] | None, depth: int) -> list[AdapterSpec]:
    """Parse the ``adapters=`` option (see the module docstring) for a backbone of ``depth`` blocks."""
    if specs is None:
        return []
    if not isinstance(specs, Mapping):
        raise ValueError(f"adapters must be a dict of name -> {{'adapter': name, 'place': ..., 'block': k}}, got {specs!r}")
    parsed: list[AdapterSpec] = []
    for entry, spec in specs.items():
        if not isinstance(spec, Mapping):
            raise ValueError(f"adapters[{entry!r}] must be a dict {{'adapter': name, 'place': ..., 'block': k}}, got {spec!r}")
        options = dict(spec)
        share = options.pop("share", None)
        component, place, block = options.pop("adapter", entry), options.pop("place", None), options.pop("block", None)
        if place not in PLACES:
            raise ValueError(f"adapters[{entry!r}]['place'] must be one of {PLACES}, got {place!r}")
        if not isinstance(block, int) or isinstance(block, bool) or not -depth <= block < depth:
            raise ValueError(f"adapters[{entry!r}]['block'] must be a block index in [{-depth}, {depth}) of this "
                             f"{depth}-block backbone, got {block!r}")
        if share is not None:
            owner = next((p for p in parsed if p.entry == share and p.share is None), None)
            if owner is None or options or "adapter" in spec:
                raise ValueError(f"adapters[{entry!r}]['share'] must name an earlier entry with its own module and come "
                                 f"with only 'place' and 'block'; got {spec!r} (entries before it: {[p.entry for p in parsed]})")
            component, options = owner.component, {}
        parsed.append(AdapterSpec(entry, component, place, block % depth, options, share))
    return parsed


class AdapterPlan(nn.Module):
    """The built adapters of a model, by place: what the backbone's forward calls (see :mod:`zslkit.adapters`).

    ``modules``: entry -> adapter (a ``ModuleDict``: its parameters are the model's).
    """

    def __init__(self, specs: list[AdapterSpec], *, token_dim: int, embedding_dim: int, num_attributes: int) -> None:
        super().__init__()
        shape = {"token_dim": token_dim, "embedding_dim": embedding_dim, "num_attributes": num_attributes}
        self.specs = list(specs)
        self.by_entry = nn.ModuleDict({s.entry: create("adapter", s.component, **shape, **s.options)
                                       for s in specs if s.share is None})
        #: entry -> the entry whose module it runs (itself, or the one it shares)
        self._module_of = {s.entry: s.share or s.entry for s in specs}
        self._at: dict[tuple[str, int], list[str]] = {}
        for s in specs:
            self._at.setdefault((s.place, s.block), []).append(s.entry)

    def has(self, place: str, block: int) -> bool:
        """Whether an adapter runs at ``place`` of ``block``."""
        return (place, block) in self._at

    def prefix_rows_only(self, block: int) -> bool:
        """Whether adapters run at ``attention`` of ``block`` and every one reads only the prefix rows of the weights
        (declares ``attention_rows = "prefix"``): the backbone then computes those rows alone."""
        entries = self._at.get(("attention", block), ())
        return bool(entries) and all(getattr(self.by_entry[self._module_of[e]], "attention_rows", "all") == "prefix" for e in entries)

    def run(self, place: str, block: int, state: TokenState, context: AdapterContext) -> TokenState:
        """``state`` through every adapter at ``place`` of ``block``, in order, each checked."""
        for entry in self._at.get((place, block), ()):
            result = self.by_entry[self._module_of[entry]](state, dataclasses.replace(context, entry=entry))
            self._check(entry, state, result)
            state = result
        return state

    def _check(self, entry: str, before: TokenState, after: Any) -> None:
        spec = next(s for s in self.specs if s.entry == entry)
        where = f"adapter {spec.component!r} (entry {entry!r}, {describe_component('adapter', spec.component)})"
        if not isinstance(after, TokenState):
            raise ContractError(f"{where}: forward must return a zslkit.adapters.TokenState; found {type(after).__name__}")
        batch, _, width = before.tokens.shape
        tokens = tuple(after.tokens.shape)
        if len(tokens) != 3 or tokens[0] != batch or tokens[2] != width or after.num_prefix != before.num_prefix:
            raise ContractError(f"{where}: must keep the batch, the token width and the {before.num_prefix} prefix tokens; "
                                f"tokens {tuple(before.tokens.shape)} became {tokens}")
        patches = tokens[1] - after.num_prefix
        if after.source is not None and tuple(after.source.shape) != (batch, patches):
            raise ContractError(f"{where}: source must be ({batch}, {patches}), one input patch per patch token; "
                                f"found {tuple(after.source.shape)}")
        if after.source is None and tokens[1] != before.tokens.shape[1]:
            raise ContractError(f"{where}: changed the number of tokens without giving their source (input patch indices)")
        if spec.place == "queries" and (after.queries is None or after.queries.shape != before.queries.shape
                                        or tokens != tuple(before.tokens.shape)):
            raise ContractError(f"{where}: at 'queries' it must return the queries {tuple(before.queries.shape)} "
                                "changed in place of the old ones, and the tokens as they were")

    def extra_repr(self) -> str:
        return ", ".join(f"{s.entry}={s.share or s.component}@{s.place}:{s.block}" for s in self.specs)
