"""Attention blocks: ``factory(feature_dim=C, embedding_dim=D, num_attributes=I, **options)``.

``forward(features (B, C, R), embeddings (I, D))`` returns :class:`AttentionOutput`
(``scores`` ``(B, I)``, ``maps`` ``(B, I, R)`` or ``None``). Importing this package
registers the built-in blocks.
"""

from zslkit.attention.ale_global import ALEGlobal
from zslkit.attention.attend import attend, project_queries
from zslkit.attention.attribute_to_visual import AttributeToVisual
from zslkit.attention.base import AttentionOutput
from zslkit.attention.cosine_global import CosineGlobal
from zslkit.attention.gated_attribute_to_visual import GatedAttributeToVisual
from zslkit.attention.prototype import Prototype, region_responses
from zslkit.attention.visual_to_attribute import VisualToAttribute

__all__ = [
    "ALEGlobal",
    "AttentionOutput",
    "AttributeToVisual",
    "CosineGlobal",
    "GatedAttributeToVisual",
    "Prototype",
    "VisualToAttribute",
    "attend",
    "project_queries",
    "region_responses",
]
