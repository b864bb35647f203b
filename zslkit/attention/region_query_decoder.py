"""``region_query_decoder``: encoded regions query the attribute tokens (TransZero++'s V->S stream).

The branch owns its encoder (default ``geometry_encoder``): for features ``f`` ``(B, C, R)``
it reads both the region tokens ``h`` ``(B, R, d)`` and the encoded regions ``m`` ``(B, R, d)``.
With attribute tokens ``t_i = W_attr v_i + b_attr`` ``(d,)``:

* one post-norm decoder layer with the regions as queries (optional self-attention over
  the regions of each image) and ``t`` as keys and values -> ``u_{b,r}`` ``(d,)``;
* region score ``sigma_{b,r} = m_{b,r} W_1 u_{b,r}`` (``W_1`` ``(d, d)``, init zeros);
* ``e_{b,i} = sum_r (sum_c h_{b,r,c} W_4[c,c] t_{i,c}) sigma_{b,r}`` (``W_4`` ``(d, d)``, init
  ``N(0, 1)``). The authors' einsum ``'brc,cc,bic->bir'`` uses only the diagonal of
  ``W_4``; so does this branch (the off-diagonal entries get no gradient). It is computed as
  ``e_{b,i} = sum_c (sum_r sigma_{b,r} h_{b,r,c}) W_4[c,c] t_{i,c}``, without the
  ``(B, I, R)`` tensor;
* maps: the cross-attention weights averaged over heads, as ``(B, I, R)`` (softmax over the
  attributes: each region's weights sum to 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from einops import einsum, rearrange
from torch import nn

from zslkit.attention.base import AttentionOutput
from zslkit.attention.decoder_layer import DecoderLayer
from zslkit.attention.encoder_spec import build_encoder
from zslkit.registry import register

__all__ = ["RegionQueryDecoder"]


@register("attention", "region_query_decoder")
class RegionQueryDecoder(nn.Module):
    """Region-query transformer decoder branch (visual -> semantic).

    Args:
        feature_dim: ``C``, channels of the (normalised) region features.
        embedding_dim: ``D``.
        num_attributes: part of the block contract (unused).
        heads: of the decoder, as in ``attribute_query_decoder``.
        ffn_dim: of the decoder, as in ``attribute_query_decoder``.
        dropout: of the decoder, as in ``attribute_query_decoder``.
        self_attention: of the decoder, as in ``attribute_query_decoder``.
        encoder: the spec of the branch's own encoder; it must have ``tokens`` and ``encode``
            (as ``geometry_encoder``), since the branch reads the tokens before encoding.
        score_init: ``"zeros"`` (CUB, AWA2) or ``"normal"`` (SUN) for ``W_1`` (the authors' ``tf_v2s_init``).

    Shapes: ``forward(features (B, C, R), embeddings (I, D), grid)`` -> scores ``(B, I)``, maps ``(B, I, R)``.
    """

    def __init__(
        self,
        feature_dim: int,
        embedding_dim: int,
        num_attributes: int | None = None,
        heads: int = 1,
        ffn_dim: int = 512,
        dropout: float = 0.4,
        self_attention: bool = True,
        encoder: str | Mapping[str, Any] = "geometry_encoder",
        score_init: str = "zeros",
    ):
        super().__init__()
        if score_init not in ("zeros", "normal"):
            raise ValueError(f"score_init must be 'zeros' or 'normal', got {score_init!r}")
        self.encoder = build_encoder(encoder, feature_dim)
        if self.encoder is None or not (hasattr(self.encoder, "tokens") and hasattr(self.encoder, "encode")):
            raise ValueError(
                f"region_query_decoder needs an encoder with tokens() and encode() (e.g. 'geometry_encoder'), got {encoder!r}"
            )
        dim = int(self.encoder.output_dim)
        self.embed = nn.Linear(embedding_dim, dim)
        self.decoder = DecoderLayer(dim, heads, ffn_dim, dropout, self_attention)
        self.W1 = nn.Parameter(torch.zeros(dim, dim) if score_init == "zeros" else torch.randn(dim, dim))
        self.W4 = nn.Parameter(torch.randn(dim, dim))

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor, grid: tuple[int, int] | None = None) -> AttentionOutput:
        tokens = self.encoder.tokens(features)  # h (B, R, d)
        memory = self.encoder.encode(tokens, grid)  # m (B, R, d)
        attribute_tokens = self.embed(embeddings)  # t (I, d)
        u, maps = self.decoder(memory, attribute_tokens)  # (B, R, d), (B, R, I)
        sigma = einsum(memory, self.W1, u, "batch region c, c e, batch region e -> batch region")
        pooled = einsum(sigma, tokens, "batch region, batch region c -> batch c")
        weighted = attribute_tokens * torch.diagonal(self.W4)  # t_{i,c} W_4[c,c]
        scores = einsum(pooled, weighted, "batch c, attribute c -> batch attribute")
        return AttentionOutput(scores=scores, maps=rearrange(maps, "batch region attribute -> batch attribute region"))
