"""Converter ``zslvit``: checkpoints of the authors' ZSLViT code (github.com/shiming-chen/ZSLViT) as a zslkit ZSLViT.

Their scripts save ``nn.ModuleDict({"vit": ZSLViT, "mlp_g": nn.Linear}).state_dict()``;
:func:`load_official_zslvit` maps its keys:

====================================  =================================================
official key                          zslkit parameter
====================================  =================================================
``vit.patch_embed.*``, ``vit.cls_token``,  ``backbone.model.*`` (timm's ViT names are theirs)
``vit.pos_embed``, ``vit.blocks.*``,
``vit.norm.*``
``vit.atttovis.<p>.fc.{0,2,4}.*``     ``adapters.by_entry.query_<k>.semantic.{0,2,4}.*``
``vit.token_cls_reg.<p>.fc.{0,2}.*``  ``adapters.by_entry.query_<k>.regression.{0,2}.*``
``mlp_g.weight`` (``mlp_g.bias``)     ``branches.global.linear.weight`` (``.bias``)
====================================  =================================================

``<p>`` counts the injection blocks ``k`` in order (``blocks``: 3, 6, 9; SUN's 3, 6). Not loaded,
because nothing the model scores or trains with reads them: ``vit.aux_head.*`` (its output is
returned and never used), ``vit.head.*`` (the 1000-class ImageNet head) and the MLPs of
``atttovis``/``token_cls_reg`` beyond ``len(blocks)`` (the SUN checkpoints hold three, run two).
The input size comes from ``vit.pos_embed``: the released checkpoints hold a 28 x 28 grid, 448 px
(their issue #4), and other sizes resample it (timm's ``dynamic_img_size``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from numpy.typing import ArrayLike

from zslkit.datasets.checks import CheckpointError
from zslkit.models.official import check_shape, load_into, official_state, source_name
from zslkit.models.zslvit import ZSLViT, zslvit_adapters
from zslkit.registry import register

__all__ = ["load_official_zslvit", "official_zslvit_keys"]

_BACKBONE = ("patch_embed.", "cls_token", "pos_embed", "blocks.", "norm.")


def official_zslvit_keys(state: Mapping[str, torch.Tensor], blocks: Sequence[int]) -> dict[str, torch.Tensor]:
    """zslkit key -> tensor for the official keys that the model reads (see the module docstring)."""
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("vit.") and key[4:].startswith(_BACKBONE):
            mapped[f"backbone.model.{key[4:]}"] = value
        elif key.startswith("mlp_g."):
            mapped[f"branches.global.linear.{key[6:]}"] = value
    for p, block in enumerate(blocks):
        for theirs, ours in (("atttovis", "semantic"), ("token_cls_reg", "regression")):
            prefix = f"vit.{theirs}.{p}.fc."
            for key in [k for k in state if k.startswith(prefix)]:
                mapped[f"adapters.by_entry.query_{block}.{ours}.{key[len(prefix):]}"] = state[key]
    return mapped


@register("converter", "zslvit")
def load_official_zslvit(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    class_attributes: ArrayLike,
    seen_classes: ArrayLike,
    unseen_classes: ArrayLike | None = None,
    *,
    blocks: Sequence[int] = (3, 6, 9),
    timm_model: str = "deit_base_patch16_224",
    keep: float = 0.9,
    **options: Any,
) -> ZSLViT:
    """Build a zslkit ZSLViT from a state dict of the authors' ``{"vit": ZSLViT, "mlp_g": Linear}``.

    Scores equal their eval forward (``mlp_g(vit(x)) @ A^T`` with pruning at ``blocks``) and the total loss
    their training loss (``CE + L1 alignments``), up to float32 rounding.

    Args:
        source: path of a ``torch.save``-d state dict (read with ``weights_only=True``) or the state dict.
        class_attributes: ``(K, I)`` the class attributes as their scripts read them (``att_splits.mat``'s ``att``).
        seen_classes: the seen classes (their ``trainval`` classes).
        unseen_classes: the unseen classes (default: every other class).
        blocks: the injection and pruning blocks (``drop_loc``: ``(3, 6, 9)``; SUN ``(3, 6)``).
        timm_model: the timm ViT of the same shape as theirs (DeiT-B/16; ``depth``, ``embed_dim`` and
            ``num_heads`` in ``backbone_options`` for a smaller one).
        keep: ``base_keep_rate`` (0.9).
        **options: more options of :class:`~zslkit.models.zslvit.ZSLViT` (``backbone_options`` ...).
    """
    where = source_name(source)
    state = official_state(source, ("vit.pos_embed", "vit.cls_token", "mlp_g.weight"), "ZSLViT")
    grid = state["vit.pos_embed"].shape[1] - 1
    side = math.isqrt(grid)
    if side * side != grid:
        raise CheckpointError(f"{where}: 'vit.pos_embed' must hold 1 + a square number of positions, found {grid + 1}")
    patch = int(state["vit.patch_embed.proj.weight"].shape[-1]) if "vit.patch_embed.proj.weight" in state else 16
    backbone_options = {"drop_path_rate": 0.1, **dict(options.pop("backbone_options", {})), "img_size": side * patch}
    width, attributes = state["mlp_g.weight"].shape[1], torch.as_tensor(class_attributes).shape[-1]
    check_shape(state, "mlp_g.weight", (attributes, width), where)
    model = ZSLViT(class_attributes, seen_classes=seen_classes, unseen_classes=unseen_classes, feature_dim=3,
                   timm_model=timm_model, backbone_random_init=True, backbone_options=backbone_options,
                   adapters=zslvit_adapters(tuple(blocks), keep=keep),
                   branches={"global": {"attention": "global_linear", "bias": "mlp_g.bias" in state}}, **options)
    mapped = official_zslvit_keys(state, tuple(blocks))
    missing = sorted(set(model.state_dict()) - set(mapped) - _derived(model))
    if missing:
        raise CheckpointError(f"{where}: not an official ZSLViT state dict of this shape, missing the tensors of "
                              f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    return load_into(model, mapped, where)


def _derived(model: ZSLViT) -> set[str]:
    """zslkit keys no official tensor sets: the class space, ``V`` (unused by ZSLViT) and timm's unused ImageNet head."""
    return {k for k in model.state_dict() if k.startswith(("classes.", "backbone.model.head.", "backbone.model.fc_norm."))
            or k == "V"}
