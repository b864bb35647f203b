"""Converter ``svip``: checkpoints of the authors' SVIP code (github.com/uqzhichen/SVIP) as a zslkit SVIP.

Their ``models/vit_model.py`` ``VisionTransformer`` keeps timm's ViT names for the ViT and adds the
SVIP parts; :func:`load_official_svip` maps them (``main.py`` saves them under ``"network"``):

===============================================  ======================================================
official key                                     zslkit parameter
===============================================  ======================================================
``patch_embed.*``, ``cls_token``, ``pos_embed``,  ``backbone.model.<the same key>`` (timm's names)
``blocks.*``, ``norm.*``
``head_1.*`` ``(I, 4D)``                          ``branches.target.head.*`` (``group_head``)
``token_cls.0.*``, ``token_cls.2.*``              ``selector.mlp.0.*``, ``selector.mlp.2.*``
``v2p.*``, ``p2t.*``                              ``adapters.by_entry.semantic_tokens.v2p.*``, ``.p2t.*``
``head.*``                                        not used by SVIP (their ImageNet-style head): left out
===============================================  ======================================================

The word vectors (their ``attribute/w2v/<DATASET>_attribute.pkl``), the class attributes and the
split are not in the checkpoint: they are arguments, as their scripts read them from files.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from numpy.typing import ArrayLike

from zslkit.datasets.checks import CheckpointError
from zslkit.models.official import load_into, read_state_dict, require_keys, source_name
from zslkit.models.svip import SVIP
from zslkit.registry import register

__all__ = ["load_official_svip", "svip_key"]

_BACKBONE_ROOTS = ("patch_embed.", "blocks.", "norm.", "cls_token", "pos_embed")
_PARTS = {"head_1.": "branches.target.head.", "token_cls.": "selector.mlp.",
          "v2p.": "adapters.by_entry.semantic_tokens.v2p.", "p2t.": "adapters.by_entry.semantic_tokens.p2t."}


def svip_key(key: str) -> str | None:
    """The zslkit parameter of an official key (table above), ``None`` for a key SVIP does not use."""
    if key.startswith(_BACKBONE_ROOTS):
        return f"backbone.model.{key}"
    for prefix, target in _PARTS.items():
        if key.startswith(prefix):
            return target + key[len(prefix):]
    return None


def _official_state(source) -> dict[str, torch.Tensor]:
    """The state dict of a path or mapping; ``main.py``'s checkpoint (``{"network": ..., "args": Namespace}``) unwrapped."""
    if not isinstance(source, Mapping):
        where = source_name(source)
        if not os.path.isfile(where):
            raise FileNotFoundError(f"official checkpoint {where!r} does not exist")
        with torch.serialization.safe_globals([argparse.Namespace]):  # main.py saves its args beside the weights
            source = torch.load(where, map_location="cpu", weights_only=True)
    if isinstance(source, Mapping) and isinstance(source.get("network"), Mapping):
        source = source["network"]
    return read_state_dict(source)


@register("converter", "svip")
def load_official_svip(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    class_attributes: ArrayLike,
    attribute_embeddings: ArrayLike,
    seen_classes: ArrayLike,
    unseen_classes: ArrayLike | None = None,
    *,
    attribute_groups: Mapping[str, Sequence[int]] | None = None,
    timm_model: str = "vit_base_patch16_224",
    keep: int = 40,
    **options: Any,
) -> SVIP:
    """Build a zslkit SVIP from a state dict of the authors' ``VisionTransformer``.

    Args:
        source: a path (``torch.save``-d state dict or ``main.py``'s checkpoint) or the state dict.
        class_attributes: ``(K, I)`` the raw class attributes (``ori_attributes``).
        attribute_embeddings: ``(I, E)`` the attributes' word vectors, raw (their ``w2v`` pickle).
        seen_classes: the training classes; ``unseen_classes``: the others by default.
        attribute_groups: the groups of the decorrelation term (their ``get_attr_group``); without them the
            model has no ``att_dec`` term (scores and the other terms are unchanged).
        timm_model: the timm ViT their weights fit (ViT-B/16 in their scripts).
        keep: their ``--keep_token`` (40 on CUB, 45 on SUN and AwA2).
        options: more :class:`~zslkit.models.SVIP` options (``backbone_options``, ``losses``, ...).
    """
    where = source_name(source)
    state = _official_state(source)
    require_keys(state, ("head_1.weight", "token_cls.0.weight", "v2p.weight", "p2t.weight", "cls_token"), where, "SVIP")
    group = int(round((state["head_1.weight"].shape[1] / state["cls_token"].shape[-1]) ** 0.5))
    branches = {"target": {"attention": "group_head", "weight": 1.0, "group": group, "keep": int(keep), "pool": "mean"}}
    adapters = {"semantic_tokens": {"adapter": "semantic_tokens", "place": "before_block", "block": 0, "group": group}}
    if attribute_groups is None:
        options.setdefault("losses", {k: v for k, v in SVIP.default_losses.items() if k != "att_dec"})
    options.setdefault("selector", {"hidden": int(state["token_cls.0.weight"].shape[0]), "grouping": "raster"})
    model = SVIP(class_attributes=class_attributes, attribute_embeddings=attribute_embeddings, seen_classes=seen_classes,
                 unseen_classes=unseen_classes, timm_model=timm_model, backbone_random_init=True, branches=branches,
                 adapters=adapters, attribute_groups=attribute_groups, **options)
    mapped = {svip_key(k): torch.as_tensor(v).detach().float() for k, v in state.items() if svip_key(k) is not None}
    own = model.state_dict()
    # timm's classifier head (backbone.model.head) is not used by SVIP: it keeps its random weights
    used = [k for k in own if k.startswith(("backbone.", "branches.", "selector.", "adapters.")) and not k.startswith("backbone.model.head.")]
    missing = sorted(k for k in used if k not in mapped)
    if missing:
        raise CheckpointError(f"{where}: not a complete SVIP state dict; nothing for {missing[0]!r} (and {len(missing) - 1} more)")
    return load_into(model, mapped, where)
