"""Attention blocks: ``factory(feature_dim=C, embedding_dim=D, num_attributes=I, **options)``.

``forward(features (B, C, R), embeddings (I, D))`` returns :class:`AttentionOutput`.
"""

from zslkit.attention.base import AttentionOutput

__all__ = ["AttentionOutput"]
