"""``psvma``: PSVMA, progressive semantic-visual mutual adaption (Liu et al., CVPR 2023), from registered parts.

A :class:`~zslkit.models.token_model.TokenAttentionModel` over a ViT-B/16 (``vit_base_patch16_224``,
built without its final norm: the authors' model never applies it), composed of:

* adapter ``dsvtm`` (``dual_semantic_visual``) after block 11 (index ``-2``): the patch tokens
  and the prototypes ``P = E W`` of the fixed raw word vectors ``E`` go through the dual
  semantic-visual module;
* adapter ``reembed`` at the same place: the initial CLS token replaces the CLS token and the
  position embedding is added again, before block 12;
* adapter ``dsvtm_2`` after block 12 (index ``-1``): the same module again (``share``: the same weights);
* branch ``base`` (``cosine_global`` with scale 25 and ``V`` of std 0.01): the average-pooled
  patch tokens times ``V`` ``(D, I)``, scored by cosine with the raw class attributes
  (scorer ``cosine_rows``, eps 1e-5 on both norms), ``y = 25 cos(mean_n x_n V, a_k)``;
* losses: cross-entropy over the seen classes (1), ``attention_regression`` of the four
  max-pooled attribute->patch attentions onto the label's attributes (0.5, summed),
  ``debias`` over seen vs unseen class scores (0.001; **reads the unseen classes' attributes
  in training**; ``reference: absent_seen`` is the strictly inductive variant).

The dataset-specific settings (the gate's attribute groups, the debias weight) are in the
recipes ``zslkit/configs/psvma``; the math and the protocol are in ``docs/psvma.md``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zslkit.models.gem_zsl import GEMZSL
from zslkit.models.token_model import TokenAttentionModel
from zslkit.registry import register

__all__ = ["PSVMA"]


@register("model", "psvma")
class PSVMA(TokenAttentionModel):
    """PSVMA; every argument as in :class:`TokenAttentionModel`, with PSVMA's defaults (CUB's groups and weights)."""

    default_timm_model: ClassVar[str | None] = "vit_base_patch16_224"
    default_backbone_options: ClassVar[dict[str, Any]] = {"final_norm": False}
    default_adapters: ClassVar[dict[str, Any]] = {
        "dsvtm": {"adapter": "dual_semantic_visual", "place": "after_block", "block": -2, "groups": 28},
        "reembed": {"adapter": "reembed", "place": "after_block", "block": -2},
        "dsvtm_2": {"share": "dsvtm", "place": "after_block", "block": -1},
    }
    #: GEM-ZSL's (the authors' code base grew from it): raw class attributes scored as ``a_k / (||a_k|| + 1e-5)``,
    #: the raw, fixed word vectors, the tokens as they are
    default_options: ClassVar[dict[str, Any]] = dict(GEMZSL.default_options)
    default_branches: ClassVar[dict[str, Any]] = {
        "base": {"attention": "cosine_global", "weight": 1.0, "scale": 25.0, "init_std": 0.01},
    }
    default_losses: ClassVar[dict[str, Any]] = {
        "attribute_ce": {"branches": ["base"], "classes": "seen", "weight": 1.0},
        "attention_regression": {"keys": ["first_scores", "scores"], "weight": 0.5},
        "debias": {"branches": ["base"], "reference": "unseen", "weight": 0.001},
    }
