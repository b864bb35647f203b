"""Import checkpoints of the authors' MSDN, APN, GEM-ZSL, TransZero and TransZero++ code into zslkit models.

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

The authors' ``TransZero`` (github.com/shiming-chen/TransZero, ``model.py``) and
``TransZeroPP`` (github.com/shiming-chen/TransZero_pp, ``model_tzpp.py``) keep a
``Transformer`` per stream (``transformer``; ``transformer_s2v`` and ``transformer_v2s``)
whose keys :func:`load_official_transzero` and :func:`load_official_transzero_pp` map as
follows (``T`` the transformer's prefix, ``E`` the zslkit encoder, ``B`` the branch;
``n`` the encoder layer):

=================================================  ======================================
official key under ``T.``                          zslkit key
=================================================  ======================================
``embed_cv.0``                                     ``E.embed``
``transformer_encoder.WGs.0``                      ``E.geometry``
``transformer_encoder.layers.n.mhatt.attention.``  ``E.layers.n.attn.``
``fc_q`` / ``fc_k`` / ``fc_v`` / ``fc_o``          ``to_q`` / ``to_k`` / ``to_v`` / ``to_out``
``transformer_encoder.layers.n.mhatt.layer_norm``  ``E.layers.n.norm_attn``
``transformer_encoder.layers.n.lnorm``             ``E.layers.n.norm``
``transformer_encoder.layers.n.pwff.``             ``E.layers.n.ffn.``
``fc1`` / ``fc2`` / ``layer_norm``                 ``fc1`` / ``fc2`` / ``norm``
``embed_attr.0``                                   ``B.embed``
``transformer_decoder.layers.0.self_attn``         ``B.decoder.self_attn`` (``in_proj`` split
                                                   into ``to_q``, ``to_k``, ``to_v``;
                                                   ``out_proj`` -> ``to_out``)
``transformer_decoder.layers.0.multihead_attn``    ``B.decoder.cross_attn`` (likewise)
``transformer_decoder.layers.0.linear1/linear2``   ``B.decoder.ffn.fc1`` / ``fc2``
``transformer_decoder.layers.0.norm1/2/3``         ``B.decoder.norm_self`` / ``norm_cross`` /
                                                   ``ffn.norm``
=================================================  ======================================

plus ``W_1`` -> ``branches.s2v.W1`` (TransZero; ``E = encoder``), and for TransZero++
``W_1_s2v`` -> ``branches.s2v.W1``, ``W_1_v2s`` -> ``branches.v2s.W1``, ``W_4_v2s`` ->
``branches.v2s.W4`` (``E = branches.<stream>.encoder``). ``embed_cv_aux`` (unused by
the forward), ``W_3_s2v``, ``W_3_v2s``, ``weight_ce``, and the decoder's self-attention
when it is switched off, are ignored.
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
from zslkit.models.transzero import TransZero, TransZeroPP, transformer_options
from zslkit.training.checkpoint import CheckpointError

__all__ = [
    "OFFICIAL_MSDN_KEYS",
    "load_official_apn",
    "load_official_gem_zsl",
    "load_official_msdn",
    "load_official_transzero",
    "load_official_transzero_pp",
    "read_state_dict",
]

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


def _class_space(state: dict[str, torch.Tensor], num_classes: int, where: str) -> dict:
    """Model arguments from ``att``, ``V``, ``mask_bias`` (-1 seen, +1 unseen) and ``bias`` (the margin)."""
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
        "margin": float(state["bias"]),
    }


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
    model = MSDN(
        **_class_space(state, num_classes, where),
        feature_dim=feature_dim,
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


# ---------------------------------------------------------------- TransZero and TransZero++
_ENCODER_LAYER_KEYS = {
    "mhatt.attention.fc_q": "attn.to_q",
    "mhatt.attention.fc_k": "attn.to_k",
    "mhatt.attention.fc_v": "attn.to_v",
    "mhatt.attention.fc_o": "attn.to_out",
    "mhatt.layer_norm": "norm_attn",
    "lnorm": "norm",
    "pwff.fc1": "ffn.fc1",
    "pwff.fc2": "ffn.fc2",
    "pwff.layer_norm": "ffn.norm",
}
_DECODER_KEYS = {"linear1": "ffn.fc1", "linear2": "ffn.fc2", "norm2": "norm_cross", "norm3": "ffn.norm", "norm1": "norm_self"}
_DECODER = "transformer_decoder.layers.0."


def _linear(state: dict, theirs: str, ours: str) -> dict[str, torch.Tensor]:
    return {f"{ours}.weight": state[f"{theirs}.weight"], f"{ours}.bias": state[f"{theirs}.bias"]}


def _attention(state: dict, theirs: str, ours: str) -> dict[str, torch.Tensor]:
    """``nn.MultiheadAttention``'s packed ``in_proj`` split into zslkit's ``to_q``, ``to_k``, ``to_v``."""
    weights, biases = state[f"{theirs}.in_proj_weight"].chunk(3), state[f"{theirs}.in_proj_bias"].chunk(3)
    out = {f"{ours}.to_{n}.{p}": t for n, w, b in zip("qkv", weights, biases) for p, t in (("weight", w), ("bias", b))}
    return {**out, **_linear(state, f"{theirs}.out_proj", f"{ours}.to_out")}


def _transformer(state: dict, theirs: str, encoder: str, branch: str, self_attention: bool, where: str) -> dict[str, torch.Tensor]:
    """zslkit keys -> tensors for one official ``Transformer`` under prefix ``theirs``."""
    try:
        return _transformer_keys(state, theirs, encoder, branch, self_attention)
    except KeyError as exc:
        raise CheckpointError(f"{where}: not an official TransZero state dict, missing key {exc.args[0]!r}") from None


def _transformer_keys(state: dict, theirs: str, encoder: str, branch: str, self_attention: bool) -> dict[str, torch.Tensor]:
    out = {**_linear(state, f"{theirs}.embed_cv.0", f"{encoder}.embed"), **_linear(state, f"{theirs}.embed_attr.0", f"{branch}.embed")}
    out.update(_linear(state, f"{theirs}.transformer_encoder.WGs.0", f"{encoder}.geometry"))
    for n in range(_encoder_layers(state, theirs)):
        for key, ours in _ENCODER_LAYER_KEYS.items():
            out.update(_linear(state, f"{theirs}.transformer_encoder.layers.{n}.{key}", f"{encoder}.layers.{n}.{ours}"))
    decoder = f"{theirs}.{_DECODER}"
    for key, ours in _DECODER_KEYS.items():
        if key != "norm1" or self_attention:
            out.update(_linear(state, decoder + key, f"{branch}.decoder.{ours}"))
    out.update(_attention(state, decoder + "multihead_attn", f"{branch}.decoder.cross_attn"))
    if self_attention:
        out.update(_attention(state, decoder + "self_attn", f"{branch}.decoder.self_attn"))
    return out


def _encoder_layers(state: dict, theirs: str) -> int:
    prefix = f"{theirs}.transformer_encoder.layers."
    return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})


def _transformer_sizes(state: dict, theirs: str, where: str) -> dict[str, int]:
    """``feature_dim``, ``dim`` (d), encoder and decoder feed-forward widths, read from the shapes."""
    keys = (f"{theirs}.embed_cv.0.weight", f"{theirs}.transformer_encoder.layers.0.pwff.fc1.weight", f"{theirs}.{_DECODER}linear1.weight")
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{where}: not an official TransZero state dict, missing key {missing[0]!r}")
    dim, feature_dim = state[keys[0]].shape
    return {"feature_dim": int(feature_dim), "dim": int(dim), "encoder_ffn": int(state[keys[1]].shape[0]), "decoder_ffn": int(state[keys[2]].shape[0])}


def _official_state(source, where: str, required: tuple[str, ...], what: str) -> dict[str, torch.Tensor]:
    state = read_state_dict(source)
    _require(state, required, where, what)
    return {k: torch.as_tensor(v).detach().float() for k, v in state.items() if torch.is_tensor(v)}


def _load_into(model, mapped: dict[str, torch.Tensor], where: str):
    own = model.state_dict()
    for key, value in mapped.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{where}: tensor for {key!r} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}")
    own.update(mapped)
    model.load_state_dict(own)
    return model


def _encoder_spec(sizes: dict[str, int], dropout: float, layers: int) -> dict:
    """The official encoder: its attention-weight dropout is fixed at 0.1 unless every dropout is off."""
    spec = transformer_options(sizes["dim"], sizes["encoder_ffn"], dropout, 0.1 if dropout > 0 else 0.0)
    return {**spec, "layers": layers}


def _decoder_branch(attention: str, weight: float, sizes: dict, dropout: float, heads: int, self_attention: bool) -> dict:
    return {"attention": attention, "weight": weight, "heads": heads, "ffn_dim": sizes["decoder_ffn"],
            "dropout": dropout, "self_attention": self_attention}


def load_official_transzero(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    dropout: float = 0.4,
    heads: int = 1,
    loss_weights: Mapping[str, float] | None = None,
    self_attention: bool = True,
    normalize_embeddings: bool = False,
) -> TransZero:
    """Build a zslkit TransZero from a state dict (path or mapping) of the authors' ``TransZero``.

    Widths come from the tensors' shapes; the options are the authors' config values
    (``tf_dropout``, ``tf_heads``, ``tf_SAtt``, ``normalize_V``; defaults: CUB GZSL).
    ``dropout=0.0`` switches off every dropout, the encoder's fixed 0.1 included.
    ``loss_weights`` changes the weights of ``attribute_ce``, ``self_calibration`` (the
    authors' ``lambda_``, 0.3) and ``attribute_regression`` (``lambda_reg``, 0.005).
    """
    where = "the state dict" if isinstance(source, Mapping) else os.fspath(source)
    state = _official_state(source, where, ("V", "att", "W_1", "mask_bias", "bias"), "TransZero")
    sizes = _transformer_sizes(state, "transformer", where)
    model = TransZero(
        **_class_space(state, state["att"].shape[0], where),
        feature_dim=sizes["feature_dim"],
        encoder=_encoder_spec(sizes, dropout, _encoder_layers(state, "transformer")),
        branches={"s2v": _decoder_branch("attribute_query_decoder", 1.0, sizes, dropout, heads, self_attention)},
        normalize_embeddings=normalize_embeddings,
    )
    mapped = {"V": state["V"], "classes.attributes": state["att"], "branches.s2v.W1": state["W_1"]}
    mapped.update(_transformer(state, "transformer", "encoder", "branches.s2v", self_attention, where))
    model = _load_into(model, mapped, where)
    model.set_loss_weights(dict(loss_weights or {}))
    return model


def load_official_transzero_pp(
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    dropout: float = 0.4,
    heads: int = 1,
    loss_weights: Mapping[str, float] | None = None,
    self_attention: bool = True,
    normalize_embeddings: bool = False,
    weight_s2v: float = 0.9,
) -> TransZeroPP:
    """Build a zslkit TransZero++ from a state dict (path or mapping) of the authors' ``TransZeroPP``.

    As :func:`load_official_transzero`, plus ``weight_s2v`` (the prediction mix, 0.9 on CUB).
    ``loss_weights`` uses the entry names of :class:`~zslkit.models.transzero.TransZeroPP`
    (defaults: the CUB GZSL config, the v2s terms weighted by ``lambda_v2s = 0.1``).
    """
    where = "the state dict" if isinstance(source, Mapping) else os.fspath(source)
    state = _official_state(source, where, ("V", "att", "W_1_s2v", "W_1_v2s", "W_4_v2s", "mask_bias", "bias"), "TransZero++")
    branches, mapped = {}, {"V": state["V"], "classes.attributes": state["att"]}
    for stream, attention, weight in (("s2v", "attribute_query_decoder", weight_s2v), ("v2s", "region_query_decoder", 1.0 - weight_s2v)):
        theirs = f"transformer_{stream}"
        sizes = _transformer_sizes(state, theirs, where)
        branches[stream] = {**_decoder_branch(attention, weight, sizes, dropout, heads, self_attention),
                            "encoder": _encoder_spec(sizes, dropout, _encoder_layers(state, theirs))}
        mapped.update(_transformer(state, theirs, f"branches.{stream}.encoder", f"branches.{stream}", self_attention, where))
    mapped.update({"branches.s2v.W1": state["W_1_s2v"], "branches.v2s.W1": state["W_1_v2s"], "branches.v2s.W4": state["W_4_v2s"]})
    model = TransZeroPP(
        **_class_space(state, state["att"].shape[0], where),
        feature_dim=sizes["feature_dim"],
        branches=branches,
        normalize_embeddings=normalize_embeddings,
    )
    model = _load_into(model, mapped, where)
    model.set_loss_weights(dict(loss_weights or {}))
    return model
