"""``example_temperature_msdn``: MSDN's assembly with this plugin's attention block as its
visual->attribute branch, a model of its own with its own recipe
(``configs/example_temperature_msdn/synthetic.yaml``, shipped as package data)."""

from __future__ import annotations

from typing import Any, ClassVar

from zslkit.models.attention_model import AttentionZSLModel


class TemperatureMSDN(AttentionZSLModel):
    """``a2v`` (``attribute_to_visual``, weight 0.9) and ``v2a`` (``example_temperature_attention``
    at temperature 0.5, weight 0.1), trained with MSDN's loss terms and weights."""

    default_branches: ClassVar[dict[str, Any]] = {
        "a2v": {"attention": "attribute_to_visual", "weight": 0.9},
        "v2a": {"attention": "example_temperature_attention", "weight": 0.1, "temperature": 0.5},
    }
    default_losses: ClassVar[dict[str, Any]] = {
        "attribute_ce": 1.0,
        "self_calibration": 0.1,
        "semantic_distillation": 0.001,
    }
