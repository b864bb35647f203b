"""ZSL metrics: pure functions plus the stateful :class:`ZSLAccuracy`."""

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
from zslkit.metrics.stateful import ZSLAccuracy

__all__ = [
    "GZSLResult",
    "SeenUnseenCurve",
    "ZSLAccuracy",
    "ausuc",
    "czsl_accuracy",
    "gzsl_accuracy",
    "harmonic_mean",
    "per_class_accuracy",
    "seen_unseen_curve",
]
