"""What adapters see and return: the token sequence of a ViT forward and the model's context.

A :class:`TokenState` is the sequence between two steps of the backbone's forward:
``tokens`` ``(B, T, D)`` = ``num_prefix`` prefix tokens (CLS, distillation, registers)
followed by ``N = T - num_prefix`` patch tokens; ``source`` ``(B, N)`` is, for every
patch token, the index (row-major) of the input patch it stands for on the ``grid``
``(H, W)`` of the input, or ``-1`` for a token that stands for no single patch (a merged
or learnt token); ``None`` while every patch token still stands for its own patch, in order. An adapter that drops or merges tokens updates ``source`` with them, so
that attention maps over the remaining tokens can be put back on the input grid
(:func:`scatter_to_grid`).

At the place ``queries`` the state also carries block ``k``'s attention queries
``(B, heads, T, head_dim)`` (after timm's ``q_norm``); at the place ``attention`` block
``k``'s attention weights ``(B, heads, T, T)`` (softmax over keys, before dropout), or only
their prefix rows ``(B, heads, P, T)`` where every adapter at that place declares
``attention_rows = "prefix"`` (:mod:`zslkit.backbones.adapted_block`).

``extras``: per-image tensors ``(B, ...)`` that adapters record for the model's loss terms,
by adapter entry (:meth:`TokenState.record`; the model puts them in ``ModelOutput.extras[entry]``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

__all__ = ["PLACES", "AdapterContext", "TokenState", "scatter_to_grid"]

#: Where an adapter runs in block ``k`` (from 0) of the backbone's forward:
#: ``before_block``: on the tokens entering the block; ``after_block``: on the tokens leaving it;
#: ``queries``: on the block's attention queries (``state.queries``), returning them changed;
#: ``attention``: after the block's attention sublayer (its residual added, before the MLP),
#: with its weights (``state.attention``), to select or merge tokens.
PLACES: tuple[str, ...] = ("before_block", "after_block", "queries", "attention")


@dataclass(frozen=True)
class AdapterContext:
    """What the model hands every adapter besides the tokens.

    Attributes:
        embeddings: ``(I, D_e)`` the model's attribute embeddings (as its branches see them).
        labels: ``(B,)`` class indices of the batch in training, ``None`` otherwise.
        class_attributes: ``(K, I)`` the model's class-attribute rows (as its class space stores
            them), or ``None``.
        entry: the entry name of the adapter being run (set by
            :meth:`~zslkit.adapters.plan.AdapterPlan.run`), under which it records extras.
        selection: ``(B, N)`` per input patch, what the model decided before this forward
            (1 where a patch is selected, e.g. for replacement; SVIP), ``None`` when it decided nothing.
    """

    embeddings: torch.Tensor
    labels: torch.Tensor | None = None
    class_attributes: torch.Tensor | None = None
    entry: str = ""
    #: ``(1, P, D)`` the backbone's own prefix tokens (CLS, distillation, registers) as they enter block 0 before
    #: the position embedding; filled by the backbone (``None`` until then).
    prefix_tokens: torch.Tensor | None = None
    #: ``(1, P + N, D)`` the position embedding added to this input's tokens (resampled to its grid as timm does;
    #: ``(1, N, D)`` for models whose prefix tokens take none); filled by the backbone, ``None`` for a model without.
    position_embedding: torch.Tensor | None = None
    selection: torch.Tensor | None = None


@dataclass(frozen=True)
class TokenState:
    """The token sequence at one place of the forward (see the module docstring)."""

    tokens: torch.Tensor
    num_prefix: int
    grid: tuple[int, int]
    source: torch.Tensor | None = None
    queries: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    extras: dict[str, dict[str, torch.Tensor]] = dataclasses.field(default_factory=dict)

    @property
    def prefix(self) -> torch.Tensor:
        """``(B, P, D)`` the prefix tokens."""
        return self.tokens[:, : self.num_prefix]

    @property
    def patches(self) -> torch.Tensor:
        """``(B, N, D)`` the patch tokens."""
        return self.tokens[:, self.num_prefix :]

    def replace(self, **changes) -> TokenState:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def record(self, entry: str, **tensors: torch.Tensor) -> TokenState:
        """A copy with ``tensors`` (each ``(B, ...)``) added to ``extras[entry]``."""
        return self.replace(extras={**self.extras, entry: {**self.extras.get(entry, {}), **tensors}})

    def sources(self) -> torch.Tensor:
        """``(B, N)`` ``source``, the identity ``0..N-1`` when it is ``None``."""
        if self.source is not None:
            return self.source
        patches = self.tokens.shape[1] - self.num_prefix
        return torch.arange(patches, device=self.tokens.device).expand(self.tokens.shape[0], patches)


def scatter_to_grid(maps: torch.Tensor, source: torch.Tensor | None, cells: int) -> torch.Tensor:
    """``(B, I, N)`` maps over patch tokens -> ``(B, I, cells)`` over the input grid.

    The value of token ``n`` goes to cell ``source[b, n]``; cells no token stands for get 0,
    tokens with ``source == -1`` are left out. ``source=None`` (every token its own patch):
    the maps come back as they are.
    """
    if source is None:
        return maps
    keep = source >= 0
    index = torch.where(keep, source, cells)  # the dropped ones go to a spare cell, cut off below
    out = maps.new_zeros(*maps.shape[:-1], cells + 1)
    out.scatter_(-1, index[:, None, :].expand(-1, maps.shape[1], -1), maps)
    return out[..., :cells]
