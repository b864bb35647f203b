"""``query_regression``: class attributes regressed from the semantically changed CLS query.

For every adapter entry ``e`` that recorded ``query_attributes`` ``r_e`` ``(B, I)`` (``semantic_query``:
an MLP of the changed CLS query) and the class attributes of the labels ``a = A[label]`` ``(B, I)``
(the class space's rows, as the model scores them), ``L = sum_e mean_{b,i} |r_{e,b,i} - a_{b,i}|``
(ZSLViT's ``loss_sr``: ``F.l1_loss`` per injection block, summed).
``adapters``: the entries to read (default: every entry that recorded ``query_attributes``).
"""

from __future__ import annotations

import torch

from zslkit.losses.adapter_records import RecordL1
from zslkit.registry import register

__all__ = ["QueryRegression"]


@register("loss", "query_regression")
class QueryRegression(RecordL1):
    """Sum over adapter entries of the mean absolute error of their ``query_attributes`` record against ``A[label]``."""

    record = "query_attributes"

    def target(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        return classes.attributes[labels]
