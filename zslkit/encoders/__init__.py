"""Feature encoders: ``factory(feature_dim=C, **options)`` with an int ``output_dim``.

``forward(features (B, C, R), grid (H, W) | None)`` returns ``(B, output_dim, R)``. A model
built with ``encoder=`` applies one encoder to the normalised region features, before
every branch (shared by all of them); a branch may also own one (TransZero++'s streams).
Importing this package registers the built-in encoders.
"""

from zslkit.encoders.geometry import GEOMETRY_DIM, relative_geometry_embedding
from zslkit.encoders.geometry_encoder import GeometryEncoder, GeometryEncoderLayer
from zslkit.encoders.linear import LinearEncoder

__all__ = ["GEOMETRY_DIM", "GeometryEncoder", "GeometryEncoderLayer", "LinearEncoder", "relative_geometry_embedding"]
