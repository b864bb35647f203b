"""``patch_selection``: the binary cross-entropy of SVIP's patch selector against its rollout targets.

For the selector's probabilities ``p`` ``(B, G)`` that each patch group is unrelated to the
attributes, and targets ``z`` ``(B, G)`` (1 unrelated, 0 kept; from the attention rollout,
:func:`zslkit.adapters.patch_selector.rollout_targets`), read from ``output.extras[branch]``
(``"probabilities"``, ``"targets"``)::

    L = -(1/(B G)) sum_{b,G} z log p + (1 - z) log(1 - p)         (torch's binary_cross_entropy)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zslkit.registry import register

__all__ = ["PatchSelection"]


@register("loss", "patch_selection")
class PatchSelection(nn.Module):
    """BCE of ``extras[branch]["probabilities"]`` against ``extras[branch]["targets"]``."""

    def __init__(self, branch: str = "selector"):
        super().__init__()
        self.branch = branch

    def forward(self, output, labels: torch.Tensor, classes) -> torch.Tensor:
        extras = output.extras.get(self.branch, {})
        if "probabilities" not in extras or "targets" not in extras:
            raise ValueError(f"patch_selection reads output.extras[{self.branch!r}]['probabilities'] and ['targets'] "
                             f"(a model with a patch selector, in training); found {sorted(extras)}")
        return F.binary_cross_entropy(extras["probabilities"], extras["targets"])
