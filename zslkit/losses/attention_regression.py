"""``attention_regression``: attribute scores that adapters computed, regressed onto the label's class attributes.

The adapters of a model that owns its backbone put per-image quantities in
``output.extras["adapters"]`` as ``"{entry}.{name}"`` (:mod:`zslkit.adapters.tokens`). For every
selected entry and every name in ``keys`` (each ``(B, I)``), with the model's class attributes
``A`` ``(K, I)`` as stored (raw rows for a ``cosine_rows`` scorer):
``L = sum_{entry, key} mean_{b,i} (s_{b,i} - A_{y_b,i})^2``. PSVMA: both max-pooled
attribute->patch attentions of both module passes (four terms).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zslkit.contracts import ContractError
from zslkit.registry import register

__all__ = ["AttentionRegression"]


@register("loss", "attention_regression")
class AttentionRegression(nn.Module):
    """Sum of MSEs of adapter outputs ``keys`` (of ``entries``; ``None``: every entry that has them) onto ``A[labels]``."""

    def __init__(self, entries: Sequence[str] | None = None, keys: Sequence[str] = ("first_scores", "scores")):
        super().__init__()
        self.entries = None if entries is None else list(entries)
        self.keys = list(keys)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        extras = output.extras.get("adapters", {})
        if self.entries is None:
            names = [n for n in extras if n.rpartition(".")[2] in self.keys]
        else:
            names = [f"{e}.{k}" for e in self.entries for k in self.keys]
        missing = [n for n in names if n not in extras]
        if missing or not names:
            raise ContractError(f"loss 'attention_regression' needs adapter outputs {missing[:1] or self.keys} "
                                f"(entry.key); the model's adapters gave {sorted(extras)}")
        target = classes.attributes[labels]
        return torch.stack([(extras[n] - target).square().mean() for n in names]).sum()

    def extra_repr(self) -> str:
        return f"entries={self.entries}, keys={self.keys}"
