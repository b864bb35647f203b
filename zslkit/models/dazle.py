"""``dazle``: DAZLE, Dense Attention Zero-shot LEarning (Huynh & Elhamifar, CVPR 2020).

The same assembly as MSDN with one branch, ``gated_attribute_to_visual`` (the
attribute-to-visual block plus DAZLE's attention over attributes), trained with
``attribute_ce`` + 0.1 ``self_calibration`` (its authors' lambda on every dataset). Its recipes,
``zslkit/configs/dazle/<dataset>.yaml``, carry the settings of the authors' notebooks.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zslkit.models.attention_model import AttentionZSLModel
from zslkit.registry import register

__all__ = ["DAZLE"]


@register("model", "dazle")
class DAZLE(AttentionZSLModel):
    """DAZLE; every argument as in :class:`AttentionZSLModel`."""

    default_branches: ClassVar[dict[str, Any]] = {"dazle": {"attention": "gated_attribute_to_visual", "weight": 1.0}}
    default_losses: ClassVar[dict[str, Any]] = {"attribute_ce": 1.0, "self_calibration": 0.1}
