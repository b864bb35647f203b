"""Attention blocks: ``factory(feature_dim=C, embedding_dim=D, num_attributes=I, **options)``.

``forward(features (B, C, R), embeddings (I, D))`` returns :class:`AttentionOutput`
(``scores`` ``(B, I)``, ``maps`` ``(B, I, R)`` or ``None``); a block whose ``forward``
has a ``grid`` parameter is also given the region grid ``(H, W)`` (or ``None``), one with a
``global_token`` parameter the global (CLS) token ``(B, D)`` of a model that owns a token backbone. Importing this package
registers the built-in blocks.
"""

from zslkit.attention.ale_global import ALEGlobal
from zslkit.attention.attend import attend, project_queries, region_responses
from zslkit.attention.attribute_query_decoder import AttributeQueryDecoder
from zslkit.attention.attribute_to_visual import AttributeToVisual
from zslkit.attention.base import AttentionOutput
from zslkit.attention.cosine_global import CosineGlobal
from zslkit.attention.decoder_layer import DecoderLayer
from zslkit.attention.encoder_spec import build_encoder, parse_encoder_spec
from zslkit.attention.feed_forward import FeedForward
from zslkit.attention.gated_attribute_to_visual import GatedAttributeToVisual
from zslkit.attention.global_linear import GlobalLinear
from zslkit.attention.group_head import GroupHead
from zslkit.attention.multihead_attention import MultiHeadAttention
from zslkit.attention.prototype import Prototype
from zslkit.attention.region_query_decoder import RegionQueryDecoder
from zslkit.attention.visual_to_attribute import VisualToAttribute

__all__ = [
    "ALEGlobal",
    "AttentionOutput",
    "AttributeQueryDecoder",
    "AttributeToVisual",
    "CosineGlobal",
    "DecoderLayer",
    "FeedForward",
    "GatedAttributeToVisual",
    "GlobalLinear",
    "GroupHead",
    "MultiHeadAttention",
    "Prototype",
    "RegionQueryDecoder",
    "VisualToAttribute",
    "attend",
    "build_encoder",
    "parse_encoder_spec",
    "project_queries",
    "region_responses",
]
