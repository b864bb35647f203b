"""``gem_zsl``: GEM-ZSL, Goal-oriented gaze Estimation Module (Liu et al., CVPR 2021).

Two branches over the raw (not normalised) region features ``x`` ``(B, C, R)``:

* ``base`` (``cosine_global``, weight 1): ``psi = s * (x_bar V_g) / (||x_bar V_g|| + eps)``
  with ``x_bar`` the average-pooled features and ``s = 20``; scored through
  ``a_k / (||a_k|| + eps)`` (the scorer ``cosine_rows``), its class scores are the
  scaled cosine ``s cos(x_bar V_g, a_k)``;
* ``attention`` (``attribute_to_visual`` with ``pool="max"``, weight 0: trained, not used
  to predict): queries ``q_i = v_i W`` from the fixed raw word vectors ``v_i``,
  ``a = softmax_r(q_i . x_r)``, ``psi = max_r a``.

Loss (``config/GEMZSL/cub_4w_2s.yaml``): cross-entropy over the seen classes of the base
branch + 1.0 attribute regression of the attention scores onto the raw class attributes
+ 0.1 decorrelation of the queries over the attribute groups (mean over channels of the
per-channel norm, mean over groups) + 0.2 compactness of the attention maps (mean).
The gaze loss file of the authors' repository is never called by their training. The math
is in ``docs/apn_gem.md``; ``zslkit/configs/gem_zsl`` holds the per-dataset recipes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zslkit.models.attention_model import AttentionZSLModel
from zslkit.registry import register

__all__ = ["GEMZSL"]


@register("model", "gem_zsl")
class GEMZSL(AttentionZSLModel):
    """GEM-ZSL; every argument as in :class:`AttentionZSLModel`, with GEM-ZSL's defaults (``default_options``)."""

    #: Raw class attributes scored as ``a_k / (||a_k|| + 1e-5)``, no margin; raw region features; the raw, fixed word vectors.
    default_options: ClassVar[dict[str, Any]] = {
        "scorer": {"scorer": "cosine_rows", "eps": 1e-5, "margin": 0.0},
        "normalize_features": False,
        "train_embeddings": False,
        "unit_embeddings": False,
    }

    default_branches: ClassVar[dict[str, Any]] = {
        "base": {"attention": "cosine_global", "weight": 1.0, "scale": 20.0},
        "attention": {"attention": "attribute_to_visual", "weight": 0.0, "pool": "max", "attention_init": "normal"},
    }
    default_losses: ClassVar[dict[str, Any]] = {
        "attribute_ce": {"branches": ["base"], "classes": "seen", "weight": 1.0},
        "attribute_regression": {"branches": ["attention"], "weight": 1.0},
        "attribute_decorrelation": {"branches": ["attention"], "key": "queries", "norm": "channel", "reduction": "mean", "eps": 0.0, "weight": 0.1},
        "compactness": {"branches": ["attention"], "activation": "none", "reduction": "mean", "weight": 0.2},
    }
