"""Import checkpoints of the authors' MSDN code into zslkit models.

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
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping

import torch

from zslkit.datasets.checks import READ_ERRORS
from zslkit.models.msdn import MSDN
from zslkit.training.checkpoint import CheckpointError

__all__ = ["OFFICIAL_MSDN_KEYS", "load_official_msdn", "read_state_dict"]

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
            raise FileNotFoundError(f"official MSDN checkpoint {where!r} does not exist")
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
