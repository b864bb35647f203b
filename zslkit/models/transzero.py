"""``transzero`` and ``transzero_pp``: TransZero (Chen et al., AAAI 2022) and TransZero++ (Chen et al., TPAMI 2022).

``transzero``: the shared ``geometry_encoder`` (region tokens of width ``d = 300``, one
encoder layer with the relative-geometry term) and one ``attribute_query_decoder`` branch
``s2v``, trained with ``attribute_ce`` + 0.3 ``self_calibration`` + 0.005
``attribute_regression`` (the CUB GZSL setting of the authors' code).

``transzero_pp``: two streams over the same features, each owning its encoder:
``s2v`` (``attribute_query_decoder``, weight 0.9) and ``v2s`` (``region_query_decoder``,
weight 0.1). Loss (CUB GZSL): ``L(s2v) + 0.1 L(v2s) + 0.001 attribute_consistency +
0.01 class_consistency`` with ``L = CE + 0.2 SC + 0.0001 reg`` per stream, so the v2s
terms carry the products of the weights. The math is in ``docs/transzero.md``; the
SUN and AWA2 recipes are in ``zslkit/configs/transzero*/``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zslkit.models.attention_model import AttentionZSLModel
from zslkit.registry import register

__all__ = ["TransZero", "TransZeroPP", "transformer_options"]


def transformer_options(dim: int = 300, ffn_dim: int = 512, dropout: float = 0.4, attention_dropout: float = 0.1) -> dict[str, Any]:
    """The ``geometry_encoder`` spec of the authors' ``Transformer`` with width ``dim`` (``tf_common_dim``)."""
    return {"encoder": "geometry_encoder", "dim": dim, "ffn_dim": ffn_dim, "dropout": dropout, "attention_dropout": attention_dropout}


@register("model", "transzero")
class TransZero(AttentionZSLModel):
    """TransZero; every argument as in :class:`AttentionZSLModel` (``encoder=None``: the geometry encoder)."""

    default_recompute_activations: ClassVar[bool] = True

    default_encoder: ClassVar[dict[str, Any]] = transformer_options()
    default_branches: ClassVar[dict[str, Any]] = {
        "s2v": {"attention": "attribute_query_decoder", "weight": 1.0, "heads": 1, "ffn_dim": 512, "dropout": 0.4, "self_attention": True},
    }
    default_losses: ClassVar[dict[str, Any]] = {
        "attribute_ce": 1.0,
        "self_calibration": 0.3,
        "attribute_regression": 0.005,
    }


def _stream(attention: str, weight: float, **options: Any) -> dict[str, Any]:
    return {"attention": attention, "weight": weight, "heads": 1, "ffn_dim": 512, "dropout": 0.4,
            "self_attention": True, "encoder": transformer_options(), **options}


@register("model", "transzero_pp")
class TransZeroPP(AttentionZSLModel):
    """TransZero++; every argument as in :class:`AttentionZSLModel`."""

    default_recompute_activations: ClassVar[bool] = True

    default_branches: ClassVar[dict[str, Any]] = {
        "s2v": _stream("attribute_query_decoder", 0.9),
        "v2s": _stream("region_query_decoder", 0.1, score_init="zeros"),
    }
    default_losses: ClassVar[dict[str, Any]] = {
        "attribute_ce": {"weight": 1.0, "branches": ["s2v"]},
        "self_calibration": {"weight": 0.2, "branches": ["s2v"]},
        "attribute_regression": {"weight": 1e-4, "branches": ["s2v"]},
        "attribute_ce_v2s": {"loss": "attribute_ce", "weight": 0.1, "branches": ["v2s"]},
        "self_calibration_v2s": {"loss": "self_calibration", "weight": 0.02, "branches": ["v2s"]},
        "attribute_regression_v2s": {"loss": "attribute_regression", "weight": 1e-5, "branches": ["v2s"]},
        "attribute_consistency": 0.001,
        "class_consistency": 0.01,
    }
