"""Converter ``apn``: checkpoints of the authors' APN code (github.com/wenjiaXu/APN-ZSL) as a zslkit APN.

The authors' ``resnet_proto_IoU`` (``model/model_proto.py``) keeps these keys;
:func:`load_official_apn` maps them:

==============================  ================  ===============================
official key                    shape             zslkit parameter
==============================  ================  ===============================
``ALE_vector``                  ``(I, C, 1, 1)``  ``branches.global.weights``
``prototype_vectors.layer4``    ``(I, C, 1, 1)``  ``branches.local.prototypes``
``resnet.<n>.*``                                  the backbone (``n``: 0 ``conv1``, 1 ``bn1``,
                                                  4-7 ``layer1``-``layer4``), when one is given
==============================  ================  ===============================

The state dict holds neither the class attributes nor the split: they are arguments, as
the authors' scripts read them from the dataset files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from numpy.typing import ArrayLike

from zslkit.datasets.checks import CheckpointError
from zslkit.models.apn import APN
from zslkit.models.official import read_state_dict, require_keys, source_name, with_backbone
from zslkit.registry import register

__all__ = ["load_official_apn"]

#: The children of APN's ``nn.Sequential`` ResNet, by index, as torchvision names them.
_APN_RESNET_CHILDREN: dict[str, str] = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def _backbone_weights(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    weights = {}
    for key, value in state.items():
        parts = key.split(".", 2)
        if parts[0] == "resnet" and len(parts) == 3 and parts[1] in _APN_RESNET_CHILDREN:
            weights[f"{_APN_RESNET_CHILDREN[parts[1]]}.{parts[2]}"] = value
    return weights


@register("converter", "apn")
def load_official_apn(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    class_attributes: ArrayLike,
    seen_classes: ArrayLike,
    unseen_classes: ArrayLike | None = None,
    *,
    avg_pool: bool = False,
    attribute_groups: Mapping[str, Sequence[int]] | None = None,
    backbone: torch.nn.Module | None = None,
    batchnorm: str = "train",
    **options: Any,
):
    """Build a zslkit APN from a state dict of the authors' ``resnet_proto_IoU``.

    Scores equal the official forward's ``output_final`` (``softmax(psi^g A^T)`` over the
    classes of ``class_attributes``) and the total loss their ``Loss_fn`` with the same loss
    weights and groups, up to float32 rounding.

    Args:
        source: path of a ``torch.save``-d state dict, or the state dict itself.
        class_attributes: ``(K, I)`` the raw class attributes (the authors' ``att``).
        seen_classes: the seen (training) classes, indices of ``class_attributes`` rows.
        unseen_classes: the unseen classes (default: all others).
        avg_pool: the scripts' ``--avg_pool`` (SUN, AwA2): the global branch averages.
        attribute_groups: the groups of the decorrelation terms (the authors' JSON files).
        backbone: a ResNet module (torchvision names, any prefix) to load ``resnet.*`` into;
            the result is then a :class:`~zslkit.models.BackboneModel`.
        batchnorm: its BatchNorm layers (:class:`~zslkit.models.BackboneModel`); ``"train"``,
            batch statistics, as the authors fine-tune (``model.train()`` on the whole network).
        options: more :class:`~zslkit.models.APN` options (``losses``, ...).
    """
    where = source_name(source)
    state = read_state_dict(source)
    require_keys(state, ("ALE_vector", "prototype_vectors.layer4"), where, "APN")
    ale, prototypes = (torch.as_tensor(state[k]).detach().float().flatten(1) for k in ("ALE_vector", "prototype_vectors.layer4"))
    if ale.shape != prototypes.shape:
        raise CheckpointError(f"{where}: 'ALE_vector' {tuple(ale.shape)} and 'prototype_vectors.layer4' {tuple(prototypes.shape)} differ")
    branches = {"global": {"attention": "ale_global", "weight": 1.0, "pool": "mean" if avg_pool else "max"},
                "local": {"attention": "prototype", "weight": 0.0}}
    model = APN(class_attributes=class_attributes, seen_classes=seen_classes, unseen_classes=unseen_classes,
                feature_dim=ale.shape[1], branches=branches, attribute_groups=attribute_groups, **options)
    if model.num_attributes != ale.shape[0]:
        raise CheckpointError(f"{where}: the checkpoint has {ale.shape[0]} attributes, class_attributes {model.num_attributes}")
    own = model.state_dict()
    own.update({"branches.global.weights": ale, "branches.local.prototypes": prototypes})
    model.load_state_dict(own)
    return with_backbone(model, backbone, _backbone_weights(state), where, batchnorm)
