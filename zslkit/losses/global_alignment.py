"""``global_alignment``: the semantic embeddings an adapter mixed into the queries, pulled towards the final global token.

For every adapter entry ``e`` that recorded ``semantic`` ``s_e`` ``(B, D)`` (``semantic_query``:
the MLP of the label's attributes) and the model's global token ``g`` ``(B, D)`` (the CLS token after
the final norm), ``L = sum_e mean_{b,d} |s_{e,b,d} - g_{b,d}|`` (ZSLViT's ``loss_global_alignment``:
``F.l1_loss`` per injection block, summed). Gradients reach both ``s`` and ``g``.
``adapters``: the entries to read (default: every entry that recorded ``semantic``).
"""

from __future__ import annotations

import torch

from zslkit.losses.adapter_records import RecordL1
from zslkit.registry import register

__all__ = ["GlobalAlignment"]


@register("loss", "global_alignment")
class GlobalAlignment(RecordL1):
    """Sum over adapter entries of the mean absolute difference of their ``semantic`` record and the global token."""

    record = "semantic"

    def target(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        if output.global_token is None:
            raise ValueError("loss 'global_alignment' needs the model's global (CLS) token (ModelOutput.global_token): "
                             "use it with a model that owns a ViT backbone")
        return output.global_token
