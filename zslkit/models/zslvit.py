"""ZSLViT (Chen et al., "Progressive Semantic-Guided Vision Transformer for Zero-Shot Learning", CVPR 2024).

A DeiT-B/16 (``deit_base_patch16_224``, ImageNet-1k) that owns its backbone
(:class:`~zslkit.models.TokenAttentionModel`), composed of registered parts:

* at blocks 3, 6 and 9 (counted from 0), in training, ``semantic_query`` (adapter at ``queries``):
  ``q_cls <- 0.9 q_cls + 0.1 MLP(A[label])``, recording the MLP's output and a regression of the
  attributes from the changed query;
* at the same blocks, in training and at test, ``keep_attended`` (adapter at ``attention``): the
  ``ceil(0.9 N)`` patch tokens the CLS attends to most stay, the rest are fused into one token
  weighted by that attention (``normalize_fused=False``, as the authors' EViT code); only the CLS row
  of the attention is computed for it;
* the branch ``global_linear``: ``psi = W g + b`` on the final CLS token ``g``, class scores
  ``psi A^T`` with the raw class attributes (scorer ``raw_rows``), predictions the softmax over the
  seen and unseen classes (``probabilities=True``: the authors' calibrated stacking subtracts ``gamma``
  from the seen classes' probabilities);
* losses: ``attribute_ce`` over the seen classes, ``global_alignment`` (L1 of each injection's
  semantic embedding against ``g``) and ``query_regression`` (L1 of each injection's regression
  against ``A[label]``), all weight 1 (the authors' CUB config; AWA2 weighs the cross-entropy 2).

The per-dataset recipes are ``zslkit/configs/zslvit/{cub,sun,awa2}.yaml``; ``docs/zslvit.md``
describes the model, the recipes and what the authors' code does differently.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zslkit.models.token_model import TokenAttentionModel
from zslkit.registry import register

__all__ = ["ZSLViT", "zslvit_adapters"]


def zslvit_adapters(blocks: tuple[int, ...] = (3, 6, 9), keep: float = 0.9, mix: float = 0.1) -> dict[str, Any]:
    """The adapters of ZSLViT at ``blocks``: ``query_<k>`` (``semantic_query``) and ``keep_<k>`` (``keep_attended``)."""
    adapters: dict[str, Any] = {}
    for block in blocks:
        adapters[f"query_{block}"] = {"adapter": "semantic_query", "place": "queries", "block": block, "mix": mix}
        adapters[f"keep_{block}"] = {"adapter": "keep_attended", "place": "attention", "block": block, "keep": keep,
                                     "fuse": True, "normalize_fused": False}
    return adapters


@register("model", "zslvit")
class ZSLViT(TokenAttentionModel):
    """ZSLViT: semantic query injection and attention-guided token keep-and-fuse in a DeiT-B/16 (module docstring)."""

    default_timm_model: ClassVar[str | None] = "deit_base_patch16_224"
    default_backbone_options: ClassVar[dict[str, Any]] = {"drop_path_rate": 0.1}
    default_adapters: ClassVar[dict[str, Any]] = zslvit_adapters()
    default_branches: ClassVar[dict[str, Any]] = {"global": {"attention": "global_linear", "bias": True}}
    default_losses: ClassVar[dict[str, Any]] = {
        "ce": {"loss": "attribute_ce", "classes": "seen", "weight": 1.0},
        "global_alignment": {"loss": "global_alignment", "weight": 1.0},
        "query_regression": {"loss": "query_regression", "weight": 1.0},
    }
    default_options: ClassVar[dict[str, Any]] = {
        "scorer": {"scorer": "raw_rows", "probabilities": True},
        "train_embeddings": False,
        "unit_embeddings": False,
    }
    #: Submodules besides the backbone that train at the recipe's ``backbone_lr`` (the authors' ``vit`` group holds
    #: the ViT and the injection MLPs; their head ``mlp_g`` alone trains at the head's rate):
    #: see :func:`zslkit.optim.param_groups.backbone_rate_parts`.
    backbone_lr_modules: ClassVar[tuple[str, ...]] = ("adapters",)
