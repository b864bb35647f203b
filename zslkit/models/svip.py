"""``svip``: SVIP, Semantically Contextualized Visual Patches (Chen et al., ICCV 2025).

A ViT (ViT-B/16 at 224 px in the paper) that the model owns, read in ``g x g`` groups of patches
(2 x 2: a 7 x 7 grid of groups on 14 x 14 patches). For images ``x`` ``(B, 3, S, S)``:

1. the **patch selector** (:class:`~zslkit.adapters.PatchSelector`) gives every group of patch
   embeddings the probability ``p`` ``(B, G)`` that it is unrelated to the attributes;
2. training only, the **source branch**: the whole image through the ViT; its attention
   rollout ``R`` (:class:`~zslkit.ops.attention_rollout.AttentionRollout`: a running product,
   no attention kept, no gradient) gives the ``keep`` groups of largest CLS-row score, which are
   the selector's targets (0 kept, 1 the others) and the groups the head pools (``psi^s``);
3. the **target branch**: the groups not kept (training: by the rollout; evaluation: the
   ``keep`` groups of lowest ``p``) get the **semantic tokens** added (the ``semantic_tokens``
   adapter at block 0: two linear maps of the attribute word vectors), the ViT runs again, and
   the head (``group_head``) pools the ``keep`` groups most similar to their mean (training)
   or every group (evaluation) into ``psi^t``;
4. class scores ``y = psi . a_k / (||a_k|| + 1e-5)`` (the ``cosine_rows`` scorer; SVIP calls it
   cosine, only the class rows are normalised); the prediction is the target branch's.

Losses (the authors' ``main.py``): cross-entropy of ``5 y`` over the seen classes for both
branches, the KL divergence of the source's from the target's distribution at temperature 20
(times 400, mean over ``B*K`` entries), the selector's binary cross-entropy, and the
decorrelation of ``psi^t`` over the attribute groups. ``docs/svip.md`` has the math and the
recipe; ``zslkit/configs/svip`` the per-dataset settings of the authors' scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from einops import rearrange
from numpy.typing import ArrayLike

from zslkit.adapters.patch_selector import PatchSelector, rollout_targets, selection_mask
from zslkit.adapters.tokens import AdapterContext
from zslkit.models.output import ModelOutput
from zslkit.models.token_model import TokenAttentionModel
from zslkit.ops.attention_rollout import AttentionRollout
from zslkit.registry import register

__all__ = ["SVIP"]

_CE = {"loss": "attribute_ce", "classes": "seen", "scale": 5.0, "weight": 1.0}


@register("model", "svip")
class SVIP(TokenAttentionModel):
    """SVIP (module docstring); every argument as in :class:`TokenAttentionModel`, plus ``selector``.

    Args:
        selector: options of the patch selector: ``hidden`` (width of its hidden layer) and
            ``grouping`` (how the rollout row is pooled per group for its targets:
            ``"raster"``, the authors' runs of ``g*g`` consecutive patches, or ``"grid"``, the
            ``g x g`` blocks the selector classifies); ``None``: ``default_selector``. Its
            group size and ``keep`` are the ``target`` branch's (``group_head``).
    """

    default_timm_model: ClassVar[str | None] = "vit_base_patch16_224"
    #: two ViT passes keep their activations for backward: the first 3 blocks of the source pass and 2 of the target
    #: pass rerun their MLP's first product there instead (``docs/svip.md``, "Memory"), which brings a step's peak
    #: under half the authors'
    default_recompute_mlp_blocks: ClassVar[int | list[int]] = [3, 2]
    backbone_passes: ClassVar[tuple[str, ...]] = ("source", "target")
    default_adapters: ClassVar[dict[str, Any]] = {
        "semantic_tokens": {"adapter": "semantic_tokens", "place": "before_block", "block": 0, "group": 2},
    }
    #: Raw word vectors (no unit rows), fixed; the class rows divided by their norm + 1e-5; no margin.
    default_options: ClassVar[dict[str, Any]] = {
        "scorer": {"scorer": "cosine_rows", "eps": 1e-5, "margin": 0.0},
        "unit_embeddings": False,
        "train_embeddings": False,
    }
    default_branches: ClassVar[dict[str, Any]] = {
        "target": {"attention": "group_head", "weight": 1.0, "group": 2, "keep": 40, "pool": "mean"},
    }
    #: The CUB script's weights (``--patch_cls 3 --kl 1 --att_dec 0.3``; main.py applies ``att_dec`` twice: 0.09).
    default_losses: ClassVar[dict[str, Any]] = {
        "ce_source": {**_CE, "branches": ["source"]},
        "ce_target": {**_CE, "branches": ["target"]},
        "kl": {"loss": "kl_distillation", "branches": ["source", "target"], "temperature": 20.0, "weight": 1.0},
        "patch_cls": {"loss": "patch_selection", "weight": 3.0},
        "att_dec": {"loss": "attribute_decorrelation", "source": "attribute_scores", "branches": ["target"],
                    "norm": "channel", "eps": 0.0, "reduction": "mean", "weight": 0.09},
    }
    default_selector: ClassVar[dict[str, Any]] = {"hidden": 512, "grouping": "raster"}

    def __init__(self, class_attributes: ArrayLike, attribute_embeddings: ArrayLike | None = None,
                 seen_classes: ArrayLike | None = None, unseen_classes: ArrayLike | None = None, feature_dim: int = 3,
                 timm_model: str | None = None, backbone_weights: str | Path | None = None,
                 backbone_random_init: bool = False, backbone_options: Mapping[str, Any] | None = None,
                 adapters: Mapping[str, Any] | None = None, selector: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(class_attributes, attribute_embeddings, seen_classes, unseen_classes, feature_dim, timm_model,
                         backbone_weights, backbone_random_init, backbone_options, adapters, **options)
        if "target" not in self.branches or type(self.branches["target"]).__name__ != "GroupHead":
            raise ValueError(f"svip needs a 'target' branch of attention 'group_head'; got branches {list(self.branches)}")
        head = self.branches["target"]
        tokens = [m for m in self.adapters.by_entry.values() if type(m).__name__ == "SemanticTokens"]
        if len(tokens) != 1 or tokens[0].group != head.group:
            raise ValueError(f"svip needs one 'semantic_tokens' adapter with the head's group={head.group}; "
                             f"got adapters {self.options['adapters']}")
        selector = {**self.default_selector, **(selector or {})}
        unknown = sorted(set(selector) - {"hidden", "grouping"})
        if unknown:
            raise ValueError(f"svip selector option {unknown[0]!r} unknown; it takes 'hidden' and 'grouping' "
                             "(group and keep are the 'target' branch's)")
        self.selector = PatchSelector(self.token_dim, group=head.group, hidden=int(selector["hidden"]), keep=head.keep,
                                      grouping=selector["grouping"])
        self.options["selector"] = selector

    def score_images(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        """Score images ``(B, 3, S, S)``: both branches in training, the target branch in evaluation."""
        if images.ndim != 4 or images.shape[1] != self.feature_dim:
            raise ValueError(f"svip reads images (B, {self.feature_dim}, S, S); found shape {tuple(images.shape)}")
        images = images.to(dtype=self.V.dtype, device=self.V.device)
        embeddings, head, selector = self.attribute_embeddings(), self.branches["target"], self.selector
        model = self.backbone.model
        grid = tuple(int(g) for g in model.patch_embed.dynamic_feat_size(tuple(images.shape[-2:])))
        selector.check_groups(grid)
        embedded = model.patch_embed(images)  # computed once: the selector and both passes read the same embedding
        probabilities = selector(embedded.flatten(1, -2), grid)
        attribute_scores, extras = {}, {"selector": {"probabilities": probabilities}}
        if self.training:
            with AttentionRollout(model.blocks) as rollout:
                source = self.backbone(images, patch_embedding=embedded,
                                       recompute_mlp_blocks=self.recompute_mlp_blocks["source"])
            kept, extras["selector"]["targets"] = rollout_targets(rollout.product, source.num_prefix, grid, selector.group,
                                                                  selector.keep, selector.grouping)
            attribute_scores["source"] = head(rearrange(source.patches, "b n d -> b d n"), embeddings, grid=grid,
                                              keep_index=kept).scores
        else:
            kept = selector.keep_by_probability(probabilities)
        context = AdapterContext(embeddings, labels, selection=selection_mask(kept, grid, selector.group))
        state = self.backbone(images, self.adapters, context, patch_embedding=embedded,
                              recompute_mlp_blocks=self.recompute_mlp_blocks["target"])
        target = head(rearrange(state.patches, "b n d -> b d n"), embeddings, grid=grid)
        attribute_scores["target"] = target.scores
        branch_scores = {name: self.class_scores(psi) for name, psi in attribute_scores.items()}
        scores = self.scorer.predict({"target": branch_scores["target"]}, {"target": 1.0}, self.classes)
        return ModelOutput(scores=scores.masked_fill(~self.classes.predictable, float("-inf")), branch_scores=branch_scores,
                           attribute_scores=attribute_scores, maps={"target": target.maps}, extras=extras,
                           grid=grid, global_token=state.prefix[:, 0])
