"""ZSL metrics: pure functions plus the stateful :class:`ZSLAccuracy` and :class:`PartLocalization`.

:func:`evaluate` (:mod:`zslkit.metrics.evaluation`) is the one evaluation of scores:
class masking, calibrated stacking, T1/U/S/H/AUSUC and the best gamma.
"""

from zslkit.metrics.evaluation import Evaluation, best_calibration, evaluate, evaluate_scores
from zslkit.metrics.functional import (
    GZSLResult,
    SeenUnseenCurve,
    ausuc,
    curve_area,
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
    "Evaluation",
    "GZSLResult",
    "PartLocalization",
    "SeenUnseenCurve",
    "ZSLAccuracy",
    "ausuc",
    "best_calibration",
    "curve_area",
    "czsl_accuracy",
    "evaluate",
    "evaluate_scores",
    "grid_to_image",
    "gzsl_accuracy",
    "harmonic_mean",
    "localization_counts",
    "part_localization",
    "per_class_accuracy",
    "seen_unseen_curve",
]
