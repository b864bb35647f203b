"""ZSL metrics: pure functions plus the stateful :class:`ZSLAccuracy` and :class:`PartLocalization`."""

from zslkit.metrics.functional import (
    GZSLResult,
    SeenUnseenCurve,
    ausuc,
    czsl_accuracy,
    gzsl_accuracy,
    harmonic_mean,
    per_class_accuracy,
    seen_unseen_curve,
)
from zslkit.metrics.localization import (
    PartLocalization,
    grid_to_image,
    localization_counts,
    part_localization,
)
from zslkit.metrics.stateful import ZSLAccuracy

__all__ = [
    "GZSLResult",
    "PartLocalization",
    "SeenUnseenCurve",
    "ZSLAccuracy",
    "ausuc",
    "czsl_accuracy",
    "grid_to_image",
    "gzsl_accuracy",
    "harmonic_mean",
    "localization_counts",
    "part_localization",
    "per_class_accuracy",
    "seen_unseen_curve",
]
