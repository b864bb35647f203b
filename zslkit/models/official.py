"""What the converters of the authors' checkpoints share: reading a state dict, checking keys and shapes,
the class split of ``mask_bias``, loading tensors and ResNet backbone weights by name.

Each model's converter lives beside the model (``msdn_official``, ``apn_official``,
``gem_zsl_official``, ``transzero_official``) and registers itself as a ``converter``
under the model's name: ``zslkit.get_component("converter", "apn")`` is
:func:`~zslkit.models.apn_official.load_official_apn`, and ``zslkit eval --official
--official-model NAME`` accepts every registered name. A converter is a function
``converter(source, **arguments) -> model`` whose ``source`` is a path or a state dict;
the arguments it takes among ``class_attributes``, ``attribute_embeddings``,
``seen_classes``, ``unseen_classes`` and ``attribute_groups`` are what its checkpoints lack
(the CLI fills them from the dataset).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Mapping

import torch

from zslkit.datasets.checks import READ_ERRORS, CheckpointError
from zslkit.models.backbone_model import BackboneModel

__all__ = [
    "DATASET_ARGUMENTS",
    "check_shape",
    "class_space_from_mask",
    "load_into",
    "official_state",
    "read_state_dict",
    "require_keys",
    "source_name",
    "with_backbone",
]

#: Converter arguments a dataset gives (``zslkit eval --official`` passes those a converter takes).
DATASET_ARGUMENTS: tuple[str, ...] = ("class_attributes", "attribute_embeddings", "seen_classes", "unseen_classes", "attribute_groups")


def source_name(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> str:
    """How errors name ``source``: its path, or ``"the state dict"``."""
    return "the state dict" if isinstance(source, Mapping) else os.fspath(source)


def read_state_dict(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict from a path (``torch.load(..., weights_only=True)``) or a mapping.

    A checkpoint that wraps the state dict under ``"state_dict"`` or ``"model"`` is
    unwrapped, and a ``"module."`` prefix (DataParallel) is stripped.
    """
    where = source_name(source)
    if isinstance(source, Mapping):
        state = dict(source)
    else:
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


def require_keys(state: Mapping[str, torch.Tensor], keys: Iterable[str], where: str, what: str) -> None:
    """Refuse a state dict without every one of ``keys``: ``not an official <what> state dict, missing key(s) ...``."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{where}: not an official {what} state dict, missing key(s) {', '.join(missing)}")


def official_state(source, required: tuple[str, ...], what: str) -> dict[str, torch.Tensor]:
    """The float32 tensors of ``source``'s state dict, which must hold ``required``."""
    state = read_state_dict(source)
    require_keys(state, required, source_name(source), what)
    return {k: torch.as_tensor(v).detach().float() for k, v in state.items() if torch.is_tensor(v)}


def check_shape(state: Mapping[str, torch.Tensor], key: str, shape: tuple[int, ...], where: str) -> None:
    found = tuple(state[key].shape)
    if found != shape:
        raise CheckpointError(f"{where}: {key!r} must have shape {shape}, found {found}")


def class_space_from_mask(state: Mapping[str, torch.Tensor], num_classes: int, where: str) -> dict:
    """Model arguments from ``att``, ``V``, ``mask_bias`` (-1 seen, +1 unseen) and ``bias`` (the margin's size):
    ``class_attributes``, ``attribute_embeddings``, ``seen_classes``, ``unseen_classes`` and ``scorer`` (MSDN's and
    TransZero's: unit-length rows, margin ``bias``)."""
    side = state["mask_bias"].reshape(-1)
    if side.numel() != num_classes or not bool(((side == 1) | (side == -1)).all()):
        raise CheckpointError(f"{where}: 'mask_bias' must hold {num_classes} values, each -1 (seen) or +1 (unseen)")
    if state["bias"].numel() != 1:
        raise CheckpointError(f"{where}: 'bias' must be a scalar, found shape {tuple(state['bias'].shape)}")
    return {
        "class_attributes": state["att"],
        "attribute_embeddings": state["V"],
        "seen_classes": torch.nonzero(side < 0).reshape(-1),
        "unseen_classes": torch.nonzero(side > 0).reshape(-1),
        "scorer": {"scorer": "unit_rows", "margin": float(state["bias"])},
    }


def load_into(model: torch.nn.Module, mapped: Mapping[str, torch.Tensor], where: str) -> torch.nn.Module:
    """``model`` with the tensors of ``mapped`` (zslkit keys) loaded over its own, shapes checked."""
    own = model.state_dict()
    for key, value in mapped.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{where}: tensor for {key!r} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}")
    own.update(mapped)
    model.load_state_dict(own)
    return model


def _load_backbone(backbone: torch.nn.Module, weights: Mapping[str, torch.Tensor], where: str) -> None:
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


def with_backbone(model, backbone: torch.nn.Module | None, weights: Mapping[str, torch.Tensor], where: str, batchnorm: str):
    """``model`` alone without ``backbone``; else ``backbone`` loaded with the checkpoint's torchvision-named
    ResNet ``weights`` in a :class:`~zslkit.models.BackboneModel` in front of ``model``."""
    if backbone is None:
        return model
    if not weights:
        raise CheckpointError(f"{where}: a backbone was given but the checkpoint holds no backbone weights")
    _load_backbone(backbone, weights, where)
    return BackboneModel(backbone, model, batchnorm=batchnorm)
