"""Converter ``gem_zsl``: checkpoints of the authors' GEM-ZSL code (github.com/osierboy/GEM-ZSL) as a zslkit GEM-ZSL.

The authors' ``GEMNet`` (``GEMZSL/modeling/GEMModel/GEMNet.py``) keeps these keys;
:func:`load_official_gem_zsl` maps them:

==============  ==========  ======================================
official key    shape       zslkit parameter
==============  ==========  ======================================
``W``           ``(D, C)``  ``branches.attention.W2``
``V``           ``(C, I)``  ``branches.base.V``
``scale``       scalar      ``branches.base.scale``
``backbone.*``              the backbone (torchvision ResNet names), when one is given
==============  ==========  ======================================

The state dict holds neither the class attributes, the split nor the word vectors: they
are arguments, as the authors' scripts read them from the dataset files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from numpy.typing import ArrayLike

from zslkit.datasets.checks import CheckpointError
from zslkit.models.gem_zsl import GEMZSL
from zslkit.models.official import read_state_dict, require_keys, source_name, with_backbone
from zslkit.registry import register

__all__ = ["load_official_gem_zsl"]


@register("converter", "gem_zsl")
def load_official_gem_zsl(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    class_attributes: ArrayLike,
    attribute_embeddings: ArrayLike,
    seen_classes: ArrayLike,
    unseen_classes: ArrayLike | None = None,
    *,
    attribute_groups: Mapping[str, Sequence[int]] | None = None,
    backbone: torch.nn.Module | None = None,
    batchnorm: str = "train",
    **options: Any,
):
    """Build a zslkit GEM-ZSL from a state dict of the authors' ``GEMNet``.

    Scores equal the official eval forward (``s cos(x_bar V, a_k)``) and the total loss
    their training forward's ``Lcls + l1 Lreg + l2 Lad + l3 Lcpt`` (the model's loss
    weights), up to float32 rounding.

    Args:
        source: path of a ``torch.save``-d state dict (``{"model": ...}`` as their trainer
            saves it, or the state dict), or the state dict itself.
        class_attributes: ``(K, I)`` the raw class attributes (the authors' ``att``).
        attribute_embeddings: ``(I, D)`` their ``<DATASET>_attribute.pkl`` word vectors (raw).
        seen_classes: the seen (training) classes, indices of ``class_attributes`` rows.
        unseen_classes: the unseen classes (default: all others).
        attribute_groups: the groups of the decorrelation term (their ``get_attr_group``).
        backbone: a ResNet module to load ``backbone.*`` into (see
            :func:`~zslkit.models.apn_official.load_official_apn`).
        batchnorm: its BatchNorm layers; ``"train"``, batch statistics, as the authors
            fine-tune (``model.train()``).
        options: more :class:`~zslkit.models.GEMZSL` options.
    """
    where = source_name(source)
    state = read_state_dict(source)
    require_keys(state, ("W", "V", "scale"), where, "GEM-ZSL")
    W, V = (torch.as_tensor(state[k]).detach().float() for k in ("W", "V"))
    embeddings = torch.as_tensor(attribute_embeddings).detach().float()
    if W.ndim != 2 or V.ndim != 2 or embeddings.shape != (V.shape[1], W.shape[0]) or W.shape[1] != V.shape[0]:
        raise CheckpointError(
            f"{where}: 'W' (D, C) {tuple(W.shape)}, 'V' (C, I) {tuple(V.shape)} and attribute_embeddings (I, D) "
            f"{tuple(embeddings.shape)} do not fit together"
        )
    branches = {"base": {"attention": "cosine_global", "weight": 1.0, "scale": float(state["scale"])},
                "attention": {"attention": "attribute_to_visual", "weight": 0.0, "pool": "max", "attention_init": "normal"}}
    model = GEMZSL(class_attributes=class_attributes, attribute_embeddings=embeddings, seen_classes=seen_classes,
                   unseen_classes=unseen_classes, feature_dim=V.shape[0], branches=branches,
                   attribute_groups=attribute_groups, **options)
    own = model.state_dict()
    own.update({"branches.attention.W2": W, "branches.base.V": V, "V": embeddings})
    model.load_state_dict(own)
    weights = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return with_backbone(model, backbone, weights, where, batchnorm)
