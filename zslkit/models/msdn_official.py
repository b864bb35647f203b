"""Converter ``msdn``: checkpoints of the authors' MSDN code (github.com/shiming-chen/MSDN) as a zslkit MSDN.

The authors' PyTorch ``MSDN`` module keeps its parameters under these state-dict keys;
:func:`load_official_msdn` maps them onto a zslkit :class:`~zslkit.models.msdn.MSDN`:

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
``bias``         scalar       the scorer's ``margin``
===============  ===========  ==========================================

``W_3`` and ``W_3_1`` (unused by the official forward), ``weight_ce``,
``prob_prune`` and any backbone weights (``resnet101.*``) are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from zslkit.datasets.checks import CheckpointError
from zslkit.models.msdn import MSDN
from zslkit.models.official import check_shape, class_space_from_mask, read_state_dict, source_name
from zslkit.registry import register

__all__ = ["OFFICIAL_MSDN_KEYS", "load_official_msdn"]

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


@register("converter", "msdn")
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
    where = source_name(source)
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
        check_shape(state, key, shape, where)
    model = MSDN(
        **class_space_from_mask(state, num_classes, where),
        feature_dim=feature_dim,
        normalize_embeddings=normalize_embeddings,
    )
    own = model.state_dict()
    own.update({ours: state[theirs] for theirs, ours in OFFICIAL_MSDN_KEYS.items()})
    model.load_state_dict(own)
    return model
