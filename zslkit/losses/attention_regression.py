"""``attention_regression``: attribute scores that adapters computed, regressed onto the label's class attributes.

The adapters of a model that owns its backbone record per-image quantities in
``output.extras[entry]`` (:meth:`zslkit.adapters.TokenState.record`). For every
selected entry and every name in ``keys`` (each ``(B, I)``), with the model's class attributes
``A`` ``(K, I)`` as stored (raw rows for a ``cosine_rows`` scorer):
``L = sum_{entry, key} mean_{b,i} (s_{b,i} - A_{y_b,i})^2``. PSVMA: both max-pooled
attribute->patch attentions of both module passes (four terms).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zslkit.losses.adapter_records import adapter_records
from zslkit.registry import register

__all__ = ["AttentionRegression"]


@register("loss", "attention_regression")
class AttentionRegression(nn.Module):
    """Sum of MSEs of adapter records ``keys`` (of ``entries``; ``None``: every entry with them) onto ``A[labels]``."""

    def __init__(self, entries: Sequence[str] | None = None, keys: Sequence[str] = ("first_scores", "scores")):
        super().__init__()
        self.entries = None if entries is None else list(entries)
        self.keys = list(keys)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        target = classes.attributes[labels]
        found = [r for key in self.keys for r in adapter_records(output, key, self.entries, "attention_regression")]
        return torch.stack([(r - target).square().mean() for r in found]).sum()

    def extra_repr(self) -> str:
        return f"entries={self.entries}, keys={self.keys}"
