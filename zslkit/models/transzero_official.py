"""Converters ``transzero`` and ``transzero_pp``: checkpoints of the authors' TransZero and TransZero++ code.

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
from collections.abc import Mapping

import torch

from zslkit.datasets.checks import CheckpointError
from zslkit.models.official import class_space_from_mask, load_into, official_state, source_name
from zslkit.models.transzero import TransZero, TransZeroPP, transformer_options
from zslkit.registry import register

__all__ = ["load_official_transzero", "load_official_transzero_pp"]
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


def _encoder_spec(sizes: dict[str, int], dropout: float, layers: int) -> dict:
    """The official encoder: its attention-weight dropout is fixed at 0.1 unless every dropout is off."""
    spec = transformer_options(sizes["dim"], sizes["encoder_ffn"], dropout, 0.1 if dropout > 0 else 0.0)
    return {**spec, "layers": layers}


def _decoder_branch(attention: str, weight: float, sizes: dict, dropout: float, heads: int, self_attention: bool) -> dict:
    return {"attention": attention, "weight": weight, "heads": heads, "ffn_dim": sizes["decoder_ffn"],
            "dropout": dropout, "self_attention": self_attention}


@register("converter", "transzero")
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
    where = source_name(source)
    state = official_state(source, ("V", "att", "W_1", "mask_bias", "bias"), "TransZero")
    sizes = _transformer_sizes(state, "transformer", where)
    model = TransZero(
        **class_space_from_mask(state, state["att"].shape[0], where),
        feature_dim=sizes["feature_dim"],
        encoder=_encoder_spec(sizes, dropout, _encoder_layers(state, "transformer")),
        branches={"s2v": _decoder_branch("attribute_query_decoder", 1.0, sizes, dropout, heads, self_attention)},
        normalize_embeddings=normalize_embeddings,
    )
    mapped = {"V": state["V"], "classes.attributes": state["att"], "branches.s2v.W1": state["W_1"]}
    mapped.update(_transformer(state, "transformer", "encoder", "branches.s2v", self_attention, where))
    model = load_into(model, mapped, where)
    model.set_loss_weights(dict(loss_weights or {}))
    return model


@register("converter", "transzero_pp")
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
    where = source_name(source)
    state = official_state(source, ("V", "att", "W_1_s2v", "W_1_v2s", "W_4_v2s", "mask_bias", "bias"), "TransZero++")
    branches, mapped = {}, {"V": state["V"], "classes.attributes": state["att"]}
    for stream, attention, weight in (("s2v", "attribute_query_decoder", weight_s2v), ("v2s", "region_query_decoder", 1.0 - weight_s2v)):
        theirs = f"transformer_{stream}"
        sizes = _transformer_sizes(state, theirs, where)
        branches[stream] = {**_decoder_branch(attention, weight, sizes, dropout, heads, self_attention),
                            "encoder": _encoder_spec(sizes, dropout, _encoder_layers(state, theirs))}
        mapped.update(_transformer(state, theirs, f"branches.{stream}.encoder", f"branches.{stream}", self_attention, where))
    mapped.update({"branches.s2v.W1": state["W_1_s2v"], "branches.v2s.W1": state["W_1_v2s"], "branches.v2s.W4": state["W_4_v2s"]})
    model = TransZeroPP(
        **class_space_from_mask(state, state["att"].shape[0], where),
        feature_dim=sizes["feature_dim"],
        branches=branches,
        normalize_embeddings=normalize_embeddings,
    )
    model = load_into(model, mapped, where)
    model.set_loss_weights(dict(loss_weights or {}))
    return model
