"""Converter ``psvma``: checkpoints of the authors' PSVMA code (github.com/ManLiuCoder/PSVMA) as a zslkit PSVMA.

The authors' ``PSVMANet`` (``models/modeling/PSVMAModel/PSVMANet.py``; their trainer saves
``{"model": state_dict}``) keeps these keys; :func:`load_official_psvma` maps them (``L`` the
last block, ``m`` the module ``adapters.by_entry.dsvtm``):

=====================================  ==========================================================
official key                           zslkit parameter
=====================================  ==========================================================
``backbone_patch.proj.*``              ``backbone.model.patch_embed.proj.*``
``cls_token``, ``pos_embed``           ``backbone.model.cls_token``, ``backbone.model.pos_embed``
``backbone_0.{k}.*``, ``backbone_1.*`` ``backbone.model.blocks.{k}.*``, ``backbone.model.blocks.{L}.*``
``W`` ``(300, D)``                     ``m.W``
``blocks.enc_attn.*``, ``dec_attn.*``  ``m.encode.*``, ``m.decode.*``
``blocks.group_compact.fc{1,2}.*``     ``m.gate.fc{1,2}.*``
``blocks.enc_ffn.*``, ``blocks.ffn1.*`` ``m.refine.*``, ``m.ffn.*``
``blocks.reason.norm.*``               ``m.mixer.norm.*``
``blocks.reason.net.{0,3,6}.*``        ``m.mixer.net.{0,2,4}.*``
``V`` ``(D, I)``, ``scale``            ``branches.base.V``, ``branches.base.scale``
=====================================  ==========================================================

Left out, as their forward never reads them: ``cat.*`` (a ``Linear(I*D, I)``) and
``blocks.reason.fc{1,2}.*``. The sizes (token width, depth, patch size, image size, the
gate's hidden width, the mixer's) are read from the tensors; the number of attention heads is
not in a state dict: ``num_heads`` (12, ViT-B/16's). The word vectors, class attributes and
split are arguments, as their scripts read them from the dataset files.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import torch
from numpy.typing import ArrayLike

from zslkit.datasets.checks import CheckpointError
from zslkit.models.official import load_into, official_state, source_name
from zslkit.models.psvma import PSVMA
from zslkit.registry import register

__all__ = ["PSVMA_RENAMES", "load_official_psvma"]

#: official key prefix -> zslkit key prefix (the blocks are renamed by number, see :func:`_rename`)
PSVMA_RENAMES: dict[str, str] = {
    "backbone_patch.": "backbone.model.patch_embed.", "cls_token": "backbone.model.cls_token",
    "pos_embed": "backbone.model.pos_embed", "W": "adapters.by_entry.dsvtm.W",
    "blocks.enc_attn.": "adapters.by_entry.dsvtm.encode.", "blocks.dec_attn.": "adapters.by_entry.dsvtm.decode.",
    "blocks.group_compact.": "adapters.by_entry.dsvtm.gate.", "blocks.enc_ffn.": "adapters.by_entry.dsvtm.refine.",
    "blocks.ffn1.": "adapters.by_entry.dsvtm.ffn.", "blocks.reason.norm.": "adapters.by_entry.dsvtm.mixer.norm.",
    "blocks.reason.net.0.": "adapters.by_entry.dsvtm.mixer.net.0.", "blocks.reason.net.3.": "adapters.by_entry.dsvtm.mixer.net.2.",
    "blocks.reason.net.6.": "adapters.by_entry.dsvtm.mixer.net.4.", "V": "branches.base.V", "scale": "branches.base.scale",
}
_UNUSED = ("cat.", "blocks.reason.fc1.", "blocks.reason.fc2.")


def _rename(key: str, last: int) -> str | None:
    """The zslkit key of official ``key`` (``None``: a tensor their forward never reads)."""
    if key.startswith(_UNUSED):
        return None
    match = re.match(r"backbone_0\.(\d+)\.(.*)", key)
    if match:
        return f"backbone.model.blocks.{match[1]}.{match[2]}"
    if key.startswith("backbone_1."):
        return f"backbone.model.blocks.{last}.{key[len('backbone_1.'):]}"
    for old, new in PSVMA_RENAMES.items():
        if key == old or (old.endswith(".") and key.startswith(old)):
            return new + key[len(old):]
    raise CheckpointError(f"official PSVMA state dict: unknown key {key!r}")


def _shape_options(state: Mapping[str, torch.Tensor], num_attributes: int, num_heads: int, where: str) -> dict[str, Any]:
    """The backbone and module sizes the tensors imply."""
    depth = 1 + len({k.split(".")[1] for k in state if k.startswith("backbone_0.")})
    width, _, patch, _ = state["backbone_patch.proj.weight"].shape
    patches = state["pos_embed"].shape[1] - 1
    side = math.isqrt(patches)
    hidden = state["blocks.group_compact.fc1.weight"].shape[0]
    groups = num_attributes // hidden
    if side * side != patches or num_attributes // groups != hidden or state["V"].shape != (width, num_attributes):
        raise CheckpointError(f"{where}: pos_embed {tuple(state['pos_embed'].shape)}, V {tuple(state['V'].shape)} and the "
                              f"group gate's {hidden} units do not fit {num_attributes} attributes on a square patch grid")
    backbone = {"final_norm": False, "img_size": side * patch, "patch_size": patch, "embed_dim": width, "depth": depth,
                "num_heads": num_heads}
    module = {"adapter": "dual_semantic_visual", "place": "after_block", "block": -2, "groups": groups,
              "num_patches": patches, "mixer_hidden": state["blocks.reason.net.0.weight"].shape[0]}
    branches = {"base": {**PSVMA.default_branches["base"], "scale": float(state["scale"])}}
    return {"backbone_options": backbone, "adapters": {**PSVMA.default_adapters, "dsvtm": module}, "branches": branches}


@register("converter", "psvma")
def load_official_psvma(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    class_attributes: ArrayLike,
    attribute_embeddings: ArrayLike,
    seen_classes: ArrayLike,
    unseen_classes: ArrayLike | None = None,
    *,
    num_heads: int = 12,
    **options: Any,
) -> PSVMA:
    """Build a zslkit PSVMA from a state dict of the authors' ``PSVMANet`` (``weights_only=True``).

    Scores equal their eval forward (``score`` with ``seen_att = att_all``) and the total loss their
    trainer's ``LAMBDA1 Lcls + LAMBDA2 Lreg + LAMBDA3 Lbias`` (the model's loss weights: CUB's by default,
    a recipe's through ``options``), up to float32 rounding (``benchmarks/psvma_parity.py``).

    Args:
        source: path of a ``torch.save``-d state dict (``{"model": ...}`` as their trainer saves it) or the dict.
        class_attributes: ``(K, I)`` the raw class attributes (the authors' ``att``).
        attribute_embeddings: ``(I, 300)`` their ``<DATASET>_attribute.pkl`` word vectors (raw sums).
        seen_classes: the seen (training) classes; unseen_classes: the unseen ones (default: all others).
        num_heads: attention heads of the ViT (not stored in a state dict).
        options: more :class:`~zslkit.models.PSVMA` options (``losses``, ...).
    """
    where = source_name(source)
    state = official_state(source, ("backbone_patch.proj.weight", "pos_embed", "cls_token", "W", "V", "scale",
                                    "blocks.group_compact.fc1.weight", "blocks.reason.net.0.weight"), "PSVMA")
    num_attributes = int(state["V"].shape[1])
    shape = _shape_options(state, num_attributes, num_heads, where)
    model = PSVMA(class_attributes=class_attributes, attribute_embeddings=attribute_embeddings, seen_classes=seen_classes,
                  unseen_classes=unseen_classes, backbone_random_init=True,
                  **{**shape, **options})
    if model.num_attributes != num_attributes:
        raise CheckpointError(f"{where}: V has {num_attributes} attributes, class_attributes {model.num_attributes}")
    last = shape["backbone_options"]["depth"] - 1
    mapped = {new: value for key, value in state.items() if (new := _rename(key, last)) is not None}
    return load_into(model, mapped, where)
