"""U and H on a subset of the unseen classes ("leak-free": those the backbone's pretraining never saw).

The scores, the competing classes and the calibration gamma are those of the full evaluation
(:func:`~zslkit.metrics.evaluation.evaluate`): only the unseen test images are restricted to
the images of ``clean_classes``, so ``U`` is their per-class mean accuracy and ``H`` its
harmonic mean with the unchanged ``S``. The difference from the full ``U``/``H`` is what the
unseen classes that the pretraining saw add.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zslkit.metrics.evaluation import mask_other_classes
from zslkit.metrics.functional import GZSLResult, gzsl_accuracy
from zslkit.threads import single_threaded

__all__ = ["leak_free_accuracy"]


def leak_free_accuracy(scores: Any, labels: Any, seen_classes: Any, unseen_classes: Any, clean_classes: Any,
                       calibration: float) -> GZSLResult | None:
    """GZSL ``(U, S, H)`` with ``U`` over the images of ``clean_classes`` only (a subset of ``unseen_classes``).

    ``scores`` ``(n, K)`` and ``labels`` ``(n,)`` as for :func:`~zslkit.metrics.evaluation.evaluate`;
    every seen and unseen class still competes, ``calibration`` (gamma) is subtracted from the seen
    classes' scores. ``None`` when no clean class has a test image (there is no leak-free number).
    """
    seen, unseen, clean = (np.asarray(c, dtype=np.int64).reshape(-1) for c in (seen_classes, unseen_classes, clean_classes))
    if not np.isin(clean, unseen).all():
        raise ValueError(f"leak_free_accuracy: clean classes {sorted(set(clean.tolist()) - set(unseen.tolist()))} are not unseen classes")
    labels = np.asarray(labels)
    rows = np.isin(labels, seen) | np.isin(labels, clean)
    if not np.isin(labels[rows], clean).any():
        return None
    masked = mask_other_classes(np.asarray(scores, dtype=np.float64)[rows], np.concatenate([seen, unseen]))
    with single_threaded():
        return gzsl_accuracy(masked, labels[rows], seen, unseen, float(calibration))
