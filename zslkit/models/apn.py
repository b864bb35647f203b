"""``apn``: APN, Attribute Prototype Network (Xu et al., NeurIPS 2020).

Two branches over the raw (not normalised) region features ``x`` ``(B, C, R)``:

* ``global`` (``ale_global``, weight 1): ``psi^g = pool_r(W x_r)``, max-pooled on CUB,
  average-pooled on SUN and AwA2 (the scripts' ``--avg_pool``);
* ``local`` (``prototype``, weight 0: trained, not used to predict): ``M = P x``,
  ``psi^l = max_r M``.

Class scores ``psi A^T`` with the raw class attributes and no margin; the prediction is the
global branch's ``softmax_k(psi^g A^T)``, as the authors' model returns (the scorer
``{"scorer": "raw_rows", "probabilities": True}``). Loss (the weights of
``script/CUB_GZSL.sh``): cross-entropy of the seen-class probabilities of each branch
(``on_probabilities``: the authors apply ``nn.CrossEntropyLoss`` to them), attribute
regression of each branch, the group lasso of ``W`` and ``P`` over the attribute groups,
and the compactness of the local maps (sigmoid, summed). The math is in ``docs/apn_gem.md``;
``zslkit/configs/apn`` holds the per-dataset recipes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zslkit.models.attention_model import AttentionZSLModel
from zslkit.registry import register

__all__ = ["APN"]

_CE = {"loss": "attribute_ce", "classes": "seen", "on_probabilities": True}
_LASSO = {"loss": "attribute_decorrelation", "key": "weights", "norm": "frobenius", "reduction": "sum"}


@register("model", "apn")
class APN(AttentionZSLModel):
    """APN; every argument as in :class:`AttentionZSLModel`, with APN's defaults (``default_options``)."""

    #: Raw class attributes, no margin, the prediction from probabilities; raw region features; fixed ``V``.
    default_options: ClassVar[dict[str, Any]] = {
        "scorer": {"scorer": "raw_rows", "margin": 0.0, "probabilities": True},
        "normalize_features": False,
        "train_embeddings": False,
    }

    default_branches: ClassVar[dict[str, Any]] = {
        "global": {"attention": "ale_global", "weight": 1.0, "pool": "max"},
        "local": {"attention": "prototype", "weight": 0.0},
    }
    default_losses: ClassVar[dict[str, Any]] = {
        "xe_global": {**_CE, "branches": ["global"], "weight": 1.0},
        "attri_global": {"loss": "attribute_regression", "branches": ["global"], "weight": 1e-2},
        "regular_global": {**_LASSO, "branches": ["global"], "weight": 5e-5},
        "xe_local": {**_CE, "branches": ["local"], "weight": 1.0},
        "attri_local": {"loss": "attribute_regression", "branches": ["local"], "weight": 1e-1},
        "regular_local": {**_LASSO, "branches": ["local"], "weight": 4e-2},
        "cpt": {"loss": "compactness", "branches": ["local"], "activation": "sigmoid", "reduction": "sum", "weight": 1e-9},
    }
