"""The harness's evaluation: :mod:`zslkit.metrics.evaluation`, plus the curve as the result files hold it.

:func:`evaluate`, :class:`Evaluation`, :func:`best_calibration` and
:func:`evaluate_scores` live in :mod:`zslkit.metrics.evaluation` (their one home)
and are re-exported here for the harness and its users.
"""

from __future__ import annotations

import numpy as np

from zslkit.metrics.evaluation import Evaluation, best_calibration, evaluate, evaluate_scores
from zslkit.metrics.functional import SeenUnseenCurve

__all__ = ["Evaluation", "best_calibration", "evaluate", "evaluate_scores", "thin_curve"]


def thin_curve(curve: SeenUnseenCurve, points: int = 200) -> dict[str, list[float]]:
    """At most ``points`` points of the curve (ends kept), as lists for JSON and plots."""
    n = len(curve.unseen)
    keep = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(int))
    return {"unseen": curve.unseen[keep].round(6).tolist(), "seen": curve.seen[keep].round(6).tolist()}
