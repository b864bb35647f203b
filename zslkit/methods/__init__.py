"""Non-deep ZSL methods on pooled features (kind ``method``), scikit-learn conventions."""

from zslkit.methods.base import EmbeddingMethod, normalize_attributes
from zslkit.methods.eszsl import ESZSL

__all__ = ["ESZSL", "EmbeddingMethod", "normalize_attributes"]
