"""``query_regression``: class attributes regressed from the semantically changed CLS query.

For every adapter entry ``e`` that recorded ``query_attributes`` ``r_e`` ``(B, I)`` (``semantic_query``:
an MLP of the changed CLS query) and the class attributes of the labels ``a = A[label]`` ``(B, I)``
(the class space's rows, as the model scores them), ``L = sum_e mean_{b,i} |r_{e,b,i} - a_{b,i}|``
(ZSLViT's ``loss_sr``: ``F.l1_loss`` per injection block, summed).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zslkit.losses.adapter_records import adapter_records
from zslkit.registry import register

__all__ = ["QueryRegression"]


@register("loss", "query_regression")
class QueryRegression(nn.Module):
    """Sum over adapter entries of the mean absolute error of their ``query_attributes`` record against ``A[label]``.

    ``adapters``: the entries to read (default: every entry that recorded ``query_attributes``).
    """

    def __init__(self, adapters: Sequence[str] | None = None) -> None:
        super().__init__()
        self.adapters = None if adapters is None else list(adapters)

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        target = classes.attributes[labels]
        found = adapter_records(output, "query_attributes", self.adapters, "query_regression")
        return torch.stack([F.l1_loss(r, target.to(r.dtype)) for r in found]).sum()
