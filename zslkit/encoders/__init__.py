"""Region encoders: ``factory(feature_dim=C, **options)``, ``forward(features (B, C, R), grid)`` -> ``(B, output_dim, R)``.

An encoder runs once on the normalised region features, before the attention branches
(the ``encoder=`` option of :class:`~zslkit.models.attention_model.AttentionZSLModel`), or
inside a branch that owns one. Importing this package registers the built-in encoders.
"""

from zslkit.encoders.geometry import GEOMETRY_DIM, relative_geometry_embedding
from zslkit.encoders.geometry_encoder import GeometryEncoder, GeometryEncoderLayer

__all__ = ["GEOMETRY_DIM", "GeometryEncoder", "GeometryEncoderLayer", "relative_geometry_embedding"]
