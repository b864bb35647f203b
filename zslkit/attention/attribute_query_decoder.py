"""``attribute_query_decoder``: attribute tokens query the encoded regions (TransZero; TransZero++'s S->V stream).

With encoded regions ``m`` ``(B, d, R)`` (the model's shared encoder, or this branch's
own ``encoder``) and attribute embeddings ``v_i`` ``(D,)``:

* attribute tokens ``t_i = W_attr v_i + b_attr`` (``D -> d``), the same for every image;
* one post-norm decoder layer (:class:`~zslkit.attention.decoder_layer.DecoderLayer`):
  optional attribute self-attention over ``t`` (computed once per batch when no dropout
  acts on it: its input does not depend on the image; per image in training), cross-attention with ``t`` as queries and ``m`` as keys and
  values, feed-forward -> ``z_{b,i}`` ``(d,)``;
* attribute scores ``e_{b,i} = v_i W_1 z_{b,i}`` (``W_1`` ``(D, d)``, init ``N(0, 1)``);
* maps: the cross-attention weights averaged over heads ``(B, I, R)`` (softmax over regions).

Dropout masks are drawn per image, as in the authors' code.
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

__all__ = ["AttributeQueryDecoder"]


@register("attention", "attribute_query_decoder")
class AttributeQueryDecoder(nn.Module):
    """Attribute-query transformer decoder branch.

    Args:
        feature_dim: width of the features the branch receives (``d`` without ``encoder``).
        embedding_dim: ``D``. num_attributes: part of the block contract (unused).
        heads: attention heads of the decoder (``d`` divisible by it).
        ffn_dim: hidden width of the decoder's feed-forward.
        dropout: dropout of the decoder (attention weights and every sub-layer).
        self_attention: run the attribute self-attention (the authors' ``SAtt``).
        encoder: ``None`` (the features are already encoded) or an encoder spec this
            branch builds and owns (TransZero++'s streams each have one).

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
        encoder: str | Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.encoder = build_encoder(encoder, feature_dim)
        dim = feature_dim if self.encoder is None else int(self.encoder.output_dim)
        self.embed = nn.Linear(embedding_dim, dim)
        self.decoder = DecoderLayer(dim, heads, ffn_dim, dropout, self_attention)
        self.W1 = nn.Parameter(torch.randn(embedding_dim, dim))

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor, grid: tuple[int, int] | None = None) -> AttentionOutput:
        memory = features if self.encoder is None else self.encoder(features, grid)
        memory = rearrange(memory, "batch dim region -> batch region dim")
        z, maps = self.decoder(self.embed(embeddings), memory)
        queries = einsum(embeddings, self.W1, "attribute embed, embed dim -> attribute dim")
        scores = einsum(queries, z, "attribute dim, batch attribute dim -> batch attribute")
        return AttentionOutput(scores=scores, maps=maps)
