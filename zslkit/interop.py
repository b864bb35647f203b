"""Import checkpoints of the authors' MSDN, APN and GEM-ZSL code into zslkit models.

The authors' PyTorch ``MSDN`` module (github.com/shiming-chen/MSDN) keeps its
parameters under these state-dict keys; :func:`load_official_msdn` maps them onto
a zslkit :class:`~zslkit.models.msdn.MSDN`:

===============  ===========  ==========================================
official key     shape        zslkit parameter / buffer
===============  ===========  ==========================================
``V``            ``(I, D)``   ``V``
``att``          ``(K, I)``   ``classes.attributes`` (rows unit length)
``W_1``          ``(D, C)``   ``branches.a2v.W1``
``W_2``          ``(D, C)``   ``branches.a2v.W2``
``W_1_1``        ``(C, D)``   ``branches.v2a.U1``
``W_2_1``        ``(D, C)``   ``branches.v2a.U2``
``mask_bias``    ``(1, K)``   seen (-1) / unseen (+1) classes
``bias``         scalar       ``margin``
===============  ===========  ==========================================

``W_3`` and ``W_3_1`` (unused by the official forward), ``weight_ce``,
``prob_prune`` and any backbone weights (``resnet101.*``) are ignored.

APN (github.com/wenjiaXu/APN-ZSL, ``model/model_proto.py``, :func:`load_official_apn`):

==============================  ================  ===============================
official key                    shape             zslkit parameter
==============================  ================  ===============================
``ALE_vector``                  ``(I, C, 1, 1)``  ``branches.global.weights``
``prototype_vectors.layer4``    ``(I, C, 1, 1)``  ``branches.local.prototypes``
``resnet.<n>.*``                                  the backbone (``n``: 0 ``conv1``, 1 ``bn1``,
                                                  4-7 ``layer1``-``layer4``), when one is given
==============================  ================  ===============================

GEM-ZSL (github.com/osierboy/GEM-ZSL, ``GEMZSL/modeling/GEMModel/GEMNet.py``,
:func:`load_official_gem_zsl`):

==============  ==========  ======================================
official key    shape       zslkit parameter
==============  ==========  ======================================
``W``           ``(D, C)``  ``branches.attention.W2``
``V``           ``(C, I)``  ``branches.base.V``
``scale``       scalar      ``branches.base.scale``
``backbone.*``              the backbone (torchvision ResNet names), when one is given
==============  ==========  ======================================

Neither state dict holds the class attributes, the split or (GEM-ZSL) the word vectors:
they are arguments, as the authors' scripts read them from the dataset files.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from numpy.typing import ArrayLike

from zslkit.datasets.checks import READ_ERRORS
from zslkit.models.apn import APN
from zslkit.models.backbone_model import BackboneModel
from zslkit.models.gem_zsl import GEMZSL
from zslkit.models.msdn import MSDN
from zslkit.training.checkpoint import CheckpointError

__all__ = ["OFFICIAL_MSDN_KEYS", "load_official_apn", "load_official_gem_zsl", "load_official_msdn", "read_state_dict"]

#: Official key -> zslkit state-dict key.
OFFICIAL_MSDN_KEYS: dict[str, str] = {
    "V": "V",
    "att": "classes.attributes",
    "W_1": "branches.a2v.W1",
    "W_2": "branches.a2v.W2",
    "W_1_1": "branches.v2a.U1",
    "W_2_1": "branches.v2a.U2",
}
_SPLIT_KEYS = ("mask_bias", "bias")


def read_state_dict(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict from a path (``torch.load(..., weights_only=True)``) or a mapping.

    A checkpoint that wraps the state dict under ``"state_dict"`` or ``"model"`` is
    unwrapped, and a ``"module."`` prefix (DataParallel) is stripped.
    """
    if isinstance(source, Mapping):
        state = dict(source)
        where = "the state dict"
    else:
        where = os.fspath(source)
        if not os.path.isfile(where):
            raise FileNotFoundError(f"official checkpoint {where!r} does not exist")
        try:
            state = torch.load(where, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:  # weights_only refuses every global but tensors and containers
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"{where}: not a plain state dict of tensors (loaded with weights_only=True, "
                f"no pickled code is run); save model.state_dict() instead of the module ({first})"
            ) from None
        except READ_ERRORS as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CheckpointError(f"{where}: cannot read the checkpoint ({type(exc).__name__}: {first}); truncated or not a torch file?") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and "V" not in state and isinstance(state.get(wrapper), Mapping):
            state = dict(state[wrapper])
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where}: expected a dict of tensors, found {type(state).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _check_shape(state: dict[str, torch.Tensor], key: str, shape: tuple[int, ...], where: str) -> None:
    found = tuple(state[key].shape)
    if found != shape:
        raise CheckpointError(f"{where}: {key!r} must have shape {shape}, found {found}")


def load_official_msdn(
    source: str | os.PathLike | Mapping[str, torch.Tensor], *, normalize_embeddings: bool = False
) -> MSDN:
    """Build a zslkit MSDN from a checkpoint (path or state dict) of the authors' code.

    The seen/unseen split comes from ``mask_bias`` (-1 seen, +1 unseen) and the
    margin from ``bias``. Scores equal the official forward's
    ``0.9 * S_pp(a2v) + 0.1 * S_pp(v2a)`` up to float32 rounding.

    Args:
        source: path of a ``torch.save``-d state dict, or the state dict itself.
        normalize_embeddings: the official ``normalize_V`` flag (``True`` in the
            authors' AWA2 script, ``False`` for CUB and SUN).
    """
    where = "the state dict" if isinstance(source, Mapping) else os.fspath(source)
    state = read_state_dict(source)
    missing = [k for k in (*OFFICIAL_MSDN_KEYS, *_SPLIT_KEYS) if k not in state]
    if missing:
        raise CheckpointError(
            f"{where}: not an official MSDN state dict, missing key(s) {', '.join(missing)} "
            f"(expected {', '.join((*OFFICIAL_MSDN_KEYS, *_SPLIT_KEYS))})"
        )
    state = {k: torch.as_tensor(v).detach().float() for k, v in state.items() if k in (*OFFICIAL_MSDN_KEYS, *_SPLIT_KEYS)}
    if state["V"].ndim != 2 or state["att"].ndim != 2 or state["W_1"].ndim != 2:
        raise CheckpointError(f"{where}: 'V', 'att' and 'W_1' must be matrices")
    num_attributes, embedding_dim = state["V"].shape
    num_classes = state["att"].shape[0]
    feature_dim = state["W_1"].shape[1]
    for key, shape in {
        "att": (num_classes, num_attributes),
        "W_1": (embedding_dim, feature_dim),
        "W_2": (embedding_dim, feature_dim),
        "W_1_1": (feature_dim, embedding_dim),
        "W_2_1": (embedding_dim, feature_dim),
    }.items():
        _check_shape(state, key, shape, where)
    side = state["mask_bias"].reshape(-1)
    if side.numel() != num_classes or not bool(((side == 1) | (side == -1)).all()):
        raise CheckpointError(f"{where}: 'mask_bias' must hold {num_classes} values, each -1 (seen) or +1 (unseen)")
    if state["bias"].numel() != 1:
        raise CheckpointError(f"{where}: 'bias' must be a scalar, found shape {tuple(state['bias'].shape)}")

    model = MSDN(
        class_attributes=state["att"],
        attribute_embeddings=state["V"],
        seen_classes=torch.nonzero(side < 0).reshape(-1),
        unseen_classes=torch.nonzero(side > 0).reshape(-1),
        feature_dim=feature_dim,
        margin=float(state["bias"]),
        normalize_embeddings=normalize_embeddings,
    )
    own = model.state_dict()
    own.update({ours: state[theirs] for theirs, ours in OFFICIAL_MSDN_KEYS.items()})
    model.load_state_dict(own)
    return model


#: The children of APN's ``nn.Sequential`` ResNet, by index, as torchvision names them.
_APN_RESNET_CHILDREN: dict[str, str] = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def _require(state: dict[str, torch.Tensor], keys, where: str, what: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{where}: not an official {what} state dict, missing key(s) {', '.join(missing)}")


def _load_backbone(backbone: torch.nn.Module, weights: dict[str, torch.Tensor], where: str) -> None:
    """Load torchvision-named ResNet ``weights`` into ``backbone``: each of its keys must be one of them or end
    with one (``model.layer1.0.conv1.weight``, a wrapper's prefix; the longest such name)."""
    own = backbone.state_dict()
    loaded = {}
    for key in own:
        found = [key] if key in weights else [name for name in weights if key.endswith("." + name)]
        found = [name for name in found if len(name) == max(map(len, found))]  # the longest: layer1.0.conv1, not conv1
        if len(found) != 1:
            raise CheckpointError(f"{where}: the backbone's {key!r} matches {len(found)} official backbone weights (expected 1)")
        if tuple(weights[found[0]].shape) != tuple(own[key].shape):
            raise CheckpointError(f"{where}: backbone {key!r} has shape {tuple(own[key].shape)}, the checkpoint's {tuple(weights[found[0]].shape)}")
        loaded[key] = weights[found[0]]
    backbone.load_state_dict(loaded)


def _apn_backbone_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    weights = {}
    for key, value in state.items():
        parts = key.split(".", 2)
        if parts[0] == "resnet" and len(parts) == 3 and parts[1] in _APN_RESNET_CHILDREN:
            weights[f"{_APN_RESNET_CHILDREN[parts[1]]}.{parts[2]}"] = value
    return weights


def _with_backbone(model, backbone, weights: dict[str, torch.Tensor], where: str, batchnorm: str):
    if backbone is None:
        return model
    if not weights:
        raise CheckpointError(f"{where}: a backbone was given but the checkpoint holds no backbone weights")
    _load_backbone(backbone, weights, where)
    return BackboneModel(backbone, model, batchnorm=batchnorm)


def load_official_apn(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    class_attributes: ArrayLike,
    seen_classes: ArrayLike,
    unseen_classes: ArrayLike | None = None,
    *,
    avg_pool: bool = False,
    attribute_groups: Mapping[str, Sequence[int]] | None = None,
    backbone: torch.nn.Module | None = None,
    batchnorm: str = "frozen",
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
        options: more :class:`~zslkit.models.APN` options (``losses``, ...).
    """
    where = "the state dict" if isinstance(source, Mapping) else os.fspath(source)
    state = read_state_dict(source)
    _require(state, ("ALE_vector", "prototype_vectors.layer4"), where, "APN")
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
    return _with_backbone(model, backbone, _apn_backbone_weights(state), where, batchnorm)


def load_official_gem_zsl(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    class_attributes: ArrayLike,
    attribute_embeddings: ArrayLike,
    seen_classes: ArrayLike,
    unseen_classes: ArrayLike | None = None,
    *,
    attribute_groups: Mapping[str, Sequence[int]] | None = None,
    backbone: torch.nn.Module | None = None,
    batchnorm: str = "frozen",
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
        backbone: a ResNet module to load ``backbone.*`` into (see :func:`load_official_apn`).
        options: more :class:`~zslkit.models.GEMZSL` options.
    """
    where = "the state dict" if isinstance(source, Mapping) else os.fspath(source)
    state = read_state_dict(source)
    _require(state, ("W", "V", "scale"), where, "GEM-ZSL")
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
    return _with_backbone(model, backbone, weights, where, batchnorm)
