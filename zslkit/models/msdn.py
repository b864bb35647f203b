"""``msdn``: MSDN, Mutually Semantic Distillation Network (Chen et al., CVPR 2022).

Two branches over the same region features and attribute embeddings,
``attribute_to_visual`` (``a2v``, weight 0.9) and ``visual_to_attribute`` (``v2a``,
weight 0.1), trained with ``attribute_ce`` + 0.1 ``self_calibration`` on each branch
and 0.001 ``semantic_distillation`` between them (the CUB setting of the authors'
code; these defaults are the one home of its loss weights: its recipes
``zslkit/configs/msdn/<dataset>.yaml`` state only the weights that differ, e.g. on SUN and
AWA2). The math is in ``docs/msdn.md``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zslkit.models.attention_model import AttentionZSLModel
from zslkit.registry import register

__all__ = ["MSDN"]


@register("model", "msdn")
class MSDN(AttentionZSLModel):
    """MSDN; every argument as in :class:`AttentionZSLModel`."""

    default_branches: ClassVar[dict[str, Any]] = {
        "a2v": {"attention": "attribute_to_visual", "weight": 0.9},
        "v2a": {"attention": "visual_to_attribute", "weight": 0.1},
    }
    default_losses: ClassVar[dict[str, Any]] = {
        "attribute_ce": 1.0,
        "self_calibration": 0.1,
        "semantic_distillation": 0.001,
    }
